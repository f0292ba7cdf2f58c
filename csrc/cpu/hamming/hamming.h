// Hamming MaxSim: packed sign-bit queries against packed sign-bit documents, on raw pointers.
//
//   score[b, n] = sum over valid query tokens i of  max over rows j of doc n of  D - 2 * hamming(q_i, d_j)
//
// the +-1 dot product of two sign vectors, so scores are integers, exact in fp32. Queries are
// [B, Lq, ceil(D/8)] and documents [T, ceil(D/8)] packed bits (MSB first, padding bits 0),
// described by starts/lengths as in maxsim.h; empty documents score 0, masked tokens are ignored.
#pragma once

#include <cstdint>

#include "colkern/isa_select.h"
#include "colkern/problem.h"

namespace colkern::hamming {

// Mask, sizes and document ranges: colkern/problem.h.
struct Problem : QueryDocsProblem {
  const uint8_t* q = nullptr;     // [B, Lq, ceil(D/8)] packed bits
  const uint8_t* bits = nullptr;  // [T, ceil(D/8)] packed bits
};

// Throws std::invalid_argument when sizes or document ranges are inconsistent.
void validate(const Problem& p);

// out: [B, N] float32.
void scores(const Problem& p, float* out, int num_threads);

// Fused top-k, ordered as maxsim::topk.
void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads);

// ---- per-ISA kernels (implemented in hamming_<isa>.cpp) -------------------------------------

// best[t] = min(best[t], min_j hamming(q_t, doc_j)); q [n_tok, words] zero-padded words,
// doc [rows, nbytes] packed bytes (words = ceil(nbytes / 8), rows <= maxsim::kMaxChunkRows).
using UpdateFn = void (*)(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                          int64_t nbytes, int64_t rows, int32_t* best);

COLKERN_DECLARE_ISA_GETTERS(UpdateFn, update);
#ifdef COLKERN_HAVE_AVX512_VPOPCNTDQ
// Used at the AVX-512 level when the CPU also has VPOPCNTDQ (cpu_has_avx512_vpopcntdq()).
UpdateFn avx512_vpopcnt_update();
#endif

}  // namespace colkern::hamming
