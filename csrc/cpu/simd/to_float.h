// fp16 / bf16 rows widened to fp32 over vector traits V: the input step of every kernel that
// accumulates in fp32 (MaxSim, pack_bits). The anonymous namespace gives each ISA translation
// unit its own copy (no ODR merging of code compiled for different ISAs).
#pragma once

#include <cstdint>

#include "colkern/dtype.h"
#include "colkern/half.h"

namespace colkern {
namespace {

// Widens `rows` rows of D fp16 / bf16 elements to fp32 [rows, D]. Runs once per
// document chunk, amortised over every query token that chunk meets.
template <class V>
inline void to_float_rows(const void* src, DType dtype, int64_t rows, int64_t D, float* dst) {
  const auto* s = static_cast<const uint16_t*>(src);
  const bool bf16 = dtype == DType::BF16;
  const int64_t n = rows * D;
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(dst + i, V::load(s + i, bf16));
  for (; i < n; ++i) dst[i] = bf16 ? bfloat16_to_float(s[i]) : half_to_float(s[i]);
}

}  // namespace
}  // namespace colkern
