// One-pass mean / max / M2 over a column slice of a page, over vector traits V.
//
// Rows are read once, in order (the natural [L, D] layout); per-column accumulators for a slice
// live in an L1-resident scratch. All sums are taken of x - K, K = the page's first row, and
// every kBlockRows rows the block's sums are folded into (mean', M2) with Chan's combination:
//   block: mean_b = s1 / n_b,  M2_b = s2 - s1^2 / n_b
//   merge: delta = mean_b - mean',  mean' += delta * n_b / n,  M2 += M2_b + delta^2 * n_a n_b / n
// and mean = K + mean' at the end. Working in shifted space keeps every intermediate at the
// scale of the spread, not of a common offset (x + 1e4 keeps ~1e-7 relative std error), and
// a constant page gives s1 = s2 = 0, delta = 0: std exactly 0.
#pragma once

#include <cstdint>
#include <limits>

#include "colkern/half.h"
#include "patch_pool.h"

namespace colkern::patch_pool {
namespace {

// 256 rows per block: the per-block merge (a few flops per column) stays a small share of the
// work even for D = 128, and fp32 sums of 256 shifted terms lose only ~256 ulp at worst.
constexpr int64_t kBlockRows = 256;

// Loads W (or one) elements of type DT as fp32.
template <class V, DType DT>
inline typename V::reg load_vec(const unsigned char* row, int64_t c) {
  if constexpr (DT == DType::F32) return V::load(reinterpret_cast<const float*>(row) + c);
  else return V::load(reinterpret_cast<const uint16_t*>(row) + c, DT == DType::BF16);
}

template <DType DT>
inline float load_one(const unsigned char* row, int64_t c) {
  if constexpr (DT == DType::F32) return reinterpret_cast<const float*>(row)[c];
  const uint16_t h = reinterpret_cast<const uint16_t*>(row)[c];
  return DT == DType::BF16 ? bfloat16_to_float(h) : half_to_float(h);
}

// Accumulators in memory (an L1 scratch per column), four rows per sweep: any slice width.
template <class V, DType DT>
inline void slice_memory(const Problem& p, const int64_t* rows, int64_t len, int64_t d0, int64_t d1,
                         float* mean, float* max, float* std, float* scratch) {
  using reg = typename V::reg;
  constexpr int64_t W = V::W;
  const int64_t width = d1 - d0;
  const int64_t vec_end = width / W * W;  // columns [vec_end, width) take the scalar tail
  float* m2 = scratch;
  float* s1 = scratch + width;
  float* s2 = scratch + 2 * width;
  float* k_row = scratch + 3 * width;
  constexpr int es = DT == DType::F32 ? 4 : 2;
  // Column d0 of row 0; the page's valid rows are listed in `rows` (len >= 1 of them).
  const auto* base = static_cast<const unsigned char*>(p.values) + d0 * es;
  const int64_t stride = p.D * es;
  auto row_at = [&](int64_t r) { return base + rows[r] * stride; };

  for (int64_t c = 0; c < width; ++c) {
    mean[c] = 0.f;
    m2[c] = 0.f;
    max[c] = -std::numeric_limits<float>::infinity();
  }
  const unsigned char* first_row = row_at(0);
  for (int64_t c = 0; c < vec_end; c += W) V::store(k_row + c, load_vec<V, DT>(first_row, c));
  for (int64_t c = vec_end; c < width; ++c) k_row[c] = load_one<DT>(first_row, c);
  int64_t count = 0;
  for (int64_t b0 = 0; b0 < len; b0 += kBlockRows) {
    const int64_t nb = len - b0 < kBlockRows ? len - b0 : kBlockRows;
    for (int64_t c = 0; c < vec_end; c += W) {
      V::store(s1 + c, V::zero());
      V::store(s2 + c, V::zero());
    }
    for (int64_t c = vec_end; c < width; ++c) s1[c] = s2[c] = 0.f;
    int64_t r = 0;
    // Four rows per sweep: the column accumulators are loaded and stored once per four rows,
    // which keeps the loop under the load/store ports' limit and at memory speed.
    for (; r + 4 <= nb; r += 4) {
      const unsigned char* r0 = row_at(b0 + r);
      const unsigned char* r1 = row_at(b0 + r + 1);
      const unsigned char* r2 = row_at(b0 + r + 2);
      const unsigned char* r3 = row_at(b0 + r + 3);
      if (b0 + r + 8 < len) V::prefetch(row_at(b0 + r + 8));
      for (int64_t c = 0; c < vec_end; c += W) {
        const reg k = V::load(k_row + c);
        const reg x0 = load_vec<V, DT>(r0, c), x1 = load_vec<V, DT>(r1, c);
        const reg x2 = load_vec<V, DT>(r2, c), x3 = load_vec<V, DT>(r3, c);
        const reg d0 = V::sub(x0, k), d1 = V::sub(x1, k), d2 = V::sub(x2, k), d3 = V::sub(x3, k);
        V::store(s1 + c, V::add(V::load(s1 + c), V::add(V::add(d0, d1), V::add(d2, d3))));
        V::store(s2 + c, V::fma(d3, d3, V::fma(d2, d2, V::fma(d1, d1, V::fma(d0, d0, V::load(s2 + c))))));
        // NaN in x is dropped here; finish_columns redoes any column whose sums are NaN.
        const reg m01 = V::max_keep_second_nan(x0, x1), m23 = V::max_keep_second_nan(x2, x3);
        V::store(max + c, V::max_keep_second_nan(V::max_keep_second_nan(m01, m23), V::load(max + c)));
      }
      const unsigned char* four[4] = {r0, r1, r2, r3};
      for (int64_t c = vec_end; c < width; ++c)
        for (int64_t i = 0; i < 4; ++i) {
          const float x = load_one<DT>(four[i], c);
          const float d = x - k_row[c];
          s1[c] += d;
          s2[c] += d * d;
          max[c] = x > max[c] ? x : max[c];
        }
    }
    for (; r < nb; ++r) {
      const unsigned char* row = row_at(b0 + r);
      for (int64_t c = 0; c < vec_end; c += W) {
        const reg x = load_vec<V, DT>(row, c);
        const reg d = V::sub(x, V::load(k_row + c));
        V::store(s1 + c, V::add(V::load(s1 + c), d));
        V::store(s2 + c, V::fma(d, d, V::load(s2 + c)));
        V::store(max + c, V::max_keep_second_nan(x, V::load(max + c)));
      }
      for (int64_t c = vec_end; c < width; ++c) {
        const float x = load_one<DT>(row, c);
        const float d = x - k_row[c];
        s1[c] += d;
        s2[c] += d * d;
        max[c] = x > max[c] ? x : max[c];
      }
    }
    // Chan's combination of (count, mean, m2) with this block.
    const float n_new = static_cast<float>(count + nb);
    const float inv_nb = 1.f / static_cast<float>(nb);
    const float w_b = static_cast<float>(nb) / n_new;
    const float w_cross = static_cast<float>(count) * static_cast<float>(nb) / n_new;
    for (int64_t c = 0; c < width; ++c) {
      const float mean_b = s1[c] * inv_nb;
      const float m2_b = s2[c] - s1[c] * s1[c] * inv_nb;
      // Branch-free (vectorisable): for the first block w_b = 1 and w_cross = 0, so mean' and
      // M2 (both starting at 0) become the block's own.
      const float delta = mean_b - mean[c];
      mean[c] += delta * w_b;
      m2[c] += m2_b + delta * delta * w_cross;
    }
    count += nb;
  }
  for (int64_t c = 0; c < width; ++c) mean[c] += k_row[c];
  finish_columns(p, rows, len, d0, d1, m2, mean, max, std);
}

// Narrow slices (D = 128: ColPali's projection) keep every accumulator in registers: strips of
// NC vectors of columns, each swept over all rows of a block with its sums, maximum, mean and M2
// never leaving registers. The memory variant reloads and stores its column sums every four
// rows, which at D = 128 costs about as much as the arithmetic. Each row's strip is whole cache
// lines (NC * W elements of 4 or 2 bytes), so every byte is still read once. Wide slices keep
// the memory variant: there whole rows stream contiguously, which the prefetchers favour.
// AVX-512 only: its 32 registers hold 4 vectors x 6 accumulators; AVX2's 16 allow 2 vectors,
// and those strips measured slower than the memory variant (D = 128 bf16: 1.50x against 1.34x
// the time of one torch sum, against 1.09x for AVX-512 strips and 1.24x for its memory variant).
constexpr int64_t kStripMaxWidth = 256;
constexpr int kStripVectors = 4;  // 6 x 4 = 24 zmm

template <class V, DType DT, int NC>
inline void slice_strips(const Problem& p, const int64_t* rows, int64_t len, int64_t d0, int64_t d1,
                         float* mean_out, float* max_out, float* std_out, float* scratch) {
  using reg = typename V::reg;
  constexpr int64_t W = V::W;
  constexpr int es = DT == DType::F32 ? 4 : 2;
  const auto* base = static_cast<const unsigned char*>(p.values) + d0 * es;
  const int64_t stride = p.D * es;
  auto row_at = [&](int64_t r) { return base + rows[r] * stride; };
  float* m2_out = scratch;  // finish_columns reads M2 from here
  for (int64_t c0 = 0; c0 < d1 - d0; c0 += NC * W) {
    reg k[NC], mean[NC], m2[NC], mx[NC];
    const unsigned char* first = row_at(0);
    for (int v = 0; v < NC; ++v) {
      k[v] = load_vec<V, DT>(first, c0 + v * W);
      mean[v] = V::zero();
      m2[v] = V::zero();
      mx[v] = V::set1(-std::numeric_limits<float>::infinity());
    }
    int64_t count = 0;
    for (int64_t b0 = 0; b0 < len; b0 += kBlockRows) {
      const int64_t nb = len - b0 < kBlockRows ? len - b0 : kBlockRows;
      reg s1[NC], s2[NC];
      for (int v = 0; v < NC; ++v) s1[v] = s2[v] = V::zero();
      for (int64_t r = b0; r < b0 + nb; ++r) {
        const unsigned char* row = row_at(r);
        if (r + 8 < len) V::prefetch(row_at(r + 8) + c0 * es);
#pragma GCC unroll 4
        for (int v = 0; v < NC; ++v) {
          const reg x = load_vec<V, DT>(row, c0 + v * W);
          const reg d = V::sub(x, k[v]);
          s1[v] = V::add(s1[v], d);
          s2[v] = V::fma(d, d, s2[v]);
          // NaN in x is dropped here; finish_columns redoes any column whose sums are NaN.
          mx[v] = V::max_keep_second_nan(x, mx[v]);
        }
      }
      // Chan's combination, as in slice_memory (branch-free: the first block has w_cross = 0).
      const float n_new = static_cast<float>(count + nb);
      const reg inv_nb = V::set1(1.f / static_cast<float>(nb));
      const reg w_b = V::set1(static_cast<float>(nb) / n_new);
      const reg w_cross = V::set1(static_cast<float>(count) * static_cast<float>(nb) / n_new);
      for (int v = 0; v < NC; ++v) {
        const reg mean_b = V::mul(s1[v], inv_nb);
        const reg m2_b = V::sub(s2[v], V::mul(s1[v], mean_b));
        const reg delta = V::sub(mean_b, mean[v]);
        mean[v] = V::fma(delta, w_b, mean[v]);
        m2[v] = V::add(m2[v], V::fma(V::mul(delta, delta), w_cross, m2_b));
      }
      count += nb;
    }
    for (int v = 0; v < NC; ++v) {
      V::store(mean_out + c0 + v * W, V::add(mean[v], k[v]));
      V::store(max_out + c0 + v * W, mx[v]);
      V::store(m2_out + c0 + v * W, m2[v]);
    }
  }
  finish_columns(p, rows, len, d0, d1, m2_out, mean_out, max_out, std_out);
}

// Whole register strips where the slice is narrow, the memory variant for the rest.
template <class V, DType DT>
inline void slice_simd(const Problem& p, const int64_t* rows, int64_t len, int64_t d0, int64_t d1,
                       float* mean, float* max, float* std, float* scratch) {
  constexpr int NC = kStripVectors;
  const int64_t width = d1 - d0;
  const int64_t strips = V::W >= 16 && width <= kStripMaxWidth ? width / (NC * V::W) * (NC * V::W) : 0;
  if (strips > 0) slice_strips<V, DT, NC>(p, rows, len, d0, d0 + strips, mean, max, std, scratch);
  if (strips < width)
    slice_memory<V, DT>(p, rows, len, d0 + strips, d1, mean + strips, max + strips, std + strips, scratch);
}

}  // namespace
}  // namespace colkern::patch_pool

namespace colkern::patch_pool {
namespace {

// The slice function of one ISA, chosen per call by the element type.
template <class V>
inline void slice_any(const Problem& p, const int64_t* rows, int64_t len, int64_t d0, int64_t d1,
                      float* mean, float* max, float* std, float* scratch) {
  switch (p.dtype) {
    case DType::F32: return slice_simd<V, DType::F32>(p, rows, len, d0, d1, mean, max, std, scratch);
    case DType::F16: return slice_simd<V, DType::F16>(p, rows, len, d0, d1, mean, max, std, scratch);
    case DType::BF16: return slice_simd<V, DType::BF16>(p, rows, len, d0, d1, mean, max, std, scratch);
    default: return;  // unknown codes are rejected by validate()
  }
}

}  // namespace
}  // namespace colkern::patch_pool
