// Hamming MaxSim at the AVX-512 level on CPUs without VPOPCNTDQ (Skylake / Cascade Lake Xeons):
// the nibble-table popcount (Muła's vpshufb lookup) over 512 bits with AVX-512BW, 8 document rows
// per zmm.
//
// The chunk is re-laid as planes (hamming_avx512_planes.h: for every group of 8 rows and every
// 64-bit word w, the 8 rows' word w in one zmm) and every plane is split once into its low and
// high nibbles (the nibbles of an XOR are the XOR of the nibbles, so the split is paid once per
// chunk, not once per query token). Per query token and word: 2 XOR + 2 VPSHUFB + 1-2 byte adds;
// one VPSADBW per group sums each row's bytes into its qword and an unsigned min keeps the best
// row: for D = 128, 14 instructions per 8 (token, row) pairs, half the count of the AVX2 kernel
// per pair (which this level ran before: 4 rows per ymm).
//
// Why not Harley-Seal carry-save adders: they cut the lookups of a long stream of words summed
// into ONE count (16 words -> 1 lookup + 15 CSAs). Here every (token, row) pair needs its own
// count over only WORDS = 2 words, so across a pair's words a CSA saves nothing (x + y needs
// popcount(x ^ y) + 2 popcount(x & y): still two lookups). Carry-save accumulation across
// pairs needs a bit-sliced layout (one bit of 512 rows per zmm, 128 planes for D = 128) with a
// bit-sliced minimum; that is a different kernel, not a drop-in for this one.
#include <immintrin.h>

#include <climits>
#include <cstdint>

#include "cpu/maxsim/maxsim_driver.h"
#include "hamming.h"
#include "hamming_avx512_planes.h"
#include "hamming_scalar.h"

namespace colkern::hamming {
namespace {

template <int WORDS>
inline void hamming_avx512bw_fixed(const uint64_t* q, int64_t n_tok, const uint8_t* doc, int64_t nbytes,
                                   int64_t rows, int32_t* best) {
  constexpr int64_t kMaxGroups = (maxsim::kMaxChunkRows + kGroupRows - 1) / kGroupRows;
  constexpr uint64_t kLow = 0x0f0f0f0f0f0f0f0full;
  // planes[g][w] (8 rows' word w), then nibbles[g][w][0 = low, 1 = high]: 8 qwords each.
  alignas(64) uint64_t planes[kMaxGroups * WORDS * 8];
  alignas(64) uint64_t nibbles[kMaxGroups * WORDS * 2 * 8];
  build_planes<WORDS>(doc, nbytes, rows, planes);
  const int64_t groups = (rows + kGroupRows - 1) / kGroupRows;
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int64_t p = 0; p < groups * WORDS; ++p) {
    const __m512i x = _mm512_load_si512(planes + p * 8);
    _mm512_store_si512(nibbles + p * 16, _mm512_and_si512(x, low));
    _mm512_store_si512(nibbles + p * 16 + 8, _mm512_and_si512(_mm512_srli_epi16(x, 4), low));
  }
  const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
  const __m512i zero = _mm512_setzero_si512();
  // Four query tokens per pass: each nibble-plane load feeds four independent chains, and the
  // 32 zmm registers hold their 4 x 2 x WORDS broadcast nibbles for WORDS <= 2.
  constexpr int TQ = 4;
  for (int64_t t0 = 0; t0 < n_tok; t0 += TQ) {
    const int nq = n_tok - t0 < TQ ? static_cast<int>(n_tok - t0) : TQ;
    __m512i q_lo[TQ][WORDS], q_hi[TQ][WORDS], acc[TQ];
    for (int i = 0; i < TQ; ++i) {
      const int64_t t = t0 + (i < nq ? i : 0);  // missing tokens repeat the first
      for (int w = 0; w < WORDS; ++w) {
        q_lo[i][w] = _mm512_set1_epi64(static_cast<long long>(q[t * WORDS + w] & kLow));
        q_hi[i][w] = _mm512_set1_epi64(static_cast<long long>((q[t * WORDS + w] >> 4) & kLow));
      }
      acc[i] = _mm512_set1_epi64(INT32_MAX);
    }
    for (int64_t g = 0; g < groups; ++g) {
      __m512i counts[TQ];
      for (int w = 0; w < WORDS; ++w) {
        const uint64_t* plane = nibbles + (g * WORDS + w) * 16;
        const __m512i p_lo = _mm512_load_si512(plane), p_hi = _mm512_load_si512(plane + 8);
        for (int i = 0; i < TQ; ++i) {
          const __m512i c = _mm512_add_epi8(_mm512_shuffle_epi8(lut, _mm512_xor_si512(p_lo, q_lo[i][w])),
                                            _mm512_shuffle_epi8(lut, _mm512_xor_si512(p_hi, q_hi[i][w])));
          counts[i] = w == 0 ? c : _mm512_add_epi8(counts[i], c);  // <= 8 * WORDS per byte
        }
      }
      // vpsadbw: each row's 8 byte counts summed into its qword.
      for (int i = 0; i < TQ; ++i) acc[i] = _mm512_min_epu64(acc[i], _mm512_sad_epu8(counts[i], zero));
    }
    for (int i = 0; i < nq; ++i) {
      const int32_t m = static_cast<int32_t>(_mm512_reduce_min_epu64(acc[i]));
      if (m < best[t0 + i]) best[t0 + i] = m;
    }
  }
}

void update_avx512bw(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc, int64_t nbytes,
                     int64_t rows, int32_t* best) {
  switch (words) {  // 4 words x 8 bits per byte lane: byte counts never overflow
    case 1: return hamming_avx512bw_fixed<1>(q, n_tok, doc, nbytes, rows, best);
    case 2: return hamming_avx512bw_fixed<2>(q, n_tok, doc, nbytes, rows, best);
    case 3: return hamming_avx512bw_fixed<3>(q, n_tok, doc, nbytes, rows, best);
    case 4: return hamming_avx512bw_fixed<4>(q, n_tok, doc, nbytes, rows, best);
    default: return update_scalar(q, n_tok, words, doc, nbytes, rows, best);
  }
}

}  // namespace

UpdateFn avx512_update() { return update_avx512bw; }

}  // namespace colkern::hamming
