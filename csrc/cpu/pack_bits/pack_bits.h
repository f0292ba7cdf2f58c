// Sign-bit packing: bit = x > 0, MSB first within each byte (numpy.packbits order),
// ceil(D / 8) bytes per row, padding bits 0. NaN and -0.0 give 0.
#pragma once

#include <cstdint>

#include "colkern/dtype.h"

namespace colkern::pack_bits {

// x: [rows, D] contiguous fp32 / fp16 / bf16 -> out: [rows, ceil(D/8)] uint8. Throws
// std::invalid_argument on a bad D or dtype code.
void pack(const void* x, DType dtype, int64_t rows, int64_t D, uint8_t* out, int num_threads);

// One ISA's packing of `rows` rows; scratch holds D floats (fp16/bf16 rows are widened there).
using PackFn = void (*)(const void* x, DType dtype, int64_t rows, int64_t D, uint8_t* out,
                        float* scratch);
PackFn scalar_pack();
#ifdef COLKERN_HAVE_AVX2
PackFn avx2_pack();
#endif
#ifdef COLKERN_HAVE_AVX512
PackFn avx512_pack();
#endif

}  // namespace colkern::pack_bits
