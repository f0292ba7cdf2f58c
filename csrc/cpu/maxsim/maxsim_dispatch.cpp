// ISA selection and the document-parallel driver shared by every kernel.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "maxsim.h"

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
  if (p.N > 0 && (p.starts == nullptr || p.lengths == nullptr)) fail("document ranges are null");
  if (p.T > 0 && p.values == nullptr) fail("document values are null");
  for (int64_t n = 0; n < p.N; ++n) {
    const int64_t s = p.starts[n], l = p.lengths[n];
    if (s < 0 || l < 0 || s > p.T || l > p.T - s)
      fail("document " + std::to_string(n) + " spans rows [" + std::to_string(s) + ", " +
           std::to_string(s) + "+" + std::to_string(l) + ") outside the " +
           std::to_string(p.T) + " rows of values");
  }
}

namespace {

constexpr int64_t kChunkRows = 96;  // 96 x 128 fp32 = 48 KiB: a converted chunk stays in L1/L2

// Valid query tokens, converted to fp32 once, with the query each belongs to.
struct CompactQueries {
  std::vector<float> q;
  std::vector<int64_t> owner;
  std::vector<float> packed;
  int64_t n_tok = 0;
};

CompactQueries compact_queries(const Problem& p, const Kernel& kernel) {
  CompactQueries c;
  const auto* base = static_cast<const unsigned char*>(p.q);
  const size_t es = dtype_size(p.q_dtype);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t i = 0; i < p.Lq; ++i) {
      if (p.q_mask != nullptr && p.q_mask[b * p.Lq + i] == 0) continue;
      const unsigned char* row = base + (b * p.Lq + i) * p.D * es;
      const size_t at = c.q.size();
      c.q.resize(at + p.D);
      if (p.q_dtype == DType::F32) {
        std::copy_n(reinterpret_cast<const float*>(row), p.D, c.q.data() + at);
      } else {
        kernel.to_float(row, p.q_dtype, p.D, c.q.data() + at);
      }
      c.owner.push_back(b);
    }
  c.n_tok = static_cast<int64_t>(c.owner.size());
  c.packed.resize(kernel.packed_query_floats(c.n_tok, p.D));
  kernel.pack_queries(c.q.data(), c.n_tok, p.D, c.packed.data());
  return c;
}

// Per-thread scratch, allocated before the parallel region so nothing throws inside it.
struct Scratch {
  std::vector<float> run_max, rows, doc_scores;
};

void score_document(const Problem& p, const Kernel& kernel, const CompactQueries& cq, int64_t n,
                    Scratch& s) {
  std::fill(s.doc_scores.begin(), s.doc_scores.end(), 0.f);
  const int64_t len = p.lengths[n];
  if (len == 0 || cq.n_tok == 0) return;  // empty sums are 0
  std::fill(s.run_max.begin(), s.run_max.end(), -std::numeric_limits<float>::infinity());
  const size_t es = dtype_size(p.v_dtype);
  const auto* base = static_cast<const unsigned char*>(p.values);
  for (int64_t r0 = 0; r0 < len; r0 += kChunkRows) {
    const int64_t rows = std::min(kChunkRows, len - r0);
    const unsigned char* src = base + (p.starts[n] + r0) * p.D * es;
    const float* doc;
    if (p.v_dtype == DType::F32) {
      doc = reinterpret_cast<const float*>(src);
    } else {
      kernel.to_float(src, p.v_dtype, rows * p.D, s.rows.data());
      doc = s.rows.data();
    }
    kernel.update_token_max(cq.q.data(), cq.packed.data(), cq.n_tok, doc, rows, p.D,
                            s.run_max.data());
  }
  // Summed in token order: deterministic whatever the thread count.
  for (int64_t t = 0; t < cq.n_tok; ++t) s.doc_scores[cq.owner[t]] += s.run_max[t];
}

int clamp_threads(int num_threads, int64_t N) {
  int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  if (N < nt) nt = static_cast<int>(std::max<int64_t>(N, 1));
  return nt;
}

std::vector<Scratch> make_scratch(const Problem& p, const Kernel& kernel, int64_t n_tok, int nt) {
  std::vector<Scratch> scratch(nt);
  const int64_t pad = kernel.run_max_pad;
  for (auto& s : scratch) {
    s.run_max.resize((n_tok + pad - 1) / pad * pad + pad);
    if (p.v_dtype != DType::F32) s.rows.resize(kChunkRows * p.D);
    s.doc_scores.resize(p.B);
  }
  return scratch;
}

struct Entry {
  float score;
  int64_t index;
};

// True when a ranks above b: NaN above every number (as torch.topk), then higher score, then
// lower index, so results do not depend on thread scheduling.
bool ranks_above(const Entry& a, const Entry& b) {
  const bool an = std::isnan(a.score), bn = std::isnan(b.score);
  if (an != bn) return an;
  if (!an && a.score != b.score) return a.score > b.score;
  return a.index < b.index;
}

}  // namespace

void scores(const Problem& p, float* out, int num_threads) {
  validate(p);
  const Kernel& kernel = active_kernel();
  const CompactQueries cq = compact_queries(p, kernel);
  const int nt = clamp_threads(num_threads, p.N);
  std::vector<Scratch> scratch = make_scratch(p, kernel, cq.n_tok, nt);
#pragma omp parallel num_threads(nt)
  {
    Scratch& s = scratch[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      score_document(p, kernel, cq, n, s);
      for (int64_t b = 0; b < p.B; ++b) out[b * p.N + n] = s.doc_scores[b];
    }
  }
}

void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  validate(p);
  if (k < 1) throw std::invalid_argument("maxsim_topk: k must be >= 1, got " + std::to_string(k));
  const int64_t keep = std::min(k, p.N);
  const Kernel& kernel = active_kernel();
  const CompactQueries cq = compact_queries(p, kernel);
  const int nt = clamp_threads(num_threads, p.N);
  std::vector<Scratch> scratch = make_scratch(p, kernel, cq.n_tok, nt);
  // heaps[t][b]: thread t's best `keep` documents for query b, worst at the front.
  std::vector<std::vector<std::vector<Entry>>> heaps(
      nt, std::vector<std::vector<Entry>>(p.B, std::vector<Entry>()));
  for (auto& per_thread : heaps)
    for (auto& h : per_thread) h.reserve(keep);
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    Scratch& s = scratch[tid];
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      score_document(p, kernel, cq, n, s);
      for (int64_t b = 0; b < p.B; ++b) {
        auto& h = heaps[tid][b];
        const Entry e{s.doc_scores[b], n};
        if (static_cast<int64_t>(h.size()) < keep) {
          h.push_back(e);
          std::push_heap(h.begin(), h.end(), ranks_above);
        } else if (ranks_above(e, h.front())) {
          std::pop_heap(h.begin(), h.end(), ranks_above);
          h.back() = e;
          std::push_heap(h.begin(), h.end(), ranks_above);
        }
      }
    }
  }
  std::vector<Entry> merged;
  for (int64_t b = 0; b < p.B; ++b) {
    merged.clear();
    for (int t = 0; t < nt; ++t) merged.insert(merged.end(), heaps[t][b].begin(), heaps[t][b].end());
    std::sort(merged.begin(), merged.end(), ranks_above);
    for (int64_t i = 0; i < keep; ++i) {
      out_scores[b * keep + i] = merged[i].score;
      out_indices[b * keep + i] = merged[i].index;
    }
  }
}

}  // namespace colkern::maxsim
