// FMA peak, portable instantiation (width-1 traits).
#include "cpu/simd/vec_scalar.h"
#include "peak.h"
#include "peak_simd.h"

namespace colkern::peak {
namespace {

// Without -mfma, std::fma is a call into libm, far slower than an FMA instruction: a quarter
// of the steps keeps this level's measurement about as short as the vector levels'.
double scalar_gflops(int threads, int64_t iters) { return fma_loop_gflops<Scalar>(threads, iters / 4); }

}  // namespace

LoopFn scalar_loop() { return scalar_gflops; }

}  // namespace colkern::peak
