// Element types the CPU kernels read. Accumulation is always fp32.
#pragma once

namespace colkern {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2 };

inline int dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

}  // namespace colkern
