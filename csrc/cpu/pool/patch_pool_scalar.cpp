// Patch pooling, portable instantiation (width-1 traits).
#include "../simd/vec_scalar.h"
#include "patch_pool_simd.h"

namespace colkern::pool {

SliceFn scalar_slice() { return slice_any<Scalar>; }

}  // namespace colkern::pool
