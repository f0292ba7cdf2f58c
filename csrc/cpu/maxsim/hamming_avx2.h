// Hamming MaxSim on AVX2 (also used by the AVX-512 build): 4 document rows per ymm.
//
// The chunk is first re-laid as planes: for every group of 4 rows and every 64-bit word w, the
// 4 rows' word w sit in one ymm. A query token's word w is broadcast, XOR-ed against a plane and
// popcounted per byte with the nibble table (vpshufb); the byte counts of all words are added,
// and one vpsadbw sums each row's 8 bytes into its 64-bit lane: 4 distances per ~5 + 6*words
// instructions, with no horizontal step until the token's last group. A ragged last group
// repeats the chunk's last row, which cannot change a minimum.
#pragma once

#include <immintrin.h>

#include <climits>
#include <cstdint>

#include "hamming_kernel.h"
#include "maxsim_driver.h"

namespace colkern::maxsim {
namespace {

template <int WORDS>
inline void hamming_avx2_fixed(const uint64_t* q, int64_t n_tok, const uint8_t* doc, int64_t nbytes,
                               int64_t rows, int32_t* best) {
  constexpr int64_t kMaxGroups = (kMaxChunkRows + 3) / 4;
  alignas(32) uint64_t planes[kMaxGroups * WORDS * 4];
  const int64_t groups = (rows + 3) / 4;
  for (int64_t g = 0; g < groups; ++g)
    for (int w = 0; w < WORDS; ++w)
      for (int r = 0; r < 4; ++r) {
        const int64_t row = 4 * g + r < rows ? 4 * g + r : rows - 1;
        planes[(g * WORDS + w) * 4 + r] = load_word(doc + row * nbytes, w, nbytes);
      }
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t t = 0; t < n_tok; ++t) {
    __m256i qv[WORDS];
    for (int w = 0; w < WORDS; ++w) qv[w] = _mm256_set1_epi64x(static_cast<long long>(q[t * WORDS + w]));
    // vpsadbw leaves each distance in the low dword of its qword and 0 in the high dword, so
    // an unsigned 32-bit min over all lanes is a min over the 4 rows (high dwords stay 0).
    __m256i acc = _mm256_set1_epi64x(INT32_MAX);
    for (int64_t g = 0; g < groups; ++g) {
      __m256i counts = zero;
      for (int w = 0; w < WORDS; ++w) {
        const __m256i x = _mm256_xor_si256(
            _mm256_load_si256(reinterpret_cast<const __m256i*>(planes + (g * WORDS + w) * 4)), qv[w]);
        const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low4));
        const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low4));
        counts = _mm256_add_epi8(counts, _mm256_add_epi8(lo, hi));  // <= 8 * WORDS per byte
      }
      acc = _mm256_min_epu32(acc, _mm256_sad_epu8(counts, zero));
    }
    alignas(32) int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
    int32_t m = best[t];
    for (int r = 0; r < 8; r += 2) m = lanes[r] < m ? lanes[r] : m;
    best[t] = m;
  }
}

inline void update_hamming_avx2(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                                int64_t nbytes, int64_t rows, int32_t* best) {
  switch (words) {  // 4 words x 8 bits per byte lane: byte counts never overflow
    case 1: return hamming_avx2_fixed<1>(q, n_tok, doc, nbytes, rows, best);
    case 2: return hamming_avx2_fixed<2>(q, n_tok, doc, nbytes, rows, best);
    case 3: return hamming_avx2_fixed<3>(q, n_tok, doc, nbytes, rows, best);
    case 4: return hamming_avx2_fixed<4>(q, n_tok, doc, nbytes, rows, best);
    default: return update_hamming_impl(q, n_tok, words, doc, nbytes, rows, best);
  }
}

}  // namespace
}  // namespace colkern::maxsim
