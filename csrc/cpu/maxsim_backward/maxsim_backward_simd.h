// The argmax micro-kernel: maxsim/maxsim_simd.h's register tile (query tokens in lanes, R
// document rows broadcast per step) with one compare + two blends per accumulator after the
// dot products, so the row index rides next to the running max at no extra pass over D.
//
// V: vector traits (csrc/cpu/simd/) plus
//   mask, take(a, m) = lanes where a replaces the running max m (a > m, or a NaN while m is not),
//   select(k, x, y) = k ? x : y.
// Anonymous namespace: each ISA translation unit keeps its own copy (no ODR merging).
#pragma once

#include <cstdint>

namespace colkern::maxsim_backward {
namespace {

template <class V, int NV, int R>
inline void argmax_tile(const float* qp, const float* doc, int64_t D, float row0, float* run_max,
                        float* run_idx) {
  using reg = typename V::reg;
  constexpr int W = V::W;
  reg acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t k = 0; k < D; ++k) {
    reg qv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) qv[v] = V::load(qp + k * (NV * W) + v * W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const reg d = V::bcast(doc + r * D + k);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(qv[v], d, acc[r][v]);
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    reg m = V::load(run_max + v * W), idx = V::load(run_idx + v * W);
    // Rows in increasing order with a strict comparison: the lowest index wins a tie.
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const auto take = V::take(acc[r][v], m);
      m = V::select(take, acc[r][v], m);
      idx = V::select(take, V::set1(row0 + static_cast<float>(r)), idx);
    }
    V::store(run_max + v * W, m);
    V::store(run_idx + v * W, idx);
  }
}

// Rows [0, len) of doc; the len % R remainder goes through tiles of R/2, R/4, ... rows.
template <class V, int NV, int R>
inline void argmax_rows(const float* qp, const float* doc, int64_t len, int64_t D, int64_t row0,
                        float* run_max, float* run_idx) {
  int64_t j = 0;
  for (; j + R <= len; j += R)
    argmax_tile<V, NV, R>(qp, doc + j * D, D, static_cast<float>(row0 + j), run_max, run_idx);
  if constexpr (R > 1) {
    if (j < len) argmax_rows<V, NV, R / 2>(qp, doc + j * D, len - j, D, row0 + j, run_max, run_idx);
  }
}

// Same query layout as maxsim's pack_queries_simd: blocks of 2 vectors of tokens, [D][2W].
template <class V, int R>
inline void update_token_argmax_simd(const float*, const float* packed, int64_t n_tok, const float* doc,
                                     int64_t len, int64_t D, int64_t row0, float* run_max, float* run_idx) {
  constexpr int64_t W = V::W, BLOCK = 2 * V::W;
  const int64_t padded = (n_tok + W - 1) / W * W;
  for (int64_t b0 = 0; b0 < padded; b0 += BLOCK) {
    const float* qp = packed + b0 * D;
    if (padded - b0 >= BLOCK) {
      argmax_rows<V, 2, R>(qp, doc, len, D, row0, run_max + b0, run_idx + b0);
    } else {
      argmax_rows<V, 1, R>(qp, doc, len, D, row0, run_max + b0, run_idx + b0);
    }
  }
}

template <class V>
inline void axpy_simd(float a, const float* x, float* y, int64_t D) {
  const typename V::reg av = V::set1(a);
  int64_t k = 0;
  for (; k + V::W <= D; k += V::W) V::store(y + k, V::fma(av, V::load(x + k), V::load(y + k)));
  for (; k < D; ++k) y[k] += a * x[k];
}

}  // namespace
}  // namespace colkern::maxsim_backward
