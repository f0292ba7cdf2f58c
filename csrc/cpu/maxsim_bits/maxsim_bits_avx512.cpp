// Float x bits, AVX-512 instantiation: the only float x bits file compiled with -mavx512*.
#include "bits_lut.h"
#include "cpu/simd/vec_avx512.h"
#include "maxsim_bits.h"

namespace colkern::maxsim_bits {

// 16 tokens per table block (one zmm, one 64-byte line per entry), 2 rows x 4 accumulators =
// 8 add chains in flight.
const Kernel& avx512_kernel() { return kBitsLutKernel<Avx512, 1, 2, 4>; }

}  // namespace colkern::maxsim_bits
