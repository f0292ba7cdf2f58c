// Portable baseline and the C++ test oracle: plain loops, one fp32 dot product at a time.
#include <cmath>

#include "colkern/half.h"
#include "maxsim.h"

namespace colkern::maxsim {

namespace {

int64_t no_packing(int64_t, int64_t) { return 0; }
void no_pack(const float*, int64_t, int64_t, float*) {}

void to_float_scalar(const void* src, DType dtype, int64_t n, float* dst) {
  const auto* s = static_cast<const uint16_t*>(src);
  if (dtype == DType::F16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(s[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = bfloat16_to_float(s[i]);
  }
}

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
  static const Kernel k{Isa::Scalar, no_packing, no_pack, to_float_scalar,
                        update_token_max_scalar, 1};
  return k;
}

}  // namespace colkern::maxsim
