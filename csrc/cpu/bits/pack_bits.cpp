// pack_bits: ISA choice and the row-parallel driver (built without ISA flags).
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "pack_bits.h"

namespace colkern::bits {

void pack_bits(const void* x, DType dtype, int64_t rows, int64_t D, uint8_t* out, int num_threads) {
  if (D < 1) throw std::invalid_argument("pack_bits: D must be >= 1, got " + std::to_string(D));
  if (is_bits(dtype)) throw std::invalid_argument("pack_bits: x must be floating point");
  PackFn pack = scalar_pack();
  switch (active_isa()) {
#ifdef COLKERN_HAVE_AVX512
    case Isa::Avx512: pack = avx512_pack(); break;
#endif
#ifdef COLKERN_HAVE_AVX2
    case Isa::Avx2: pack = avx2_pack(); break;
#endif
    default: break;
  }
  // Memory bound: blocks of rows per thread, one widened row of scratch each.
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, blocks)));
  std::vector<std::vector<float>> scratch(nt, std::vector<float>(D));
  const int64_t row_size = row_bytes(dtype, D), nbytes = (D + 7) / 8;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kBlock, n = std::min(kBlock, rows - r0);
    pack(static_cast<const unsigned char*>(x) + r0 * row_size, dtype, n, D, out + r0 * nbytes,
         scratch[omp_get_thread_num()].data());
  }
}

}  // namespace colkern::bits
