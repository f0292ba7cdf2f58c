// MaxSim of float queries against packed sign bits, on raw pointers: no torch, no Python.
//
//   score[b, n] = sum over valid query tokens i of  max over rows j of doc n of  <Q[b, i], s(bits_j)>
//
// with s(bit) = +-1 (BitsMode::PM1) or {0, 1} (BitsMode::ZERO_ONE) per dimension. Documents are
// rows of packed bits [T, ceil(D/8)] (MSB first, padding bits 0) described by starts/lengths as
// in maxsim.h, with the same conventions: fp32 accumulation, an empty document scores 0, masked
// tokens are ignored and a NaN query component makes that token's max NaN.
#pragma once

#include <cstdint>

#include "colkern/dtype.h"
#include "colkern/isa_select.h"
#include "colkern/problem.h"

namespace colkern::maxsim_bits {

// Queries, mask, sizes and document ranges: colkern/problem.h.
struct Problem : FloatQueryProblem {
  const uint8_t* bits = nullptr;  // [T, ceil(D/8)] packed bits
  BitsMode mode = BitsMode::PM1;
};

// Throws std::invalid_argument when sizes, codes or document ranges are inconsistent.
void validate(const Problem& p);

// out: [B, N] float32.
void scores(const Problem& p, float* out, int num_threads);

// Fused top-k, ordered as maxsim::topk.
void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads);

// ---- per-ISA kernels (implemented in maxsim_bits_<isa>.cpp) ---------------------------------

// Table lookup (bits_lut.h): per group of 4 dimensions and query token, the 16 partial dot
// products a nibble of bits can select, so a row costs D / 4 vector adds.
struct Kernel {
  int64_t block;  // query tokens per table block: run_max is padded to a multiple of it
  // Floats of the table for n_tok tokens of dimension D; the table must be 64-byte aligned.
  int64_t (*table_floats)(int64_t n_tok, int64_t D);
  // q fp32 [n_tok, D]; pm1: bits read as +-1, else {0, 1}.
  void (*build)(const float* q, int64_t n_tok, int64_t D, bool pm1, float* table);
  // run_max[t] = max(run_max[t], max_j <q_t, s(doc[j])>) for rows of packed bits [rows, ceil(D/8)];
  // nibbles: scratch of rows * 2 * ceil(D/8) bytes.
  void (*update)(const float* table, int64_t n_tok, const uint8_t* doc, int64_t rows, int64_t D,
                 uint8_t* nibbles, float* run_max);
};

COLKERN_DECLARE_ISA_GETTERS(const Kernel&, kernel);

}  // namespace colkern::maxsim_bits
