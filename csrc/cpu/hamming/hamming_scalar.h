// The portable hamming kernel: per query token, the minimum hamming distance over a chunk of
// document rows. Rows are read as 64-bit words, the last partial word of a row zero-padded
// (padding bits are 0 on both sides, so they never count). It is the scalar level and the
// oracle (hamming_scalar.cpp, no ISA flags: the builtin is libgcc's table popcount), and the
// SIMD files' path for rows wider than 4 words (with -mpopcnt: one POPCNT instruction).
//
// Four document rows are held in registers while every query token streams past, so each
// token's words are loaded once per four rows and the running minimum is written once.
#pragma once

#include <cstdint>
#include <cstring>

namespace colkern::hamming {
namespace {

// Word w of a packed row of nbytes bytes; bytes past the row read as 0 (never out of bounds).
inline uint64_t load_word(const uint8_t* row, int64_t w, int64_t nbytes) {
  uint64_t x = 0;
  const int64_t at = 8 * w, n = nbytes - at < 8 ? nbytes - at : 8;
  std::memcpy(&x, row + at, static_cast<size_t>(n));
  return x;
}

template <int WORDS, int R>
inline void hamming_rows(const uint64_t* q, int64_t n_tok, const uint8_t* doc, int64_t nbytes,
                         int32_t* best) {
  uint64_t d[R][WORDS];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < WORDS; ++w) d[r][w] = load_word(doc + r * nbytes, w, nbytes);
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
inline void hamming_fixed(const uint64_t* q, int64_t n_tok, const uint8_t* doc, int64_t nbytes,
                          int64_t rows, int32_t* best) {
  int64_t j = 0;
  for (; j + 4 <= rows; j += 4) hamming_rows<WORDS, 4>(q, n_tok, doc + j * nbytes, nbytes, best);
  for (; j < rows; ++j) hamming_rows<WORDS, 1>(q, n_tok, doc + j * nbytes, nbytes, best);
}

inline void hamming_generic(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                            int64_t nbytes, int64_t rows, int32_t* best) {
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t t = 0; t < n_tok; ++t) {
      int32_t h = 0;
      for (int64_t w = 0; w < words; ++w)
        h += __builtin_popcountll(q[t * words + w] ^ load_word(doc + j * nbytes, w, nbytes));
      if (h < best[t]) best[t] = h;
    }
}

// best[t] = min(best[t], min_j hamming(q_t, doc_j)) over `rows` packed rows.
inline void update_scalar(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                          int64_t nbytes, int64_t rows, int32_t* best) {
  switch (words) {  // 1..4 words cover dims up to 256 (ColBERT 128, ColPali 128)
    case 1: return hamming_fixed<1>(q, n_tok, doc, nbytes, rows, best);
    case 2: return hamming_fixed<2>(q, n_tok, doc, nbytes, rows, best);
    case 3: return hamming_fixed<3>(q, n_tok, doc, nbytes, rows, best);
    case 4: return hamming_fixed<4>(q, n_tok, doc, nbytes, rows, best);
    default: return hamming_generic(q, n_tok, words, doc, nbytes, rows, best);
  }
}

}  // namespace
}  // namespace colkern::hamming
