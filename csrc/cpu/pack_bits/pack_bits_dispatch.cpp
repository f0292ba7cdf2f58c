// pack_bits: validation, ISA choice and the row-parallel driver (built without ISA flags).
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "colkern/isa_select.h"
#include "pack_bits.h"

namespace colkern::pack_bits {

void pack(const void* x, DType dtype, int64_t rows, int64_t D, uint8_t* out, int num_threads) {
  check_dtype(dtype, "pack_bits", "x");
  if (D < 1) throw std::invalid_argument("pack_bits: D must be >= 1, got " + std::to_string(D));
  const PackFn pack_fn = select_isa(scalar_pack, COLKERN_IF_AVX2(avx2_pack), COLKERN_IF_AVX512(avx512_pack));
  // Memory bound: blocks of rows per thread, one widened row of scratch each.
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, blocks)));
  std::vector<std::vector<float>> scratch(nt, std::vector<float>(D));
  const int64_t row_size = row_bytes(dtype, D), nbytes = packed_row_bytes(D);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kBlock, n = std::min(kBlock, rows - r0);
    pack_fn(static_cast<const unsigned char*>(x) + r0 * row_size, dtype, n, D, out + r0 * nbytes,
            scratch[omp_get_thread_num()].data());
  }
}

}  // namespace colkern::pack_bits
