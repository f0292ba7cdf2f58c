// pack_bits, scalar instantiation.
#include "cpu/simd/vec_scalar.h"
#include "pack_bits_simd.h"

namespace colkern::pack_bits {

PackFn scalar_pack() { return pack_rows<Scalar>; }

}  // namespace colkern::pack_bits
