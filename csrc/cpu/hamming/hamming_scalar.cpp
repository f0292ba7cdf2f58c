// Hamming MaxSim, portable instantiation.
#include "hamming.h"
#include "hamming_scalar.h"

namespace colkern::hamming {

UpdateFn scalar_update() { return update_scalar; }

}  // namespace colkern::hamming
