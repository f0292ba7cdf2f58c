// AVX2 + FMA (+ F16C for fp16 input). The only MaxSim file compiled with -mavx2 -mfma -mf16c.
#include "cpu/simd/vec_avx2.h"
#include "maxsim.h"
#include "maxsim_simd.h"

namespace colkern::maxsim {

// 16 ymm registers: 2 query vectors x 6 document rows = 12 accumulators, 2 query loads and
// one broadcast. Zen/Skylake issue 2 FMAs per cycle at 4-cycle latency, so 12 independent
// chains keep both pipes busy. 4 rows for bf16 pairs: 8 accumulators + 4 query vectors + 2
// widened elements fit the 16 ymm registers (6 rows spilled: 0.85-0.98x fp32).
const Kernel& avx2_kernel() { return kSimdKernel<Avx2, 6, 4>; }

}  // namespace colkern::maxsim
