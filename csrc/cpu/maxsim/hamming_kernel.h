// Hamming MaxSim micro-kernel: per query token, the minimum hamming distance over a chunk of
// document rows. Rows and tokens are zero-padded to whole 64-bit words (padding bits are 0 on
// both sides, so they never count). Included by each ISA translation unit: with -mpopcnt the
// builtin is one POPCNT instruction; without it, libgcc's table version (the scalar oracle).
//
// Four document rows are held in registers while every query token streams past, so each
// token's words are loaded once per four rows and the running minimum is written once.
#pragma once

#include <cstdint>

namespace colkern::maxsim {
namespace {

template <int WORDS, int R>
inline void hamming_rows(const uint64_t* q, int64_t n_tok, const uint64_t* doc, int32_t* best) {
  uint64_t d[R][WORDS];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < WORDS; ++w) d[r][w] = doc[r * WORDS + w];
  for (int64_t t = 0; t < n_tok; ++t) {
    const uint64_t* qt = q + t * WORDS;
    int32_t m = best[t];
    for (int r = 0; r < R; ++r) {
      int32_t h = 0;
      for (int w = 0; w < WORDS; ++w) h += __builtin_popcountll(qt[w] ^ d[r][w]);
      m = h < m ? h : m;
    }
    best[t] = m;
  }
}

template <int WORDS>
inline void hamming_fixed(const uint64_t* q, int64_t n_tok, const uint64_t* doc, int64_t rows,
                          int32_t* best) {
  int64_t j = 0;
  for (; j + 4 <= rows; j += 4) hamming_rows<WORDS, 4>(q, n_tok, doc + j * WORDS, best);
  for (; j < rows; ++j) hamming_rows<WORDS, 1>(q, n_tok, doc + j * WORDS, best);
}

inline void hamming_generic(const uint64_t* q, int64_t n_tok, int64_t words, const uint64_t* doc,
                            int64_t rows, int32_t* best) {
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t t = 0; t < n_tok; ++t) {
      int32_t h = 0;
      for (int64_t w = 0; w < words; ++w) h += __builtin_popcountll(q[t * words + w] ^ doc[j * words + w]);
      if (h < best[t]) best[t] = h;
    }
}

// best[t] = min(best[t], min_j hamming(q_t, doc_j)) over `rows` rows of `words` words.
inline void update_hamming_impl(const uint64_t* q, int64_t n_tok, int64_t words,
                                const uint64_t* doc, int64_t rows, int32_t* best) {
  switch (words) {  // 1..4 words cover dims up to 256 (ColBERT 128, ColPali 128)
    case 1: return hamming_fixed<1>(q, n_tok, doc, rows, best);
    case 2: return hamming_fixed<2>(q, n_tok, doc, rows, best);
    case 3: return hamming_fixed<3>(q, n_tok, doc, rows, best);
    case 4: return hamming_fixed<4>(q, n_tok, doc, rows, best);
    default: return hamming_generic(q, n_tok, words, doc, rows, best);
  }
}

}  // namespace
}  // namespace colkern::maxsim
