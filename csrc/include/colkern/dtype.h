// Element types of the float inputs, and how packed sign bits are read. Accumulation is always
// fp32. The Python side reads these codes from the extension (bindings.cpp), never by number.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace colkern {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

// A packed bit (1 = x > 0, numpy.packbits order) read as +-1 or as {0, 1} per dimension.
enum class BitsMode : int { PM1 = 0, ZERO_ONE = 1 };

// Bytes of one row of D elements.
inline int64_t row_bytes(DType t, int64_t D) { return t == DType::F32 ? 4 * D : 2 * D; }

// Bytes of one row of D packed bits: ceil(D / 8), padding bits 0.
inline int64_t packed_row_bytes(int64_t D) { return (D + 7) / 8; }

// Any integer casts to these enums (a C++ caller can pass one): a code out of range would
// select no kernel or the wrong element size, so every op checks before reading.
inline void check_dtype(DType t, const std::string& op, const std::string& arg) {
  const int code = static_cast<int>(t);
  if (code < 0 || code > 2)
    throw std::invalid_argument(op + ": " + arg + " has unknown dtype code " + std::to_string(code) +
                                " (float32 0, float16 1, bfloat16 2)");
}

inline void check_bits_mode(BitsMode m, const std::string& op) {
  const int code = static_cast<int>(m);
  if (code < 0 || code > 1)
    throw std::invalid_argument(op + ": unknown bits mode code " + std::to_string(code) +
                                " (pm1 0, zero_one 1)");
}

}  // namespace colkern
