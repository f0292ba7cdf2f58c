// AVX-512 F/BW/VL/DQ. The only file compiled with -mavx512*.
#include <immintrin.h>

#include "../simd/vec_avx512.h"
#include "maxsim.h"
#include "hamming_avx2.h"
#include "maxsim_simd.h"
#include "bits_lut.h"
#include "../peak/fma_loop.h"

namespace colkern::maxsim {
namespace {

// 32 zmm registers: 2 query vectors x 12 document rows = 24 accumulators; broadcasts come
// from memory operands, so 2 loads + 12 broadcasts feed 24 FMAs per step.
constexpr int kRows = 12;

// Float x bits: 16 tokens per table block (one zmm, one 64-byte line per entry), 2 rows x 4
// accumulators = 8 add chains in flight.
constexpr BitsLutKernel kBitsLut = make_bits_lut_kernel<Avx512, 1, 2, 4>();

}  // namespace

const Kernel& avx512_kernel() {
  static const Kernel k{Isa::Avx512, packed_query_floats_simd<Avx512>, pack_queries_simd<Avx512>,
                        to_float_rows<Avx512>, update_token_max_simd<Avx512, kRows>, Avx512::W * 2, update_hamming_avx2, kBitsLut};
  return k;
}

}  // namespace colkern::maxsim

namespace colkern::peak {
double fma_gflops_avx512(int threads, int64_t iters) {
  return fma_loop_gflops<Avx512>(threads, iters);
}
}  // namespace colkern::peak
