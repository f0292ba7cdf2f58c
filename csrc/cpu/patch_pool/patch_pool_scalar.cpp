// Patch pooling, portable instantiation (width-1 traits).
#include "cpu/simd/vec_scalar.h"
#include "patch_pool_simd.h"

namespace colkern::patch_pool {

SliceFn scalar_slice() { return slice_any<Scalar>; }

}  // namespace colkern::patch_pool
