// AVX2 + FMA (+ F16C for fp16 input). The only file compiled with -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "maxsim.h"
#include "maxsim_simd.h"
#include "../peak/fma_loop.h"

namespace colkern::maxsim {
namespace {

struct Avx2 {
  static constexpr int W = 8;
  using reg = __m256;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg r) { _mm256_storeu_ps(p, r); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg max_keep_second_nan(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg nan_bits(reg a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static reg bit_or(reg a, reg b) { return _mm256_or_ps(a, b); }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
};

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
  return fma_loop_gflops<maxsim::Avx2>(threads, iters);
}
}  // namespace colkern::peak
