#include "fma_peak.h"

#include <cmath>
#include <cstdint>

#include "colkern/cpu_features.h"
#include "../simd/vec_scalar.h"
#include "fma_loop.h"

namespace colkern::peak {

#ifdef COLKERN_HAVE_AVX2
double fma_gflops_avx2(int threads, int64_t iters);
#endif
#ifdef COLKERN_HAVE_AVX512
double fma_gflops_avx512(int threads, int64_t iters);
#endif

double fma_gflops(int threads) {
  constexpr int64_t kIters = 40'000'000;  // ~0.1-0.3 s per level
  switch (active_isa()) {
#ifdef COLKERN_HAVE_AVX512
    case Isa::Avx512: return fma_gflops_avx512(threads, kIters);
#endif
#ifdef COLKERN_HAVE_AVX2
    case Isa::Avx2: return fma_gflops_avx2(threads, kIters);
#endif
    default: return fma_loop_gflops<Scalar>(threads, kIters / 4);
  }
}

}  // namespace colkern::peak
