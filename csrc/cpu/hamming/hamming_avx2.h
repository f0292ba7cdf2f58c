// Hamming MaxSim on AVX2 (also built with the AVX-512 flags, hamming_avx512.cpp): 4 document
// rows per ymm.
//
// The chunk is first re-laid as planes: for every group of 4 rows and every 64-bit word w, the
// 4 rows' word w sit in one ymm, already split into low and high nibbles (the nibbles of an XOR
// are the XOR of the nibbles, so the split is paid once per chunk, not once per query token).
// A query token's nibbles are broadcast, XOR-ed against the planes and popcounted per byte with
// the nibble table (vpshufb); the byte counts of all words are added, and one vpsadbw sums each
// row's 8 bytes into its 64-bit lane: 4 distances per 3 + 5 * words instructions, with no
// horizontal step until the token's last group. A ragged last group repeats the chunk's last
// row, which cannot change a minimum.
#pragma once

#include <immintrin.h>

#include <climits>
#include <cstdint>

#include "cpu/maxsim/maxsim_driver.h"
#include "hamming_scalar.h"

namespace colkern::hamming {
namespace {

template <int WORDS>
inline void hamming_avx2_fixed(const uint64_t* q, int64_t n_tok, const uint8_t* doc, int64_t nbytes,
                               int64_t rows, int32_t* best) {
  constexpr int64_t kMaxGroups = (maxsim::kMaxChunkRows + 3) / 4;
  constexpr uint64_t kLow = 0x0f0f0f0f0f0f0f0full;
  // planes[g][w][nibble][lane]: nibble 0 = low, 1 = high half of each byte. The lane order of
  // the 4 rows inside a plane is free (only their minimum is used).
  alignas(32) uint64_t planes[kMaxGroups * WORDS * 2 * 4];
  const int64_t groups = (rows + 3) / 4;
  int64_t g = 0;
  if (WORDS != 3 && nbytes == 8 * WORDS) {
    // Whole-word rows: transpose 4 rows x WORDS words with unpacks, split nibbles in-vector.
    const __m256i low = _mm256_set1_epi8(0x0f);
    auto store_plane = [&](int64_t grp, int w, __m256i x) {
      uint64_t* dst = planes + (grp * WORDS + w) * 2 * 4;
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst), _mm256_and_si256(x, low));
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 4), _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
    };
    for (; g < rows / 4; ++g) {
      const auto* src = reinterpret_cast<const __m256i*>(doc + g * 4 * nbytes);
      if constexpr (WORDS == 1) {
        store_plane(g, 0, _mm256_loadu_si256(src));
      } else if constexpr (WORDS == 2) {  // a = r0 r1, b = r2 r3 (two words each)
        const __m256i a = _mm256_loadu_si256(src), b = _mm256_loadu_si256(src + 1);
        store_plane(g, 0, _mm256_unpacklo_epi64(a, b));  // r0w0 r2w0 r1w0 r3w0
        store_plane(g, 1, _mm256_unpackhi_epi64(a, b));
      } else if constexpr (WORDS == 4) {  // one row per ymm: a 4x4 qword transpose
        const __m256i r0 = _mm256_loadu_si256(src), r1 = _mm256_loadu_si256(src + 1);
        const __m256i r2 = _mm256_loadu_si256(src + 2), r3 = _mm256_loadu_si256(src + 3);
        const __m256i l01 = _mm256_unpacklo_epi64(r0, r1), h01 = _mm256_unpackhi_epi64(r0, r1);
        const __m256i l23 = _mm256_unpacklo_epi64(r2, r3), h23 = _mm256_unpackhi_epi64(r2, r3);
        store_plane(g, 0, _mm256_permute2x128_si256(l01, l23, 0x20));
        store_plane(g, 1, _mm256_permute2x128_si256(h01, h23, 0x20));
        store_plane(g, 2, _mm256_permute2x128_si256(l01, l23, 0x31));
        store_plane(g, 3, _mm256_permute2x128_si256(h01, h23, 0x31));
      }
    }
  }
  for (; g < groups; ++g)
    for (int w = 0; w < WORDS; ++w)
      for (int r = 0; r < 4; ++r) {
        const int64_t row = 4 * g + r < rows ? 4 * g + r : rows - 1;
        const uint64_t word = load_word(doc + row * nbytes, w, nbytes);
        planes[((g * WORDS + w) * 2 + 0) * 4 + r] = word & kLow;
        planes[((g * WORDS + w) * 2 + 1) * 4 + r] = (word >> 4) & kLow;
      }
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i zero = _mm256_setzero_si256();
  // Two query tokens per pass over the planes: each plane load feeds both, and the two
  // independent chains keep more shuffles in flight.
  constexpr int TQ = 2;
  for (int64_t t0 = 0; t0 < n_tok; t0 += TQ) {
    const int nq = n_tok - t0 < TQ ? static_cast<int>(n_tok - t0) : TQ;
    __m256i q_lo[TQ][WORDS], q_hi[TQ][WORDS], acc[TQ];
    for (int i = 0; i < TQ; ++i) {
      const int64_t t = t0 + (i < nq ? i : 0);  // a missing second token repeats the first
      for (int w = 0; w < WORDS; ++w) {
        q_lo[i][w] = _mm256_set1_epi64x(static_cast<long long>(q[t * WORDS + w] & kLow));
        q_hi[i][w] = _mm256_set1_epi64x(static_cast<long long>((q[t * WORDS + w] >> 4) & kLow));
      }
      // vpsadbw leaves each distance in the low dword of its qword and 0 in the high dword,
      // so an unsigned 32-bit min over all lanes is a min over the 4 rows.
      acc[i] = _mm256_set1_epi64x(INT32_MAX);
    }
    for (int64_t grp = 0; grp < groups; ++grp) {
      __m256i counts[TQ];
      for (int w = 0; w < WORDS; ++w) {
        const uint64_t* plane = planes + (grp * WORDS + w) * 2 * 4;
        const __m256i p_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(plane));
        const __m256i p_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(plane + 4));
        for (int i = 0; i < TQ; ++i) {
          const __m256i c = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(p_lo, q_lo[i][w])),
                                            _mm256_shuffle_epi8(lut, _mm256_xor_si256(p_hi, q_hi[i][w])));
          counts[i] = w == 0 ? c : _mm256_add_epi8(counts[i], c);  // <= 8 * WORDS per byte
        }
      }
      for (int i = 0; i < TQ; ++i) acc[i] = _mm256_min_epu32(acc[i], _mm256_sad_epu8(counts[i], zero));
    }
    for (int i = 0; i < nq; ++i) {
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[i]);
      int32_t m = best[t0 + i];
      for (int r = 0; r < 8; r += 2) m = lanes[r] < m ? lanes[r] : m;
      best[t0 + i] = m;
    }
  }
}

inline void update_avx2(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                        int64_t nbytes, int64_t rows, int32_t* best) {
  switch (words) {  // 4 words x 8 bits per byte lane: byte counts never overflow
    case 1: return hamming_avx2_fixed<1>(q, n_tok, doc, nbytes, rows, best);
    case 2: return hamming_avx2_fixed<2>(q, n_tok, doc, nbytes, rows, best);
    case 3: return hamming_avx2_fixed<3>(q, n_tok, doc, nbytes, rows, best);
    case 4: return hamming_avx2_fixed<4>(q, n_tok, doc, nbytes, rows, best);
    default: return update_scalar(q, n_tok, words, doc, nbytes, rows, best);
  }
}

}  // namespace
}  // namespace colkern::hamming
