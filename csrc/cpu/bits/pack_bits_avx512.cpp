// pack_bits, avx512 instantiation.
#include "../simd/vec_avx512.h"
#include "pack_bits_simd.h"

namespace colkern::bits {

PackFn avx512_pack() { return pack_rows<Avx512>; }

}  // namespace colkern::bits
