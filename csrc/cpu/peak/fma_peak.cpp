#include "fma_peak.h"

#include <cmath>
#include <cstdint>

#include "colkern/cpu_features.h"
#include "fma_loop.h"

namespace colkern::peak {

#ifdef COLKERN_HAVE_AVX2
double fma_gflops_avx2(int threads, int64_t iters);
#endif
#ifdef COLKERN_HAVE_AVX512
double fma_gflops_avx512(int threads, int64_t iters);
#endif

namespace {
struct Scalar {
  static constexpr int W = 1;
  using reg = float;
  static reg bcast(const float* p) { return *p; }
  static reg fma(reg a, reg b, reg c) { return std::fma(a, b, c); }
  static reg bit_or(reg a, reg b) { return a + b; }
  static void store(float* p, reg r) { *p = r; }
};
}  // namespace

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
