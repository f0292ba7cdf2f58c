// Measures this CPU's fp32 FMA throughput: the ceiling that benchmark reports compare against.
#pragma once

#include <cstdint>

namespace colkern::peak {

// GFLOP/s (2 per FMA lane) over a fraction of a second of pure register FMAs on `threads`
// threads, using the widest vectors of the active ISA level.
double fma_gflops(int threads);

// One ISA's measurement: about `iters` steps of 12 independent FMA chains per thread.
using LoopFn = double (*)(int threads, int64_t iters);
LoopFn scalar_loop();
#ifdef COLKERN_HAVE_AVX2
LoopFn avx2_loop();
#endif
#ifdef COLKERN_HAVE_AVX512
LoopFn avx512_loop();
#endif

}  // namespace colkern::peak
