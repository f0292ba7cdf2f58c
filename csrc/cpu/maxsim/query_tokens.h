// The valid query tokens of a float-query problem, compacted (masked tokens dropped) and
// converted to fp32 once per call: shared by float MaxSim and float x bits (maxsim_bits/).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "colkern/dtype.h"
#include "maxsim.h"

namespace colkern::maxsim {

// q [n_tok, D] fp32 and the query each token belongs to. P: a problem with float queries
// (q, q_dtype, B, Lq, D, q_mask).
struct QueryTokens {
  std::vector<float> q;
  std::vector<int64_t> owner;

  template <class P>
  QueryTokens(const P& p, const Kernel& kernel) {
    const auto* base = static_cast<const unsigned char*>(p.q);
    const int64_t row_size = row_bytes(p.q_dtype, p.D);
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t i = 0; i < p.Lq; ++i) {
        if (p.q_mask != nullptr && p.q_mask[b * p.Lq + i] == 0) continue;
        const unsigned char* row = base + (b * p.Lq + i) * row_size;
        const size_t at = q.size();
        q.resize(at + p.D);
        if (p.q_dtype == DType::F32) {
          std::copy_n(reinterpret_cast<const float*>(row), p.D, q.data() + at);
        } else {
          kernel.to_float(row, p.q_dtype, 1, p.D, q.data() + at);
        }
        owner.push_back(b);
      }
  }
};

}  // namespace colkern::maxsim
