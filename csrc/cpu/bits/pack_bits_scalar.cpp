// pack_bits, scalar instantiation.
#include "../simd/vec_scalar.h"
#include "pack_bits_simd.h"

namespace colkern::bits {

PackFn scalar_pack() { return pack_rows<Scalar>; }

}  // namespace colkern::bits
