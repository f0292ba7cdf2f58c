// Hamming MaxSim: binary queries against binary documents, on the shared MaxSim driver.
#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "colkern/ranges.h"
#include "maxsim.h"
#include "maxsim_driver.h"

namespace colkern::maxsim {

#ifdef COLKERN_HAVE_AVX512_VPOPCNTDQ
// hamming_avx512.cpp: the same contract as Kernel::update_hamming.
void update_hamming_avx512_vpopcnt(const uint64_t* q, int64_t n_tok, int64_t words, const uint8_t* doc,
                                   int64_t nbytes, int64_t rows, int32_t* best);
#endif

namespace {

using HammingUpdate = void (*)(const uint64_t*, int64_t, int64_t, const uint8_t*, int64_t, int64_t, int32_t*);

// The ISA level's kernel, or VPOPCNTQ when the level is AVX-512 and the CPU has it.
HammingUpdate pick_hamming_update(const Kernel& kernel) {
#ifdef COLKERN_HAVE_AVX512_VPOPCNTDQ
  if (kernel.isa == Isa::Avx512 && cpu_has_avx512_vpopcntdq()) return update_hamming_avx512_vpopcnt;
#endif
  return kernel.update_hamming;
}

// Valid query tokens as zero-padded 64-bit words; document rows are read in place as bytes (the
// kernels load whole words only inside a row and zero-pad its last partial word).
struct HammingScorer {
  const Problem& p;
  HammingUpdate update_fn;
  int64_t nbytes, words;
  std::vector<uint64_t> q;
  std::vector<int64_t> owner;
  int64_t n_tok = 0;
  int64_t run_max_pad = 1;
  // 256 rows: the per-chunk costs (broadcasting a token, folding lanes) spread over more rows.
  int64_t chunk_rows = kMaxChunkRows;

  HammingScorer(const Problem& problem, const Kernel& k)
      : p(problem), update_fn(pick_hamming_update(k)), nbytes((p.D + 7) / 8), words((p.D + 63) / 64) {
    const auto* base = static_cast<const unsigned char*>(p.q);
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t i = 0; i < p.Lq; ++i) {
        if (p.q_mask != nullptr && p.q_mask[b * p.Lq + i] == 0) continue;
        const size_t at = q.size();
        q.resize(at + words, 0);
        std::memcpy(q.data() + at, base + (b * p.Lq + i) * nbytes, nbytes);
        owner.push_back(b);
      }
    n_tok = static_cast<int64_t>(owner.size());
  }

  void prepare(Scratch& s) const { s.best.resize(n_tok); }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    const auto* src = static_cast<const uint8_t*>(p.values) + row0 * nbytes;
    std::fill(s.best.begin(), s.best.end(), INT32_MAX);
    update_fn(q.data(), n_tok, words, src, nbytes, rows, s.best.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      // The +-1 dot of two sign vectors: D - 2 * hamming.
      const float dot = static_cast<float>(p.D - 2 * static_cast<int64_t>(s.best[t]));
      run_max[t] = std::max(run_max[t], dot);
    }
  }
};

}  // namespace

void validate_hamming(const Problem& p) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument("maxsim_hamming: " + msg); };
  if (p.D < 1) fail("dim must be >= 1, got " + std::to_string(p.D));
  if (p.B < 0 || p.Lq < 0 || p.N < 0 || p.T < 0) fail("negative size");
  if (p.B * p.Lq > 0 && p.q == nullptr) fail("Q_bits is null");
  if (p.T > 0 && p.values == nullptr) fail("document bits are null");
  check_row_ranges(p.starts, p.lengths, p.N, p.T, "maxsim_hamming", "document", "docs_bits");
}

void hamming_scores(const Problem& p, float* out, int num_threads) {
  validate_hamming(p);
  const HammingScorer scorer(p, active_kernel());
  run_scores(p, scorer, out, num_threads);
}

void hamming_topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices,
                  int num_threads) {
  validate_hamming(p);
  const HammingScorer scorer(p, active_kernel());
  run_topk(p, scorer, k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim
