// The document-parallel MaxSim driver, shared by every scorer: float x float (FMA micro-kernel
// or AMX tiles), float x bits (maxsim_bits/, table lookup) and bits x bits (hamming/). A scorer
// owns the compacted query tokens and folds one chunk of document rows into every token's
// running max; the driver does the rest: threads, empty documents, per-query sums and the fused
// top-k.
//
// Problem P: any of the three ops' problems; the driver reads only its colkern/problem.h base
// (B, N, starts and lengths).
// Scorer interface:
//   int64_t n_tok;                      valid query tokens
//   std::vector<int64_t> owner;         query of each token
//   int64_t run_max_pad;                run_max is padded to a multiple of this
//   int64_t chunk_rows;                 document rows per update() (<= kMaxChunkRows)
//   void prepare(Scratch&) const;       sizes per-thread scratch (called before the threads)
//   void update(int64_t row0, int64_t rows, float* run_max, Scratch&) const;
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>


namespace colkern::maxsim {

constexpr int64_t kChunkRows = 96;  // 96 x 128 fp32 = 48 KiB: a widened chunk stays in L1/L2
constexpr int64_t kMaxChunkRows = 256;

// Per-thread scratch, allocated before the parallel region so nothing throws inside it.
struct Scratch {
  std::vector<float> run_max, rows, doc_scores;
  std::vector<int32_t> best;  // hamming: per-token minimum distance in a chunk
};

struct Entry {
  float score;
  int64_t index;
};

// True when a ranks above b: NaN above every number (as torch.topk), then higher score, then
// lower index, so results do not depend on thread scheduling.
inline bool ranks_above(const Entry& a, const Entry& b) {
  const bool an = std::isnan(a.score), bn = std::isnan(b.score);
  if (an != bn) return an;
  if (!an && a.score != b.score) return a.score > b.score;
  return a.index < b.index;
}

// Multiply-adds (query token x document row x dimension) a thread must have before another one
// is woken: about 40 us of one core's work. Waking an OpenMP thread costs microseconds on an
// idle machine and milliseconds on a loaded one, where it must wait for a core; a search
// stage or a dense route that scores a few dozen rows runs faster on the calling thread.
constexpr int64_t kMinMacsPerThread = int64_t{1} << 21;

// Threads for a problem: at most one per document and one per kMinMacsPerThread of work.
// Every document's score is computed by one thread on its own, so the result does not depend
// on the count.
template <class P>
int clamp_threads(int num_threads, const P& p) {
  int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  if (p.N < nt) nt = static_cast<int>(std::max<int64_t>(p.N, 1));
  int64_t rows = 0;
  for (int64_t n = 0; n < p.N; ++n) rows += p.lengths[n];
  const int64_t macs = p.B * p.Lq * std::max<int64_t>(p.D, 1) * rows;
  const int64_t by_work = std::max<int64_t>(1, macs / kMinMacsPerThread);
  return static_cast<int>(std::min<int64_t>(nt, by_work));
}

template <class P, class Scorer>
std::vector<Scratch> make_scratch(const P& p, const Scorer& sc, int nt) {
  std::vector<Scratch> scratch(nt);
  const int64_t pad = sc.run_max_pad;
  for (auto& s : scratch) {
    s.run_max.resize((sc.n_tok + pad - 1) / pad * pad + pad);
    s.doc_scores.resize(p.B);
    sc.prepare(s);
  }
  return scratch;
}

template <class P, class Scorer>
void score_document(const P& p, const Scorer& sc, int64_t n, Scratch& s) {
  std::fill(s.doc_scores.begin(), s.doc_scores.end(), 0.f);
  const int64_t len = p.lengths[n];
  if (len == 0 || sc.n_tok == 0) return;  // empty sums are 0
  std::fill(s.run_max.begin(), s.run_max.end(), -std::numeric_limits<float>::infinity());
  for (int64_t r0 = 0; r0 < len; r0 += sc.chunk_rows)
    sc.update(p.starts[n] + r0, std::min(sc.chunk_rows, len - r0), s.run_max.data(), s);
  // Summed in token order: deterministic whatever the thread count.
  for (int64_t t = 0; t < sc.n_tok; ++t) s.doc_scores[sc.owner[t]] += s.run_max[t];
}

template <class P, class Scorer>
void run_scores(const P& p, const Scorer& sc, float* out, int num_threads) {
  const int nt = clamp_threads(num_threads, p);
  std::vector<Scratch> scratch = make_scratch(p, sc, nt);
#pragma omp parallel num_threads(nt)
  {
    Scratch& s = scratch[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      score_document(p, sc, n, s);
      for (int64_t b = 0; b < p.B; ++b) out[b * p.N + n] = s.doc_scores[b];
    }
  }
}

template <class P, class Scorer>
void run_topk(const P& p, const Scorer& sc, int64_t k, float* out_scores,
              int64_t* out_indices, int num_threads) {
  if (k < 1) throw std::invalid_argument("maxsim_topk: k must be >= 1, got " + std::to_string(k));
  const int64_t keep = std::min(k, p.N);
  const int nt = clamp_threads(num_threads, p);
  std::vector<Scratch> scratch = make_scratch(p, sc, nt);
  // heaps[t][b]: thread t's best `keep` documents for query b, worst at the front.
  std::vector<std::vector<std::vector<Entry>>> heaps(nt, std::vector<std::vector<Entry>>(p.B));
  for (auto& per_thread : heaps)
    for (auto& h : per_thread) h.reserve(keep);
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    Scratch& s = scratch[tid];
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      score_document(p, sc, n, s);
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

// An op's scores() / topk() on this driver: the op's own validate(p) (found by argument-
// dependent lookup) runs first, because constructing Scorer(p) already reads the query.
template <class Scorer, class P>
void validated_scores(const P& p, float* out, int num_threads) {
  validate(p);
  run_scores(p, Scorer(p), out, num_threads);
}

template <class Scorer, class P>
void validated_topk(const P& p, int64_t k, float* out_scores, int64_t* out_indices,
                    int num_threads) {
  validate(p);
  run_topk(p, Scorer(p), k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim
