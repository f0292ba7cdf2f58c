// AVX-512 F/BW/VL/DQ. The only file compiled with -mavx512*.
#include <immintrin.h>

#include "../simd/vec_avx512.h"
#include "colkern/half.h"
#include "maxsim.h"
#include "maxsim_simd.h"
#include "../peak/fma_loop.h"

namespace colkern::maxsim {
namespace {

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
  return fma_loop_gflops<Avx512>(threads, iters);
}
}  // namespace colkern::peak
