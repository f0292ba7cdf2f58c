// AVX2 + FMA (+ F16C for fp16 input). The only file compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "../simd/vec_avx2.h"
#include "maxsim.h"
#include "hamming_avx2.h"
#include "maxsim_simd.h"
#include "bits_lut.h"
#include "../peak/fma_loop.h"

namespace colkern::maxsim {
namespace {

// 16 ymm registers: 2 query vectors x 6 document rows = 12 accumulators, 2 query loads and
// one broadcast. Zen/Skylake issue 2 FMAs per cycle at 4-cycle latency, so 12 independent
// chains keep both pipes busy.
constexpr int kRows = 6;

// Float x bits: 8 tokens per table block (one ymm per entry, 16 KiB of table at D = 128),
// 4 rows x 2 accumulators = 8 add chains in flight. As fast per token pair as 16-token
// blocks, with less padding when the token count is not a multiple of 16.
constexpr BitsLutKernel kBitsLut = make_bits_lut_kernel<Avx2, 1, 4, 2>();

}  // namespace

const Kernel& avx2_kernel() {
  static const Kernel k{Isa::Avx2, packed_query_floats_simd<Avx2>, pack_queries_simd<Avx2>,
                        to_float_rows<Avx2>, update_token_max_simd<Avx2, kRows>, Avx2::W * 2, update_hamming_avx2, kBitsLut};
  return k;
}

}  // namespace colkern::maxsim

namespace colkern::peak {
double fma_gflops_avx2(int threads, int64_t iters) {
  return fma_loop_gflops<Avx2>(threads, iters);
}
}  // namespace colkern::peak
