// AVX-512 F/BW/VL/DQ. The only file compiled with -mavx512*.
#include <immintrin.h>

#include "maxsim.h"
#include "maxsim_simd.h"
#include "../peak/fma_loop.h"

namespace colkern::maxsim {
namespace {

struct Avx512 {
  static constexpr int W = 16;
  using reg = __m512;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg r) { _mm512_storeu_ps(p, r); }
  // Folded by the compiler into the FMA as an embedded {1to16} broadcast operand.
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg max_keep_second_nan(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg nan_bits(reg a) {
    const __mmask16 m = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    return _mm512_castsi512_ps(_mm512_maskz_set1_epi32(m, -1));
  }
  static reg bit_or(reg a, reg b) { return _mm512_or_ps(a, b); }
  static void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
};

// 32 zmm registers: 2 query vectors x 12 document rows = 24 accumulators; broadcasts come
// from memory operands, so 2 loads + 12 broadcasts feed 24 FMAs per step.
constexpr int kRows = 12;

void to_float_avx512(const void* src, DType dtype, int64_t n, float* dst) {
  const auto* s = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  if (dtype == DType::F16) {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
    for (; i < n; ++i) dst[i] = half_to_float(s[i]);
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
      _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
    }
    for (; i < n; ++i) dst[i] = bfloat16_to_float(s[i]);
  }
}

}  // namespace

const Kernel& avx512_kernel() {
  static const Kernel k{Isa::Avx512, packed_query_floats_simd<Avx512>, pack_queries_simd<Avx512>,
                        to_float_avx512, update_token_max_simd<Avx512, kRows>, Avx512::W * 2};
  return k;
}

}  // namespace colkern::maxsim

namespace colkern::peak {
double fma_gflops_avx512(int threads, int64_t iters) {
  return fma_loop_gflops<maxsim::Avx512>(threads, iters);
}
}  // namespace colkern::peak
