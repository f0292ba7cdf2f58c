// AVX2 + FMA (+ F16C for fp16 input). The only file compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "../simd/vec_avx2.h"
#include "colkern/half.h"
#include "maxsim.h"
#include "maxsim_simd.h"
#include "../peak/fma_loop.h"

namespace colkern::maxsim {
namespace {

// 16 ymm registers: 2 query vectors x 6 document rows = 12 accumulators, 2 query loads and
// one broadcast. Zen/Skylake issue 2 FMAs per cycle at 4-cycle latency, so 12 independent
// chains keep both pipes busy.
constexpr int kRows = 6;

void to_float_avx2(const void* src, DType dtype, int64_t n, float* dst) {
  const auto* s = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  if (dtype == DType::F16) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
    for (; i < n; ++i) dst[i] = half_to_float(s[i]);
  } else {
    // bf16 is the top half of an fp32: widen and shift.
    for (; i + 8 <= n; i += 8) {
      const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    for (; i < n; ++i) dst[i] = bfloat16_to_float(s[i]);
  }
}

}  // namespace

const Kernel& avx2_kernel() {
  static const Kernel k{Isa::Avx2, packed_query_floats_simd<Avx2>, pack_queries_simd<Avx2>,
                        to_float_avx2, update_token_max_simd<Avx2, kRows>, Avx2::W * 2};
  return k;
}

}  // namespace colkern::maxsim

namespace colkern::peak {
double fma_gflops_avx2(int threads, int64_t iters) {
  return fma_loop_gflops<Avx2>(threads, iters);
}
}  // namespace colkern::peak
