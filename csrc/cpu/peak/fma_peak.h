// Measures this CPU's fp32 FMA throughput: the ceiling that benchmark reports compare against.
#pragma once

namespace colkern::peak {

// GFLOP/s (2 per FMA lane) over `seconds`-ish of pure register FMAs on `threads` threads,
// using the widest vectors of the active ISA level.
double fma_gflops(int threads);

}  // namespace colkern::peak
