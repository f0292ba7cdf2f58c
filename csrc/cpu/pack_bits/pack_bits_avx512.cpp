// pack_bits, avx512 instantiation.
#include "cpu/simd/vec_avx512.h"
#include "pack_bits_simd.h"

namespace colkern::pack_bits {

PackFn avx512_pack() { return pack_rows<Avx512>; }

}  // namespace colkern::pack_bits
