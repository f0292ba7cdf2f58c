// AVX-512 F/BW/VL/DQ. The only MaxSim file compiled with -mavx512* alone (the AMX kernel,
// maxsim_avx512_amx.cpp, adds -mamx-*).
#include "cpu/simd/vec_avx512.h"
#include "maxsim.h"
#include "maxsim_simd.h"

namespace colkern::maxsim {

// 32 zmm registers: 2 query vectors x 12 document rows = 24 accumulators; broadcasts come
// from memory operands, so 2 loads + 12 broadcasts feed 24 FMAs per step (bf16 rows too).
const Kernel& avx512_kernel() { return kSimdKernel<Avx512, 12, 12>; }

}  // namespace colkern::maxsim
