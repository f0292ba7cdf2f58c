// The register-blocked MaxSim micro-kernel, written once over a vector-traits type V and
// instantiated by each ISA translation unit with its own compiler flags.
//
// Lanes run over query tokens, not over the dimension: a block of NV vectors holds NV*W query
// tokens transposed to [D][NV*W], and each step k broadcasts one element of R document rows.
// So a tile is an outer-product update acc[r][v] += doc[r][k] * Q[k][v*W..] with no horizontal
// sums, documents are read in their natural [L, D] layout (no transpose, no copy), and the
// running max over document rows is a plain vertical max into the tokens' lanes.
//
// The anonymous namespace gives every ISA translation unit its own copy of these templates, so
// the linker can never merge an AVX-512 instantiation into the AVX2 code (an ODR trap).
#pragma once

#include <cstdint>

#include "colkern/half.h"
#include "cpu/simd/to_float.h"
#include "maxsim.h"

namespace colkern::maxsim {
namespace {

// V provides: W, reg, zero(), load(p), store(p, r), bcast(p), fma(a, b, c) = a*b + c, prefetch(p),
// max_keep_second_nan(a, b), nan_bits(a) (all-ones lanes where a is NaN), bit_or(a, b).
//
// T = uint16_t: bf16 documents, widened in registers as they are broadcast (no buffer pass).
// bf16 is the top half of an fp32, so one 32-bit broadcast of the pair (k, k+1) gives element
// k + 1 by masking the low half off and element k by shifting it up: 2 integer ops per pair per
// row, fed by a plain broadcast load, in place of a widening pass that loads, converts and stores
// every element and then reads it back from a buffer. The FMAs run in the same k order as the
// fp32 kernel, so results are bit-identical to widening first.
template <class V, int NV, int R, class T = float>
inline void maxsim_tile(const float* qp, const T* doc, int64_t D, float* run_max) {
  using reg = typename V::reg;
  constexpr int W = V::W;
  constexpr bool kBf16 = sizeof(T) == 2;
  reg acc[R][NV];
  const T* rows[R];
  // The pragmas unroll before scalar replacement of aggregates runs, so acc[][] lives in
  // registers; without them GCC keeps a stack copy and stores it on every step.
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    rows[r] = doc + r * D;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  }
  auto step = [&](int64_t k) __attribute__((always_inline)) {
    if constexpr (!kBf16) {
      reg qv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) qv[v] = V::load(qp + k * (NV * W) + v * W);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const reg d = V::bcast(rows[r] + k);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(qv[v], d, acc[r][v]);
      }
    }
  };
  // Two steps from one broadcast bf16 pair (see above); a scalar-widened last element for odd D.
  auto step_pair = [&](int64_t k) __attribute__((always_inline)) {
    if constexpr (kBf16) {
      reg q0[NV], q1[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        q0[v] = V::load(qp + k * (NV * W) + v * W);
        q1[v] = V::load(qp + (k + 1) * (NV * W) + v * W);
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        reg d0, d1;
        V::bf16_pair(rows[r] + k, d0, d1);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(q0[v], d0, acc[r][v]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(q1[v], d1, acc[r][v]);
      }
    }
  };
  // R rows at a stride of D elements are R separate streams; the hardware prefetchers lag on
  // the first pass over a document that comes from DRAM, so each 64-byte line of the next
  // tile's rows is requested one tile ahead (prefetches never fault past the end).
  constexpr int64_t kLine = 64 / sizeof(T);
  int64_t k = 0;
  for (; k + kLine <= D; k += kLine) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) V::prefetch(rows[r] + R * D + k);
    if constexpr (kBf16) {
#pragma GCC unroll 16
      for (int64_t kk = 0; kk < kLine; kk += 2) step_pair(k + kk);
    } else {
#pragma GCC unroll 16
      for (int64_t kk = 0; kk < kLine; ++kk) step(k + kk);
    }
  }
  if constexpr (kBf16) {
    for (; k + 2 <= D; k += 2) step_pair(k);
    if (k < D) {  // odd D: the last element alone (a pair would read past the row)
      reg qv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) qv[v] = V::load(qp + k * (NV * W) + v * W);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const reg d = V::set1(bfloat16_to_float(rows[r][k]));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(qv[v], d, acc[r][v]);
      }
    }
  } else {
    for (; k < D; ++k) step(k);
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    reg m = V::load(run_max + v * W);
    reg nan = V::zero();
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      // maxps returns its second operand when either is NaN, so a NaN already in m sticks;
      // a NaN product is caught by nan_bits and OR-ed in (all-ones bits are a NaN).
      m = V::max_keep_second_nan(acc[r][v], m);
      nan = V::bit_or(nan, V::nan_bits(acc[r][v]));
    }
    V::store(run_max + v * W, V::bit_or(m, nan));
  }
}

// Runs the tile over rows [0, len) of doc; len % R rows go through smaller tiles.
template <class V, int NV, int R, class T = float>
inline void maxsim_rows(const float* qp, const T* doc, int64_t len, int64_t D,
                        float* run_max) {
  int64_t j = 0;
  for (; j + R <= len; j += R) maxsim_tile<V, NV, R, T>(qp, doc + j * D, D, run_max);
  const int64_t rest = len - j;
  if (rest == 0) return;
  if constexpr (R > 1) {
    // Peel the remainder recursively in halves: at most log2(R) extra tile shapes are used.
    constexpr int H = R / 2;
    if (rest >= H) {
      maxsim_tile<V, NV, H, T>(qp, doc + j * D, D, run_max);
      j += H;
    }
    maxsim_rows<V, NV, (H > 1 ? H : 1), T>(qp, doc + j * D, len - j, D, run_max);
  }
}

// Query block layout (see pack_queries_simd): tokens padded to a multiple of W, grouped in
// blocks of 2 vectors (the last block may hold 1), each block stored as [D][nv * W].
template <class V>
inline int64_t packed_query_floats_simd(int64_t n_tok, int64_t D) {
  const int64_t padded = (n_tok + V::W - 1) / V::W * V::W;
  return padded * D;
}

template <class V>
inline void pack_queries_simd(const float* q, int64_t n_tok, int64_t D, float* packed) {
  constexpr int64_t W = V::W, BLOCK = 2 * V::W;
  const int64_t padded = (n_tok + W - 1) / W * W;
  for (int64_t b0 = 0; b0 < padded; b0 += BLOCK) {
    const int64_t width = padded - b0 < BLOCK ? padded - b0 : BLOCK;
    float* dst = packed + b0 * D;
    for (int64_t k = 0; k < D; ++k)
      for (int64_t c = 0; c < width; ++c) {
        const int64_t t = b0 + c;
        dst[k * width + c] = t < n_tok ? q[t * D + k] : 0.f;  // padding tokens are scratch
      }
  }
}

template <class V, int R, class T = float>
inline void update_token_max_simd(const float*, const float* packed, int64_t n_tok,
                                  const T* doc, int64_t len, int64_t D, float* run_max) {
  constexpr int64_t W = V::W, BLOCK = 2 * V::W;
  const int64_t padded = (n_tok + W - 1) / W * W;
  for (int64_t b0 = 0; b0 < padded; b0 += BLOCK) {
    const float* qp = packed + b0 * D;
    if (padded - b0 >= BLOCK) {
      maxsim_rows<V, 2, R, T>(qp, doc, len, D, run_max + b0);
    } else {
      maxsim_rows<V, 1, R, T>(qp, doc, len, D, run_max + b0);
    }
  }
}

// bf16 documents read in place (maxsim_tile with T = uint16_t).
template <class V, int R>
inline void update_token_max_bf16_simd(const float* q, const float* packed, int64_t n_tok,
                                       const uint16_t* doc, int64_t len, int64_t D, float* run_max) {
  update_token_max_simd<V, R, uint16_t>(q, packed, n_tok, doc, len, D, run_max);
}

// The kernel of one ISA, for its getter: R document rows per fp32 tile, R_BF16 per tile of bf16
// rows widened in registers (each ISA's file says why, from its register count). A constant, so
// no code of the ISA runs before the dispatch has chosen it.
template <class V, int R, int R_BF16>
constexpr Kernel kSimdKernel{packed_query_floats_simd<V>, pack_queries_simd<V>, to_float_rows<V>,
                             update_token_max_simd<V, R>, V::W * 2,
                             update_token_max_bf16_simd<V, R_BF16>};

}  // namespace
}  // namespace colkern::maxsim
