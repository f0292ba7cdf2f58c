// AVX2 + FMA (+ F16C for fp16 input). The only MaxSim file compiled with -mavx2 -mfma -mf16c.
#include "cpu/simd/to_float.h"
#include "cpu/simd/vec_avx2.h"
#include "maxsim.h"
#include "maxsim_simd.h"

namespace colkern::maxsim {
namespace {

// 16 ymm registers: 2 query vectors x 6 document rows = 12 accumulators, 2 query loads and
// one broadcast. Zen/Skylake issue 2 FMAs per cycle at 4-cycle latency, so 12 independent
// chains keep both pipes busy.
constexpr int kRows = 6;

}  // namespace

const Kernel& avx2_kernel() {
  static const Kernel k{packed_query_floats_simd<Avx2>, pack_queries_simd<Avx2>, to_float_rows<Avx2>,
                        update_token_max_simd<Avx2, kRows>, Avx2::W * 2,
                        // 4 rows for bf16 pairs: 8 accumulators + 4 query vectors + 2 widened
                        // elements fit the 16 ymm registers (6 rows spilled: 0.85-0.98x fp32).
                        update_token_max_bf16_simd<Avx2, 4>};
  return k;
}

}  // namespace colkern::maxsim
