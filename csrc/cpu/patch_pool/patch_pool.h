// Fused patch pooling on raw pointers: mean, max and std of every page's rows in one pass.
//
//   out[n] = [ mean | max | std ]  (3 x D float32) over rows starts[n] .. starts[n]+lengths[n]
//
// Accumulation is fp32 with Chan's parallel combination of row blocks (each block shifted by
// its first row), so a constant page gives std exactly 0 and a large common offset does not
// cancel the variance. std = sqrt(M2 / (count - correction)).
// With row_mask, page n holds only the rows of its range whose mask byte is non-zero (a padded
// batch with any mask is pooled in place: masked rows are skipped, never copied).
// Special cases, identical on every backend:
//   * an empty page: mean, max and std are NaN (nothing observed);
//   * count <= correction: std is 0 (no spread observable);
//   * a column holding NaN or inf follows torch in that column only: mean = sum / count,
//     max propagates NaN, std is NaN. Other columns and other pages are unaffected.
#pragma once

#include <cstdint>

#include "colkern/dtype.h"

namespace colkern::patch_pool {

struct Problem {
  const void* values = nullptr;  // [T, D] contiguous
  DType dtype = DType::F32;
  int64_t T = 0, D = 0;
  const int64_t* starts = nullptr;   // [N]
  const int64_t* lengths = nullptr;  // [N]
  int64_t N = 0;
  int64_t correction = 1;
  const uint8_t* row_mask = nullptr;  // [T] or null: every row of a range is valid
};

// Throws std::invalid_argument on inconsistent sizes, dtype codes or page ranges (before any read).
void validate(const Problem& p);

// out: [N, 3 * D] float32.
void pool(const Problem& p, float* out, int num_threads);

// Columns [d0, d1) of the page made of the `count` >= 1 rows listed in `rows` (indices into
// values) into mean/max/std; scratch holds 5 * (d1 - d0) floats. One implementation per ISA.
using SliceFn = void (*)(const Problem& p, const int64_t* rows, int64_t count, int64_t d0,
                         int64_t d1, float* mean, float* max, float* std, float* scratch);

SliceFn scalar_slice();
#ifdef COLKERN_HAVE_AVX2
SliceFn avx2_slice();
#endif
#ifdef COLKERN_HAVE_AVX512
SliceFn avx512_slice();
#endif

// Shared by every ISA: turns Chan's (count, mean, M2) into std, and redoes columns whose
// sums went NaN (NaN or inf present) exactly as torch does.
void finish_columns(const Problem& p, const int64_t* rows, int64_t count, int64_t d0, int64_t d1,
                    const float* m2, float* mean, float* max, float* std);

}  // namespace colkern::patch_pool
