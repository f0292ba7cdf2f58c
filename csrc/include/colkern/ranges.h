// Validation of row ranges ("document n = rows starts[n] .. starts[n] + lengths[n]"), shared by
// every op that reads ragged corpora: after it passes, no kernel reads outside [0, T) rows.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace colkern {

inline void check_row_ranges(const int64_t* starts, const int64_t* lengths, int64_t N, int64_t T,
                             const std::string& op, const std::string& item,
                             const std::string& values_name) {
  if (N > 0 && (starts == nullptr || lengths == nullptr))
    throw std::invalid_argument(op + ": " + item + " ranges are null");
  for (int64_t n = 0; n < N; ++n) {
    const int64_t s = starts[n], l = lengths[n];
    // Written so that no sum can overflow: s + l is only formed once both are in range.
    if (s < 0 || l < 0 || s > T || l > T - s)
      throw std::invalid_argument(op + ": " + item + " " + std::to_string(n) + " spans rows [" +
                                  std::to_string(s) + ", " + std::to_string(s) + "+" +
                                  std::to_string(l) + ") outside the " + std::to_string(T) +
                                  " rows of " + values_name);
  }
}

}  // namespace colkern
