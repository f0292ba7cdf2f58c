// AVX-512 F/BW/VL/DQ: the argmax tile with 12 document rows (as maxsim_avx512.cpp); take is a
// mask-register compare and select a masked blend.
#include "cpu/simd/vec_avx512.h"
#include "maxsim_backward.h"
#include "maxsim_backward_simd.h"

namespace colkern::maxsim_backward {
namespace {

struct Avx512Argmax : Avx512 {
  using mask = __mmask16;
  // a > m, or a NaN while m is not (NLE_UQ is true for unordered; ORD_Q(m, m) excludes NaN m).
  static mask take(reg a, reg m) {
    return _mm512_cmp_ps_mask(a, m, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q);
  }
  static reg select(mask k, reg x, reg y) { return _mm512_mask_blend_ps(k, y, x); }
};

// 24 accumulators (2 query vectors x 12 rows) + 2 query vectors + max / index: fits 32 zmm.
constexpr int kRows = 12;

}  // namespace

const Kernel& avx512_kernel() {
  static const Kernel k{&maxsim::avx512_kernel(), update_token_argmax_simd<Avx512Argmax, kRows>,
                        axpy_simd<Avx512>};
  return k;
}

}  // namespace colkern::maxsim_backward
