// ISA selection, validation and the hamming scorer, on the MaxSim driver.
#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "colkern/cpu_features.h"
#include "colkern/dtype.h"
#include "colkern/isa_select.h"
#include "colkern/problem.h"
#include "cpu/maxsim/maxsim_driver.h"
#include "hamming.h"

namespace colkern::hamming {

using maxsim::kMaxChunkRows;
using maxsim::Scratch;

void validate(const Problem& p) {
  check_problem(p, p.q, p.bits, {"maxsim_hamming", "dim", "Q_bits", "bits", "docs_bits"});
}

namespace {

// The ISA level's kernel, or VPOPCNTQ when the level is AVX-512 and the CPU has it.
UpdateFn active_update() {
#ifdef COLKERN_HAVE_AVX512_VPOPCNTDQ
  if (active_isa() == Isa::Avx512 && cpu_has_avx512_vpopcntdq()) return avx512_vpopcnt_update();
#endif
  return select_isa(scalar_update, COLKERN_IF_AVX2(avx2_update), COLKERN_IF_AVX512(avx512_update));
}

// Valid query tokens as zero-padded 64-bit words; document rows are read in place as bytes (the
// kernels load whole words only inside a row and zero-pad its last partial word).
struct HammingScorer {
  const Problem& p;
  UpdateFn update_fn;
  int64_t nbytes, words;
  std::vector<uint64_t> q;
  std::vector<int64_t> owner;
  int64_t n_tok = 0;
  int64_t run_max_pad = 1;
  // 256 rows: the per-chunk costs (broadcasting a token, folding lanes) spread over more rows.
  int64_t chunk_rows = kMaxChunkRows;

  explicit HammingScorer(const Problem& problem, UpdateFn fn = active_update())
      : p(problem), update_fn(fn), nbytes(packed_row_bytes(p.D)), words((p.D + 63) / 64) {
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t i = 0; i < p.Lq; ++i) {
        if (p.q_mask != nullptr && p.q_mask[b * p.Lq + i] == 0) continue;
        const size_t at = q.size();
        q.resize(at + words, 0);
        std::memcpy(q.data() + at, p.q + (b * p.Lq + i) * nbytes, nbytes);
        owner.push_back(b);
      }
    n_tok = static_cast<int64_t>(owner.size());
  }

  void prepare(Scratch& s) const { s.best.resize(n_tok); }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    std::fill(s.best.begin(), s.best.end(), INT32_MAX);
    update_fn(q.data(), n_tok, words, p.bits + row0 * nbytes, nbytes, rows, s.best.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      // The +-1 dot of two sign vectors: D - 2 * hamming.
      const float dot = static_cast<float>(p.D - 2 * static_cast<int64_t>(s.best[t]));
      run_max[t] = std::max(run_max[t], dot);
    }
  }
};

}  // namespace

void scores(const Problem& p, float* out, int num_threads) {
  maxsim::validated_scores<HammingScorer>(p, out, num_threads);
}

void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  maxsim::validated_topk<HammingScorer>(p, k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::hamming
