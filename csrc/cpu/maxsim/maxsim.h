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

#include "colkern/cpu_features.h"
#include "colkern/dtype.h"

namespace colkern::maxsim {

using ::colkern::DType;

struct Problem {
  const void* q = nullptr;        // [B, Lq, D] contiguous, dtype q_dtype
  DType q_dtype = DType::F32;
  int64_t B = 0, Lq = 0, D = 0;
  const uint8_t* q_mask = nullptr;  // [B, Lq] (0 = token ignored) or null for all valid
  const void* values = nullptr;   // [T, D] contiguous in v_dtype (bit types: [T, ceil(D/8)] bytes)
  DType v_dtype = DType::F32;
  int64_t T = 0;
  const int64_t* starts = nullptr;   // [N]
  const int64_t* lengths = nullptr;  // [N]
  int64_t N = 0;
};

// Throws std::invalid_argument when sizes or document ranges are inconsistent; nothing is read
// out of bounds after validate() passes.
void validate(const Problem& p);

// out: [B, N] float32.
void scores(const Problem& p, float* out, int num_threads);

// Fused top-k: out_scores/out_indices [B, k_eff] with k_eff = min(k, N), best first; ties go to
// the lower document index and NaN ranks above every number (as torch.topk). Extra memory is
// O(threads * B * k), independent of N.
void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads);

// Hamming MaxSim: q is packed bits [B, Lq, ceil(D/8)] uint8, values packed bits [T, ceil(D/8)]
// (q_dtype / v_dtype are ignored). Per token pair the +-1 dot D - 2 * hamming, max over the
// document's rows, summed over valid tokens: integers, exact in fp32.
void validate_hamming(const Problem& p);
void hamming_scores(const Problem& p, float* out, int num_threads);
void hamming_topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices,
                  int num_threads);

// ---- per-ISA kernels (implemented in maxsim_<isa>.cpp) --------------------------------------

// Float x bits by table lookup (bits_lut.h): per group of 4 dimensions and query token, the
// 16 partial dot products a nibble of bits can select, so a row costs D / 4 vector adds.
struct BitsLutKernel {
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

// Query tokens are compacted (masked ones dropped) and converted to fp32 once per call; each
// ISA then lays them out for its micro-kernel.
struct Kernel {
  Isa isa;
  // Floats needed by pack_queries for n_tok tokens of dimension D (0 if the kernel needs none).
  int64_t (*packed_query_floats)(int64_t n_tok, int64_t D);
  void (*pack_queries)(const float* q, int64_t n_tok, int64_t D, float* packed);
  // Converts rows x D fp16 / bf16 elements to fp32 [rows, D] (packed bits go through bits_lut).
  void (*to_float)(const void* src, DType dtype, int64_t rows, int64_t D, float* dst);
  // run_max[t] = max(run_max[t], max_j <q_t, doc[j]>) for the len rows of doc (fp32 [len, D]).
  // run_max has room for n_tok rounded up to run_max_pad(); padding lanes are scratch.
  void (*update_token_max)(const float* q, const float* packed, int64_t n_tok,
                           const float* doc, int64_t len, int64_t D, float* run_max);
  int64_t run_max_pad;
  // best[t] = min(best[t], min_j hamming(q_t, doc_j)); q [n_tok, words] zero-padded words,
  // doc [rows, nbytes] packed bytes (words = ceil(nbytes / 8), rows <= kMaxChunkRows).
  void (*update_hamming)(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                         int64_t nbytes, int64_t rows, int32_t* best);
  BitsLutKernel bits_lut;
};

const Kernel& scalar_kernel();
#ifdef COLKERN_HAVE_AVX2
const Kernel& avx2_kernel();
#endif
#ifdef COLKERN_HAVE_AVX512
const Kernel& avx512_kernel();
#endif

// The kernel of the active ISA level (see cpu_features.h).
const Kernel& active_kernel();

}  // namespace colkern::maxsim
