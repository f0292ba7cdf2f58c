// pack_bits, avx2 instantiation.
#include "cpu/simd/vec_avx2.h"
#include "pack_bits_simd.h"

namespace colkern::pack_bits {

PackFn avx2_pack() { return pack_rows<Avx2>; }

}  // namespace colkern::pack_bits
