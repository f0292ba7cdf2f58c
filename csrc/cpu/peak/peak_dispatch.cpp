// The FMA ceiling of the active ISA level (built without ISA flags).
#include "colkern/isa_select.h"
#include "peak.h"

namespace colkern::peak {

double fma_gflops(int threads) {
  constexpr int64_t kIters = 40'000'000;  // ~0.1-0.3 s per level
  const LoopFn loop = select_isa(scalar_loop, COLKERN_IF_AVX2(avx2_loop), COLKERN_IF_AVX512(avx512_loop));
  return loop(threads, kIters);
}

}  // namespace colkern::peak
