// The document planes of the AVX-512 hamming kernels (hamming_avx512.cpp, hamming_avx512_vpopcnt.cpp):
// for every group of 8 document rows and every 64-bit word w, the 8 rows' word w in one zmm.
// Included only by files built with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "hamming_scalar.h"

namespace colkern::hamming {
namespace {

constexpr int64_t kGroupRows = 8;

// planes[g][w][lane] = word w of row 8g + lane; rows past `rows` repeat the last row.
template <int WORDS>
inline void build_planes(const uint8_t* doc, int64_t nbytes, int64_t rows, uint64_t* planes) {
  const int64_t groups = (rows + kGroupRows - 1) / kGroupRows;
  int64_t g = 0;
  if (nbytes == 8 * WORDS) {
    // Whole-word rows: 8 rows are 8 * WORDS contiguous qwords; gather word w of each with
    // two-source permutes (one per plane for WORDS <= 2, three for WORDS = 4).
    for (; g < rows / kGroupRows; ++g) {
      const uint8_t* src = doc + g * kGroupRows * nbytes;
      uint64_t* dst = planes + g * WORDS * 8;
      if constexpr (WORDS == 1) {
        _mm512_store_si512(dst, _mm512_loadu_si512(src));
      } else if constexpr (WORDS == 2) {  // a = r0..r3, b = r4..r7, two words each
        const __m512i a = _mm512_loadu_si512(src), b = _mm512_loadu_si512(src + 64);
        const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
        _mm512_store_si512(dst, _mm512_permutex2var_epi64(a, even, b));
        _mm512_store_si512(dst + 8, _mm512_permutex2var_epi64(a, odd, b));
      } else if constexpr (WORDS == 4) {  // a_i = rows 2i, 2i+1, four words each
        const __m512i a0 = _mm512_loadu_si512(src), a1 = _mm512_loadu_si512(src + 64);
        const __m512i a2 = _mm512_loadu_si512(src + 128), a3 = _mm512_loadu_si512(src + 192);
        for (int w = 0; w < 4; ++w) {
          const __m512i lo = _mm512_setr_epi64(w, w + 4, w + 8, w + 12, 0, 0, 0, 0);
          const __m512i hi = _mm512_setr_epi64(0, 0, 0, 0, w, w + 4, w + 8, w + 12);
          const __m512i r03 = _mm512_permutex2var_epi64(a0, lo, a1);
          const __m512i r47 = _mm512_permutex2var_epi64(a2, hi, a3);
          _mm512_store_si512(dst + w * 8, _mm512_mask_blend_epi64(0xF0, r03, r47));
        }
      } else {
        break;  // WORDS == 3: the scalar fill below
      }
    }
  }
  for (; g < groups; ++g)
    for (int w = 0; w < WORDS; ++w)
      for (int64_t lane = 0; lane < kGroupRows; ++lane) {
        const int64_t row = kGroupRows * g + lane < rows ? kGroupRows * g + lane : rows - 1;
        planes[(g * WORDS + w) * 8 + lane] = load_word(doc + row * nbytes, w, nbytes);
      }
}

}  // namespace
}  // namespace colkern::hamming
