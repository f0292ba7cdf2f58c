// What the MaxSim-family problems share (maxsim, maxsim_backward, maxsim_bits, hamming): B
// queries of Lq tokens in D dimensions with an optional token mask, scored against N documents
// that are row ranges of one [T, ...] matrix (document n is rows starts[n] .. starts[n] +
// lengths[n]), and the validation of that shared part. Each op's Problem adds its query and
// document pointers; the MaxSim driver (cpu/maxsim/maxsim_driver.h) reads only this base.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "colkern/dtype.h"
#include "colkern/ranges.h"

namespace colkern {

struct QueryDocsProblem {
  int64_t B = 0, Lq = 0, D = 0;
  const uint8_t* q_mask = nullptr;   // [B, Lq] (0 = token ignored) or null for all valid
  int64_t T = 0;                     // rows of the document matrix
  const int64_t* starts = nullptr;   // [N]
  const int64_t* lengths = nullptr;  // [N]
  int64_t N = 0;
};

// Float queries (maxsim, maxsim_backward, maxsim_bits).
struct FloatQueryProblem : QueryDocsProblem {
  const void* q = nullptr;  // [B, Lq, D] contiguous, dtype q_dtype
  DType q_dtype = DType::F32;
};

// How an op's validation messages name what they check.
struct ProblemNames {
  const char* op;       // the message prefix: "maxsim"
  const char* dim;      // the dimension: "dimension D"
  const char* q;        // the query argument: "Q"
  const char* docs;     // what the document matrix holds: "values" -> "document values are null"
  const char* rows_of;  // the argument whose rows the documents span: "values"
};

// Throws std::invalid_argument when sizes, the query pointer q, the document matrix docs or the
// document ranges are inconsistent; after it passes, no row outside [0, T) is read.
inline void check_problem(const QueryDocsProblem& p, const void* q, const void* docs,
                          const ProblemNames& names) {
  auto fail = [&](const std::string& msg) {
    throw std::invalid_argument(std::string(names.op) + ": " + msg);
  };
  if (p.D < 1) fail(std::string(names.dim) + " must be >= 1, got " + std::to_string(p.D));
  if (p.B < 0 || p.Lq < 0 || p.N < 0 || p.T < 0) fail("negative size");
  if (p.B * p.Lq > 0 && q == nullptr) fail(std::string(names.q) + " is null");
  if (p.T > 0 && docs == nullptr) fail("document " + std::string(names.docs) + " are null");
  check_row_ranges(p.starts, p.lengths, p.N, p.T, names.op, "document", names.rows_of);
}

}  // namespace colkern
