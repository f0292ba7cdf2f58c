// Portable baseline and the C++ test oracle of the argmax forward: one fp32 dot product at a
// time, the same tie and NaN rules as the vector tiles.
#include <cmath>

#include "maxsim_backward.h"

namespace colkern::maxsim_backward {
namespace {

void update_token_argmax_scalar(const float* q, const float*, int64_t n_tok, const float* doc, int64_t len,
                                int64_t D, int64_t row0, float* run_max, float* run_idx) {
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* qt = q + t * D;
    float best = run_max[t], idx = run_idx[t];
    for (int64_t j = 0; j < len; ++j) {
      const float* dj = doc + j * D;
      float dot = 0.f;
      for (int64_t k = 0; k < D; ++k) dot += qt[k] * dj[k];
      // Strictly greater (the lowest row wins a tie), or the first NaN, which then sticks.
      if (!std::isnan(best) && (dot > best || std::isnan(dot))) {
        best = dot;
        idx = static_cast<float>(row0 + j);
      }
    }
    run_max[t] = best;
    run_idx[t] = idx;
  }
}

void axpy_scalar(float a, const float* x, float* y, int64_t D) {
  for (int64_t k = 0; k < D; ++k) y[k] += a * x[k];
}

}  // namespace

const Kernel& scalar_kernel() {
  static const Kernel k{&maxsim::scalar_kernel(), update_token_argmax_scalar, axpy_scalar};
  return k;
}

}  // namespace colkern::maxsim_backward
