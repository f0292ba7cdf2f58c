// Patch pooling, avx512 instantiation. Only this file and its siblings of the same ISA get the
// avx512 compiler flags.
#include "cpu/simd/vec_avx512.h"
#include "patch_pool_simd.h"

namespace colkern::patch_pool {

SliceFn avx512_slice() { return slice_any<Avx512>; }

}  // namespace colkern::patch_pool
