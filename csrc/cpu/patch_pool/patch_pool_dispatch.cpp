// Patch pooling: validation, the exact non-finite path, ISA choice and the parallel driver.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "colkern/half.h"
#include "colkern/isa_select.h"
#include "colkern/ranges.h"
#include "patch_pool.h"

namespace colkern::patch_pool {

namespace {

// Columns per task: 512 fp32 accumulators x 5 arrays = 10 KiB of L1 scratch, and a single
// large page (D = 2048) still splits into 4 tasks for the threads.
constexpr int64_t kSliceCols = 512;

SliceFn active_slice() {
  return select_isa(scalar_slice, COLKERN_IF_AVX2(avx2_slice), COLKERN_IF_AVX512(avx512_slice));
}

float element(const Problem& p, int64_t row, int64_t col) {
  const int64_t i = row * p.D + col;
  switch (p.dtype) {
    case DType::F32: return static_cast<const float*>(p.values)[i];
    case DType::F16: return half_to_float(static_cast<const uint16_t*>(p.values)[i]);
    case DType::BF16: return bfloat16_to_float(static_cast<const uint16_t*>(p.values)[i]);
  }
  return NAN;
}

}  // namespace

void validate(const Problem& p) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument("patch_pool: " + msg); };
  check_dtype(p.dtype, "patch_pool", "values");
  if (p.D < 1) fail("dimension D must be >= 1, got " + std::to_string(p.D));
  if (p.N < 0 || p.T < 0) fail("negative size");
  if (p.correction < 0) fail("correction must be >= 0, got " + std::to_string(p.correction));
  if (p.T > 0 && p.values == nullptr) fail("values are null");
  check_row_ranges(p.starts, p.lengths, p.N, p.T, "patch_pool", "page", "values");
}

void finish_columns(const Problem& p, const int64_t* rows, int64_t count, int64_t d0, int64_t d1,
                    const float* m2, float* mean, float* max, float* std) {
  const bool no_spread = count <= p.correction;
  const float denom = static_cast<float>(count - p.correction);
  for (int64_t c = 0; c < d1 - d0; ++c) {
    if (std::isnan(mean[c])) {
      // NaN or inf in the column (the shifted sums went NaN): redo it the way torch does.
      double sum = 0;
      bool has_nan = false;
      for (int64_t r = 0; r < count; ++r) {
        const float x = element(p, rows[r], d0 + c);
        sum += x;
        has_nan = has_nan || std::isnan(x);
      }
      mean[c] = static_cast<float>(sum / static_cast<double>(count));
      if (has_nan) max[c] = NAN;
      std[c] = NAN;
      continue;
    }
    // M2 can come out a few ulps below 0 through rounding; the variance is never negative.
    std[c] = no_spread ? 0.f : std::sqrt(std::max(m2[c], 0.f) / denom);
  }
}

void pool(const Problem& p, float* out, int num_threads) {
  validate(p);
  const SliceFn slice = active_slice();
  const int64_t slices = (p.D + kSliceCols - 1) / kSliceCols;
  const int64_t tasks = p.N * slices;
  int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  if (tasks < nt) nt = static_cast<int>(std::max<int64_t>(tasks, 1));
  const int64_t cols = std::min(kSliceCols, p.D);
  int64_t max_len = 0;
  for (int64_t n = 0; n < p.N; ++n) max_len = std::max(max_len, p.lengths[n]);
  struct Scratch {
    std::vector<float> acc;
    std::vector<int64_t> rows;  // the current page's valid rows
  };
  std::vector<Scratch> scratch(nt, Scratch{std::vector<float>(5 * cols), std::vector<int64_t>(max_len)});
#pragma omp parallel num_threads(nt)
  {
    Scratch& s = scratch[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t n = t / slices, d0 = (t % slices) * kSliceCols;
      const int64_t d1 = std::min(d0 + kSliceCols, p.D);
      int64_t count = 0;
      for (int64_t r = p.starts[n]; r < p.starts[n] + p.lengths[n]; ++r)
        if (p.row_mask == nullptr || p.row_mask[r] != 0) s.rows[count++] = r;
      float* row = out + n * 3 * p.D;
      if (count == 0) {  // nothing observed
        std::fill(row + d0, row + d1, NAN);
        std::fill(row + p.D + d0, row + p.D + d1, NAN);
        std::fill(row + 2 * p.D + d0, row + 2 * p.D + d1, NAN);
        continue;
      }
      slice(p, s.rows.data(), count, d0, d1, row + d0, row + p.D + d0, row + 2 * p.D + d0, s.acc.data());
    }
  }
}

}  // namespace colkern::patch_pool
