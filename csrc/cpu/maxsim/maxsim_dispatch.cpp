// ISA selection, validation and the float scorer (float queries x float or bit documents).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "colkern/ranges.h"
#include "maxsim.h"
#include "maxsim_driver.h"

namespace colkern::maxsim {

const Kernel& active_kernel() {
  switch (active_isa()) {
#ifdef COLKERN_HAVE_AVX512
    case Isa::Avx512: return avx512_kernel();
#endif
#ifdef COLKERN_HAVE_AVX2
    case Isa::Avx2: return avx2_kernel();
#endif
    default: return scalar_kernel();
  }
}

void validate(const Problem& p) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument("maxsim: " + msg); };
  if (p.D < 1) fail("dimension D must be >= 1, got " + std::to_string(p.D));
  if (p.B < 0 || p.Lq < 0 || p.N < 0 || p.T < 0) fail("negative size");
  if (p.B * p.Lq > 0 && p.q == nullptr) fail("Q is null");
  if (is_bits(p.q_dtype)) fail("float scoring needs float queries");
  if (p.T > 0 && p.values == nullptr) fail("document values are null");
  check_row_ranges(p.starts, p.lengths, p.N, p.T, "maxsim", "document", "values");
}

namespace {

// Valid query tokens, converted to fp32 once, with the query each belongs to; scores chunks of
// document rows (fp32 read in place, anything else widened into the thread's scratch).
struct FloatScorer {
  const Problem& p;
  const Kernel& kernel;
  std::vector<float> q, packed;
  std::vector<int64_t> owner;
  int64_t n_tok = 0;
  int64_t run_max_pad = 1;
  int64_t chunk_rows = kChunkRows;

  FloatScorer(const Problem& problem, const Kernel& k) : p(problem), kernel(k) {
    run_max_pad = kernel.run_max_pad;
    const auto* base = static_cast<const unsigned char*>(p.q);
    const int64_t row_size = row_bytes(p.q_dtype, p.D);
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t i = 0; i < p.Lq; ++i) {
        if (p.q_mask != nullptr && p.q_mask[b * p.Lq + i] == 0) continue;
        const unsigned char* row = base + (b * p.Lq + i) * row_size;
        const size_t at = q.size();
        q.resize(at + p.D);
        if (p.q_dtype == DType::F32) {
          std::copy_n(reinterpret_cast<const float*>(row), p.D, q.data() + at);
        } else {
          kernel.to_float(row, p.q_dtype, 1, p.D, q.data() + at);
        }
        owner.push_back(b);
      }
    n_tok = static_cast<int64_t>(owner.size());
    packed.resize(kernel.packed_query_floats(n_tok, p.D));
    kernel.pack_queries(q.data(), n_tok, p.D, packed.data());
  }

  void prepare(Scratch& s) const {
    if (p.v_dtype != DType::F32) s.rows.resize(kChunkRows * p.D);
  }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    const unsigned char* src = static_cast<const unsigned char*>(p.values) + row0 * row_bytes(p.v_dtype, p.D);
    const float* doc;
    if (p.v_dtype == DType::F32) {
      doc = reinterpret_cast<const float*>(src);
    } else {
      kernel.to_float(src, p.v_dtype, rows, p.D, s.rows.data());
      doc = s.rows.data();
    }
    kernel.update_token_max(q.data(), packed.data(), n_tok, doc, rows, p.D, run_max);
  }
};

}  // namespace

void scores(const Problem& p, float* out, int num_threads) {
  validate(p);
  const FloatScorer scorer(p, active_kernel());
  run_scores(p, scorer, out, num_threads);
}

void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  validate(p);
  const FloatScorer scorer(p, active_kernel());
  run_topk(p, scorer, k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim
