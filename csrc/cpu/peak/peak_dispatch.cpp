// The FMA ceiling of the active ISA level (built without ISA flags).
#include <algorithm>

#include "colkern/isa_select.h"
#include "peak.h"

namespace colkern::peak {

double fma_gflops(int threads) {
  // A ceiling is the best the hardware does, so the best of several short runs: one long run on
  // a shared machine (or one that a frequency ramp or a preempted thread slows) reports less than
  // the kernels themselves reach, and a ratio against it would exceed 100%.
  constexpr int kRuns = 5;
  constexpr int64_t kIters = 8'000'000;  // ~0.02-0.06 s per run
  const LoopFn loop = select_isa(scalar_loop, COLKERN_IF_AVX2(avx2_loop), COLKERN_IF_AVX512(avx512_loop));
  double best = 0.0;
  for (int r = 0; r < kRuns; ++r) best = std::max(best, loop(threads, kIters));
  return best;
}

}  // namespace colkern::peak
