// Float x bits, portable instantiation (width-1 traits).
#include "bits_lut.h"
#include "cpu/simd/vec_scalar.h"
#include "maxsim_bits.h"

namespace colkern::maxsim_bits {
namespace {

// Blocks of 8 tokens in plain loops, one row and 2 accumulators at a time.
constexpr Kernel kKernel = make_bits_lut_kernel<Scalar, 8, 1, 2>();

}  // namespace

const Kernel& scalar_kernel() { return kKernel; }

}  // namespace colkern::maxsim_bits
