// FMA peak, AVX-512 instantiation: the only peak file compiled with -mavx512*.
#include "cpu/simd/vec_avx512.h"
#include "peak.h"
#include "peak_simd.h"

namespace colkern::peak {

LoopFn avx512_loop() { return fma_loop_gflops<Avx512>; }

}  // namespace colkern::peak
