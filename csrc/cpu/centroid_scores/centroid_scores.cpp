// See centroid_scores.h.
#include "centroid_scores.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace colkern::centroid_scores {

int64_t score(const int64_t* list_offsets, int64_t K, const int32_t* list_docs, int64_t P, int64_t n_docs,
              const int64_t* cent, const float* delta, int64_t Lq, int64_t p, const uint8_t* allowed,
              int64_t* out_docs, float* out_scores) {
  if (K < 0 || P < 0 || n_docs < 0 || Lq < 0 || p < 0) throw std::invalid_argument("centroid_scores: negative size");
  if (list_offsets[0] != 0 || list_offsets[K] != P)
    throw std::invalid_argument("centroid_scores: list_offsets must start at 0 and end at len(list_docs)");
  std::vector<float> sum(static_cast<size_t>(n_docs), 0.0f);
  // last_token[d]: the last token that scored d (-1: none yet). Lists are visited in descending
  // delta order within a token, so the first list of token t holding d carries d's best delta.
  std::vector<int32_t> last_token(static_cast<size_t>(n_docs), -1);
  for (int64_t t = 0; t < Lq; ++t) {
    for (int64_t j = 0; j < p; ++j) {
      const int64_t c = cent[t * p + j];
      if (c < 0 || c >= K) throw std::invalid_argument("centroid_scores: centroid id " + std::to_string(c) + " out of range");
      const int64_t lo = list_offsets[c], hi = list_offsets[c + 1];
      if (lo < 0 || lo > hi || hi > P)
        throw std::invalid_argument("centroid_scores: list_offsets are not non-decreasing within [0, P]");
      const float v = delta[t * p + j];
      for (int64_t e = lo; e < hi; ++e) {
        const int32_t d = list_docs[e];
        if (d < 0 || d >= n_docs) throw std::invalid_argument("centroid_scores: document id " + std::to_string(d) + " out of range");
        if (last_token[d] == t || (allowed != nullptr && !allowed[d])) continue;
        last_token[d] = static_cast<int32_t>(t);
        sum[d] += v;
      }
    }
  }
  int64_t n = 0;
  for (int64_t d = 0; d < n_docs; ++d) {
    if (last_token[d] >= 0) {
      out_docs[n] = d;
      out_scores[n] = sum[d];
      ++n;
    }
  }
  return n;
}

}  // namespace colkern::centroid_scores
