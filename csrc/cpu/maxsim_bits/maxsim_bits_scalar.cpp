// Float x bits, portable instantiation (width-1 traits).
#include "bits_lut.h"
#include "cpu/simd/vec_scalar.h"
#include "maxsim_bits.h"

namespace colkern::maxsim_bits {

// Blocks of 8 tokens in plain loops, one row and 2 accumulators at a time.
const Kernel& scalar_kernel() { return kBitsLutKernel<Scalar, 8, 1, 2>; }

}  // namespace colkern::maxsim_bits
