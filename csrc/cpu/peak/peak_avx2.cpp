// FMA peak, AVX2 instantiation: the only peak file compiled with -mavx2 -mfma.
#include "cpu/simd/vec_avx2.h"
#include "peak.h"
#include "peak_simd.h"

namespace colkern::peak {

LoopFn avx2_loop() { return fma_loop_gflops<Avx2>; }

}  // namespace colkern::peak
