// The FMA peak loop over a vector-traits type V (cpu/simd/vec_*.h); one copy per ISA TU.
#pragma once

#include <omp.h>

#include <cstdint>

namespace colkern::peak {
namespace {

// 12 independent accumulator chains cover 2 pipes x 4-6 cycles of FMA latency.
template <class V>
double fma_loop_gflops(int threads, int64_t iters) {
  double sink = 0;
  const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
    typename V::reg acc[12];
    const float a_val = 0.999f, b_val = 1e-4f;
    const typename V::reg a = V::bcast(&a_val), b = V::bcast(&b_val);
    // Every chain starts from its own value: with one common start the chains are the same
    // computation, and GCC merges them (seen with AVX-512: a reported "peak" of twice the
    // hardware's, 2 FMA ports x 16 lanes x 2 flops per cycle).
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      const float init = 1e-3f * static_cast<float>((omp_get_thread_num() + 1) * 16 + i);
      acc[i] = V::bcast(&init);
    }
    for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
      for (int i = 0; i < 12; ++i) acc[i] = V::fma(acc[i], a, b);
    }
    float lanes[V::W];
    typename V::reg s = acc[0];
    for (int i = 1; i < 12; ++i) s = V::bit_or(s, acc[i]);
    V::store(lanes, s);
    sink += lanes[0];  // keeps the loop alive
  }
  const double seconds = omp_get_wtime() - t0;
  return (sink == -1.0 ? 0.0 : 1.0) * threads * iters * 12.0 * V::W * 2 / seconds / 1e9;
}

}  // namespace
}  // namespace colkern::peak
