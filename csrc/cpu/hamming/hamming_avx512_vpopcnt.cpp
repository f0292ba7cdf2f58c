// Hamming MaxSim with AVX-512 VPOPCNTDQ: the only file compiled with -mavx512vpopcntdq.
//
// The chunk is re-laid as planes: for every group of 8 document rows and every 64-bit word w,
// the 8 rows' word w sit in one zmm. A query token's word is broadcast, XOR-ed against a plane
// and VPOPCNTQ counts all 8 distances' bits at once; the words' counts add up lane by lane and a
// vertical unsigned min keeps each token's best row. For D = 128 that is 2 XOR + 2 VPOPCNTQ +
// 1 add + 1 min per 8 (token, row) pairs, with no horizontal step until the chunk's end (the
// AVX2 nibble-table kernel needs about 4x the instructions). Four query tokens share each plane
// load. A ragged last group repeats the chunk's last row, which cannot change a minimum.
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
inline void hamming_vpopcnt_fixed(const uint64_t* q, int64_t n_tok, const uint8_t* doc, int64_t nbytes,
                                  int64_t rows, int32_t* best) {
  constexpr int64_t kMaxGroups = (maxsim::kMaxChunkRows + kGroupRows - 1) / kGroupRows;
  alignas(64) uint64_t planes[kMaxGroups * WORDS * 8];
  build_planes<WORDS>(doc, nbytes, rows, planes);
  const int64_t groups = (rows + kGroupRows - 1) / kGroupRows;
  constexpr int TQ = 4;  // tokens per pass: each plane load feeds 4 independent chains
  for (int64_t t0 = 0; t0 < n_tok; t0 += TQ) {
    const int nq = n_tok - t0 < TQ ? static_cast<int>(n_tok - t0) : TQ;
    __m512i qv[TQ][WORDS], acc[TQ];
    for (int i = 0; i < TQ; ++i) {
      const int64_t t = t0 + (i < nq ? i : 0);  // missing tokens repeat the first
      for (int w = 0; w < WORDS; ++w) qv[i][w] = _mm512_set1_epi64(static_cast<long long>(q[t * WORDS + w]));
      acc[i] = _mm512_set1_epi64(INT32_MAX);
    }
    for (int64_t g = 0; g < groups; ++g) {
      __m512i cnt[TQ];
      for (int w = 0; w < WORDS; ++w) {
        const __m512i plane = _mm512_load_si512(planes + (g * WORDS + w) * 8);
        for (int i = 0; i < TQ; ++i) {
          const __m512i c = _mm512_popcnt_epi64(_mm512_xor_si512(plane, qv[i][w]));
          cnt[i] = w == 0 ? c : _mm512_add_epi64(cnt[i], c);
        }
      }
      for (int i = 0; i < TQ; ++i) acc[i] = _mm512_min_epu64(acc[i], cnt[i]);
    }
    for (int i = 0; i < nq; ++i) {
      const int32_t m = static_cast<int32_t>(_mm512_reduce_min_epu64(acc[i]));
      if (m < best[t0 + i]) best[t0 + i] = m;
    }
  }
}

void update_avx512_vpopcnt(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                           int64_t nbytes, int64_t rows, int32_t* best) {
  switch (words) {  // counts per lane are at most 64 * WORDS: no overflow anywhere
    case 1: return hamming_vpopcnt_fixed<1>(q, n_tok, doc, nbytes, rows, best);
    case 2: return hamming_vpopcnt_fixed<2>(q, n_tok, doc, nbytes, rows, best);
    case 3: return hamming_vpopcnt_fixed<3>(q, n_tok, doc, nbytes, rows, best);
    case 4: return hamming_vpopcnt_fixed<4>(q, n_tok, doc, nbytes, rows, best);
    default: return update_scalar(q, n_tok, words, doc, nbytes, rows, best);
  }
}

}  // namespace

UpdateFn avx512_vpopcnt_update() { return update_avx512_vpopcnt; }

}  // namespace colkern::hamming
