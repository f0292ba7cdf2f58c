// Hamming MaxSim, AVX2 instantiation of the nibble-table kernel.
#include "hamming.h"
#include "hamming_avx2.h"

namespace colkern::hamming {

UpdateFn avx2_update() { return update_avx2; }

}  // namespace colkern::hamming
