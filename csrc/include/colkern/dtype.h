// Element types the CPU kernels read. Accumulation is always fp32.
#pragma once

#include <cstdint>

namespace colkern {

// BITS_PM1 / BITS_01: sign bits packed MSB-first, ceil(D / 8) bytes per row, read as +-1 or
// {0, 1} per dimension (numpy.packbits order, bit = x > 0).
enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, BITS_PM1 = 3, BITS_01 = 4 };

inline bool is_bits(DType t) { return t == DType::BITS_PM1 || t == DType::BITS_01; }

// Bytes of one row of D elements.
inline int64_t row_bytes(DType t, int64_t D) {
  if (is_bits(t)) return (D + 7) / 8;
  return t == DType::F32 ? 4 * D : 2 * D;
}

}  // namespace colkern
