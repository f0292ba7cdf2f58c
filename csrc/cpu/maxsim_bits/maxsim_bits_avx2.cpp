// Float x bits, AVX2 instantiation: the only float x bits file compiled with -mavx2.
#include "bits_lut.h"
#include "cpu/simd/vec_avx2.h"
#include "maxsim_bits.h"

namespace colkern::maxsim_bits {

// 8 tokens per table block (one ymm per entry, 16 KiB of table at D = 128), 4 rows x 2
// accumulators = 8 add chains in flight. As fast per token pair as 16-token blocks, with less
// padding when the token count is not a multiple of 16.
const Kernel& avx2_kernel() { return kBitsLutKernel<Avx2, 1, 4, 2>; }

}  // namespace colkern::maxsim_bits
