// Patch pooling, avx2 instantiation. Only this file and its siblings of the same ISA get the
// avx2 compiler flags.
#include "cpu/simd/vec_avx2.h"
#include "patch_pool_simd.h"

namespace colkern::patch_pool {

SliceFn avx2_slice() { return slice_any<Avx2>; }

}  // namespace colkern::patch_pool
