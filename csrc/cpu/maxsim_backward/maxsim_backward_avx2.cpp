// AVX2 + FMA: the argmax tile with 6 document rows (as maxsim_avx2.cpp); take/select are a
// compare and a blendv on ymm registers.
#include "cpu/simd/vec_avx2.h"
#include "maxsim_backward.h"
#include "maxsim_backward_simd.h"

namespace colkern::maxsim_backward {
namespace {

struct Avx2Argmax : Avx2 {
  using mask = __m256;
  // a > m, or a NaN while m is not (NLE_UQ is true for unordered; ORD_Q(m, m) excludes NaN m).
  static mask take(reg a, reg m) {
    return _mm256_and_ps(_mm256_cmp_ps(a, m, _CMP_NLE_UQ), _mm256_cmp_ps(m, m, _CMP_ORD_Q));
  }
  static reg select(mask k, reg x, reg y) { return _mm256_blendv_ps(y, x, k); }
};

// 2 query vectors x 6 rows = 12 accumulators + the max / index registers of one vector.
constexpr int kRows = 6;

}  // namespace

const Kernel& avx2_kernel() {
  static const Kernel k{&maxsim::avx2_kernel(), update_token_argmax_simd<Avx2Argmax, kRows>, axpy_simd<Avx2>};
  return k;
}

}  // namespace colkern::maxsim_backward
