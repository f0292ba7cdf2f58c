// Float x bits MaxSim by table lookup (asymmetric distance computation, as in product
// quantisation), written once over a vector-traits type V and instantiated by each ISA
// translation unit with its own compiler flags.
//
// A packed-bit document row is 4-bit groups (nibbles) of dimensions. For every query token t
// and group g the 16 partial dot products a nibble can select,
//     table[g][nib][t] = sum over the group's dims d of q_t[d] * s(bit of d in nib)
// (s = +-1 for pm1, {0, 1} for 01), are computed once per call. A row's dot product with the
// token is then the sum of one entry per group: D / 4 vector loads and adds for a whole block
// of tokens, instead of D fused multiply-adds after widening the bits to floats.
//
// Layout [token block][group][16][BW floats], BW = NV * V::W query tokens per block, so the
// entry a row needs is one contiguous run of BW floats (one 64-byte line at BW = 16). A row's
// score for the block comes out already in the tokens' lanes and the running max over rows
// is a plain vertical max, as in maxsim/maxsim_simd.h. At D = 128 and BW = 16 a block's table is
// 32 groups x 16 x 16 x 4 B = 32 KiB: blocks run outer and rows inner, so the table stays in
// L1 while every row of the chunk streams past it.
//
// Groups are two per byte, high nibble first (bits are MSB-first): 2 * ceil(D / 8) groups.
// Dimensions at or past D get q = 0 in the table, so a padding bit adds 0 whatever its value
// (in pm1 a 0 bit must not add -q).
//
// Products are q * (+-1 or 0), exact, and a NaN in q makes every entry of its group NaN
// (NaN * 0 is NaN), so a NaN query component makes that token's max NaN exactly as in the
// fp32 path. Only the order of the fp32 additions differs from the FMA path.
//
// The anonymous namespace gives every ISA translation unit its own copy of these templates
// (no ODR merging of code compiled for different ISAs).
#pragma once

#include <cmath>
#include <cstdint>

#include "maxsim_bits.h"

namespace colkern::maxsim_bits {
namespace {

constexpr int64_t kLutEntries = 16;  // one per nibble value

inline int64_t lut_groups(int64_t D) { return 2 * ((D + 7) / 8); }

template <class V, int NV>
inline int64_t bits_lut_floats(int64_t n_tok, int64_t D) {
  constexpr int64_t BW = NV * V::W;
  return (n_tok + BW - 1) / BW * BW * lut_groups(D) * kLutEntries;
}

template <class V, int NV>
inline void build_bits_lut(const float* q, int64_t n_tok, int64_t D, bool pm1, float* table) {
  constexpr int64_t BW = NV * V::W;
  const int64_t groups = lut_groups(D), blocks = (n_tok + BW - 1) / BW;
  const float zero_bit = pm1 ? -1.f : 0.f;
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t nib = 0; nib < kLutEntries; ++nib) {
        float* entry = table + ((blk * groups + g) * kLutEntries + nib) * BW;
        for (int64_t c = 0; c < BW; ++c) {
          const int64_t t = blk * BW + c;
          float sum = 0.f;  // padding tokens (t >= n_tok) are scratch lanes: all zero
          for (int64_t i = 0; i < 4; ++i) {
            const int64_t d = 4 * g + i;
            const float q_d = (t < n_tok && d < D) ? q[t * D + d] : 0.f;
            sum += q_d * (((nib >> (3 - i)) & 1) ? 1.f : zero_bit);
          }
          entry[c] = sum;
        }
      }
}

// Rows of packed bits -> one byte per group holding nibble * 16, the entry's byte offset
// divided by BW * 4 / 16. Done once per chunk for every token block, it leaves the lookup
// loop one byte load and one indexed vector add per group: extracting nibbles from 64-bit
// words in the loop costs a shift and a mask per group per block instead.
inline void expand_nibbles(const uint8_t* doc, int64_t rows, int64_t nbytes, uint8_t* nibbles) {
  for (int64_t i = 0; i < rows * nbytes; ++i) {
    nibbles[2 * i] = doc[i] & 0xF0;
    nibbles[2 * i + 1] = static_cast<uint8_t>(doc[i] << 4);
  }
}

// Lanes of `s` that are NaN as all-ones (a NaN) and the others 0: OR-ed into the running max
// at the end, since maxps drops a NaN first operand. The scalar traits have no nan_bits; their
// bit_or is an add, for which NaN-or-0 works the same way.
template <class V>
inline typename V::reg nan_lanes(typename V::reg s) {
  if constexpr (V::W == 1) {
    return std::isnan(s) ? s : 0.f;
  } else {
    return V::nan_bits(s);
  }
}

// R rows x one token block. Group g of row r adds into acc[r][.][g % A]: R * A independent
// add chains hide the add latency.
template <class V, int NV, int R, int A>
struct LutTile {
  using reg = typename V::reg;
  static constexpr int W = V::W;
  static constexpr int64_t BW = NV * W;
  static constexpr int64_t kGroupBytes = kLutEntries * BW * sizeof(float);
  static constexpr int64_t kScale = BW * sizeof(float) / 16;  // entry bytes per nibble * 16
  static_assert(BW * sizeof(float) % 16 == 0, "a block must hold a multiple of 4 tokens");

  reg acc[R][NV][A];

  // Adds the entries of K consecutive groups, the first at table gt and nibbles nib[r][0..K).
  template <int K>
  inline void add_groups(const char* gt, const uint8_t* nib, int64_t row_groups) {
#pragma GCC unroll 16
    for (int k = 0; k < K; ++k)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const char* entry = gt + k * kGroupBytes + nib[r * row_groups + k] * kScale;
        const float* e = reinterpret_cast<const float*>(entry);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v][k % A] = V::add(acc[r][v][k % A], V::load(e + v * W));
      }
  }

  // Folds rows [0, R) (nibbles from expand_nibbles, row_groups per row) into m / nan.
  inline void run(const float* block_table, const uint8_t* nib, int64_t row_groups, reg* m, reg* nan) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
        for (int a = 0; a < A; ++a) acc[r][v][a] = V::zero();
    const char* gt = reinterpret_cast<const char*>(block_table);
    int64_t g = 0;
    for (; g + 16 <= row_groups; g += 16, gt += 16 * kGroupBytes) add_groups<16>(gt, nib + g, row_groups);
    for (; g < row_groups; g += 2, gt += 2 * kGroupBytes) add_groups<2>(gt, nib + g, row_groups);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        reg s = acc[r][v][0];
#pragma GCC unroll 8
        for (int a = 1; a < A; ++a) s = V::add(s, acc[r][v][a]);
        // maxps returns its second operand when either is NaN: a NaN already in m sticks,
        // and a NaN score is caught by nan_lanes.
        m[v] = V::max_keep_second_nan(s, m[v]);
        nan[v] = V::bit_or(nan[v], nan_lanes<V>(s));
      }
    }
  }
};

// run_max[t] = max(run_max[t], max over the rows of <q_t, s(row)>) for rows of packed bits
// (ceil(D / 8) bytes each). table from build_bits_lut, 64-byte aligned; nibbles: scratch of
// rows * lut_groups(D) bytes; run_max has room for n_tok rounded up to NV * V::W (padding
// lanes are scratch).
template <class V, int NV, int R, int A>
inline void update_bits_lut(const float* table, int64_t n_tok, const uint8_t* doc, int64_t rows,
                            int64_t D, uint8_t* nibbles, float* run_max) {
  using reg = typename V::reg;
  constexpr int W = V::W;
  constexpr int64_t BW = NV * W;
  const int64_t groups = lut_groups(D), blocks = (n_tok + BW - 1) / BW;
  expand_nibbles(doc, rows, (D + 7) / 8, nibbles);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const float* bt = table + blk * groups * kLutEntries * BW;
    float* rm = run_max + blk * BW;
    reg m[NV], nan[NV];
    for (int v = 0; v < NV; ++v) {
      m[v] = V::load(rm + v * W);
      nan[v] = V::zero();
    }
    int64_t j = 0;
    for (; j + R <= rows; j += R) LutTile<V, NV, R, A>().run(bt, nibbles + j * groups, groups, m, nan);
    for (; j < rows; ++j) LutTile<V, NV, 1, A>().run(bt, nibbles + j * groups, groups, m, nan);
    for (int v = 0; v < NV; ++v) V::store(rm + v * W, V::bit_or(m[v], nan[v]));
  }
}

// The kernel of one ISA, for its getter: NV vectors of V::W tokens per block, R rows and A
// accumulators per row in flight. A constant, so no code of the ISA runs before the dispatch
// has chosen it.
template <class V, int NV, int R, int A>
constexpr Kernel kBitsLutKernel{NV * V::W, bits_lut_floats<V, NV>, build_bits_lut<V, NV>,
                                update_bits_lut<V, NV, R, A>};

}  // namespace
}  // namespace colkern::maxsim_bits
