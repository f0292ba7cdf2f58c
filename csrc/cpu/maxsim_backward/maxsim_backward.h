// MaxSim for training, on raw pointers (no torch, no Python): the forward that also records
// which document row won each query token's max, and the backward that scatters gradients
// through those rows.
//
//   score[b, n]     = sum over valid i of  max_j <Q[b, i], doc_n[j]>
//   argmax[b, i, n] = the j of that max (local row within document n), int32
//   dQ[b, i]        += grad[b, n] * doc_n[argmax[b, i, n]]
//   dvalues[starts[n] + argmax[b, i, n]] += grad[b, n] * Q[b, i]
//
// Rules, identical on every ISA level and on the Triton path:
//   * ties: the lowest row index wins (a later row replaces the running max only if strictly
//     greater), so exactly one row per (query token, document) receives the gradient;
//   * NaN: the first row whose product is NaN wins and stays (NaN is sticky, as in the scores);
//   * masked query tokens and empty documents record -1 and receive / pass no gradient.
// The argmax is O(B x Lq x N) int32: the [B, Lq, N, L] similarity tensor is never stored.
// Accumulation is fp32 whatever the input dtype; gradients are returned in fp32.
#pragma once

#include <cstdint>

#include "cpu/maxsim/maxsim.h"

namespace colkern::maxsim_backward {

using maxsim::Problem;

// Row indices are tracked in fp32 lanes next to the running max, which is exact below 2^24.
constexpr int64_t kMaxDocRows = int64_t{1} << 24;

// out: [B, N] float32 (as maxsim::scores); argmax: [B, Lq, N] int32.
void scores_argmax(const Problem& p, float* out, int32_t* argmax, int num_threads);

// grad: [B, N] float32; argmax: [B, Lq, N] int32 from scores_argmax on the same problem.
// dq: [B, Lq, D] float32 and dvalues: [T, D] float32, both overwritten (rows outside every
// document get 0). Documents are processed in parallel; each document owns its rows, and
// overlapping ranges (a subset that repeats rows) fall back to one thread, so there are no
// races. dq is accumulated per thread and summed in thread order (deterministic).
// Throws std::invalid_argument on an argmax entry outside [-1, length).
void backward(const Problem& p, const float* grad, const int32_t* argmax, float* dq, float* dvalues,
              int num_threads);

// ---- per-ISA kernels (maxsim_backward_<isa>.cpp) -------------------------------------------
struct Kernel {
  const maxsim::Kernel* base;  // query packing and fp16/bf16 widening of the same ISA
  // Folds len rows of doc (fp32 [len, D], local rows row0 ..) into each token's running max and
  // its row index (fp32 lanes, padded like maxsim::Kernel::update_token_max).
  void (*update_token_argmax)(const float* q, const float* packed, int64_t n_tok, const float* doc,
                              int64_t len, int64_t D, int64_t row0, float* run_max, float* run_idx);
  // y[0:D] += a * x[0:D]
  void (*axpy)(float a, const float* x, float* y, int64_t D);
};

COLKERN_DECLARE_ISA_GETTERS(const Kernel&, kernel);

}  // namespace colkern::maxsim_backward
