// Hamming MaxSim at the AVX-512 level on CPUs without VPOPCNTDQ (Skylake / Cascade Lake): the
// AVX2 nibble-table kernel, compiled with the AVX-512 flags like every kernel of this level
// (the compiler may then use all 32 vector registers).
#include "hamming.h"
#include "hamming_avx2.h"

namespace colkern::hamming {

UpdateFn avx512_update() { return update_avx2; }

}  // namespace colkern::hamming
