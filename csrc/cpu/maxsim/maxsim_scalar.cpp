// Portable baseline and the C++ test oracle: plain loops, one fp32 dot product at a time.
#include <cmath>

#include "cpu/simd/to_float.h"
#include "cpu/simd/vec_scalar.h"
#include "maxsim.h"

namespace colkern::maxsim {

namespace {

int64_t no_packing(int64_t, int64_t) { return 0; }
void no_pack(const float*, int64_t, int64_t, float*) {}

void update_token_max_scalar(const float* q, const float*, int64_t n_tok, const float* doc,
                             int64_t len, int64_t D, float* run_max) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* qt = q + t * D;
    float best = run_max[t];
    for (int64_t j = 0; j < len; ++j) {
      const float* dj = doc + j * D;
      float dot = 0.f;
      for (int64_t k = 0; k < D; ++k) dot += qt[k] * dj[k];
      // NaN is sticky: once a token's max is NaN it stays NaN, like torch.amax.
      if (std::isnan(dot) || std::isnan(best)) {
        best = NAN;
      } else if (dot > best) {
        best = dot;
      }
    }
    run_max[t] = best;
  }
}

}  // namespace

const Kernel& scalar_kernel() {
  static const Kernel k{no_packing, no_pack, to_float_rows<Scalar>, update_token_max_scalar, 1};
  return k;
}

}  // namespace colkern::maxsim
