// pack_bits over vector traits V (V::positive_byte packs 8 floats, MSB first).
#pragma once

#include <cstdint>

#include "cpu/simd/to_float.h"
#include "pack_bits.h"

namespace colkern::pack_bits {
namespace {

template <class V>
inline void pack_rows(const void* x, DType dtype, int64_t rows, int64_t D, uint8_t* out,
                      float* scratch) {
  const int64_t nbytes = (D + 7) / 8, full = D / 8;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row;
    if (dtype == DType::F32) {
      row = static_cast<const float*>(x) + r * D;
    } else {
      to_float_rows<V>(static_cast<const uint16_t*>(x) + r * D, dtype, 1, D, scratch);
      row = scratch;
    }
    uint8_t* dst = out + r * nbytes;
    for (int64_t b = 0; b < full; ++b) dst[b] = V::positive_byte(row + 8 * b);
    if (full < nbytes) {
      uint8_t last = 0;  // padding bits stay 0
      for (int64_t k = full * 8; k < D; ++k) last |= static_cast<uint8_t>((row[k] > 0.f) << (7 - k % 8));
      dst[full] = last;
    }
  }
}

}  // namespace
}  // namespace colkern::pack_bits
