// MaxSim (late interaction) on raw pointers: no torch, no Python.
//
//   score[b, n] = sum over valid query tokens i of  max over doc tokens j of <Q[b, i], doc_n[j]>
//
// Documents are rows of one [T, D] matrix; document n is rows starts[n] .. starts[n]+lengths[n].
// Packed corpora (offsets), padded batches (start = n * Ld) and subsets of a corpus are all
// described this way without copying. An empty document scores 0 for every query (the sum of an
// empty set of per-token maxima; also what colpali-engine's zero padding yields).
// Accumulation is fp32 whatever the input dtype. A NaN product makes that token's max NaN.
#pragma once

#include <cstdint>

#include "colkern/dtype.h"
#include "colkern/isa_select.h"
#include "colkern/problem.h"

namespace colkern::maxsim {

using ::colkern::DType;

// Queries, mask, sizes and document ranges: colkern/problem.h.
struct Problem : FloatQueryProblem {
  const void* values = nullptr;  // [T, D] contiguous, dtype v_dtype
  DType v_dtype = DType::F32;
};

// Throws std::invalid_argument when sizes, dtype codes or document ranges are inconsistent;
// nothing is read out of bounds after validate() passes.
void validate(const Problem& p);

// out: [B, N] float32.
void scores(const Problem& p, float* out, int num_threads);

// Fused top-k: out_scores/out_indices [B, k_eff] with k_eff = min(k, N), best first; ties go to
// the lower document index and NaN ranks above every number (as torch.topk). Extra memory is
// O(threads * B * k), independent of N.
void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads);

// ---- per-ISA kernels (implemented in maxsim_<isa>.cpp) --------------------------------------

// Query tokens are compacted (masked ones dropped) and converted to fp32 once per call; each
// ISA then lays them out for its micro-kernel.
struct Kernel {
  // Floats needed by pack_queries for n_tok tokens of dimension D (0 if the kernel needs none).
  int64_t (*packed_query_floats)(int64_t n_tok, int64_t D);
  void (*pack_queries)(const float* q, int64_t n_tok, int64_t D, float* packed);
  // Converts rows x D fp16 / bf16 elements to fp32 [rows, D].
  void (*to_float)(const void* src, DType dtype, int64_t rows, int64_t D, float* dst);
  // run_max[t] = max(run_max[t], max_j <q_t, doc[j]>) for the len rows of doc (fp32 [len, D]).
  // run_max has room for n_tok rounded up to run_max_pad(); padding lanes are scratch.
  void (*update_token_max)(const float* q, const float* packed, int64_t n_tok,
                           const float* doc, int64_t len, int64_t D, float* run_max);
  int64_t run_max_pad;
  // As update_token_max on bf16 rows read in place (widened in registers), or null: the rows are
  // widened into a buffer by to_float first.
  void (*update_token_max_bf16)(const float* q, const float* packed, int64_t n_tok,
                                const uint16_t* doc, int64_t len, int64_t D, float* run_max) = nullptr;
};

COLKERN_DECLARE_ISA_GETTERS(const Kernel&, kernel);

// The kernel of the active ISA level (see cpu_features.h); also the fp32 conversion of
// float x bits queries (maxsim_bits/).
const Kernel& active_kernel();

}  // namespace colkern::maxsim
