// The candidate stage's reduction (colkern.retrieval.centroids): approximate document scores
// from the inverted lists of the centroids each query token probes. Memory-bound gathers and
// scatters over a few hundred thousand list entries per query: one scalar kernel, one thread.
#pragma once

#include <cstdint>

namespace colkern::centroid_scores {

// One shard. list_offsets int64 [K + 1] (non-decreasing, list_offsets[K] == P), list_docs int32
// [P] (local document ids in [0, n_docs), each list sorted and duplicate-free), cent int64
// [Lq, p] (probed centroids of each query token), delta float32 [Lq, p] (their scores minus the
// imputed one, each row in descending order, as colkern.retrieval.centroids.probe returns them),
// allowed uint8 [n_docs] or nullptr (documents with 0 are never scored).
//
// For every document in a probed list: score = sum over tokens t, in order t = 0 .. Lq - 1, of
// the largest delta[t] among token t's probed lists holding it (nothing when none does), each
// added to a float32 running sum that starts at 0. That order is part of the contract: a
// scatter-gather search (colkern.distributed) reproduces the sums bit for bit from per-token
// values by adding the same floats in the same order.
//
// Writes the scored documents in ascending order to out_docs (int64) and their scores to
// out_scores (both with room for n_docs) and returns how many. Throws std::invalid_argument
// on an offset, centroid or document id out of range.
int64_t score(const int64_t* list_offsets, int64_t K, const int32_t* list_docs, int64_t P, int64_t n_docs,
              const int64_t* cent, const float* delta, int64_t Lq, int64_t p, const uint8_t* allowed,
              int64_t* out_docs, float* out_scores);

}  // namespace colkern::centroid_scores
