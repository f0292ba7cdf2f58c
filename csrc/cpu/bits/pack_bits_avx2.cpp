// pack_bits, avx2 instantiation.
#include "../simd/vec_avx2.h"
#include "pack_bits_simd.h"

namespace colkern::bits {

PackFn avx2_pack() { return pack_rows<Avx2>; }

}  // namespace colkern::bits
