// ISA selection and the document-parallel drivers of the argmax forward and the backward.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "colkern/isa_select.h"
#include "cpu/maxsim/query_tokens.h"
#include "maxsim_backward.h"

namespace colkern::maxsim_backward {
namespace {

const Kernel& active_kernel() {
  return select_isa(scalar_kernel, COLKERN_IF_AVX2(avx2_kernel), COLKERN_IF_AVX512(avx512_kernel));
}

constexpr int64_t kChunkRows = 96;  // as maxsim's driver: a widened fp16/bf16 chunk stays in cache

int threads_for(int num_threads, int64_t N) {
  int nt = num_threads > 0 ? num_threads : omp_get_max_threads();
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, N)));
}

void check_problem(const Problem& p, const char* op) {
  maxsim::validate(p);
  for (int64_t n = 0; n < p.N; ++n)
    if (p.lengths[n] >= kMaxDocRows)
      throw std::invalid_argument(std::string(op) + ": document " + std::to_string(n) + " has " +
                                  std::to_string(p.lengths[n]) + " rows; at most 2^24 - 1 are supported");
}

// Position b * Lq + i of every valid (unmasked) query token, in QueryTokens' order.
std::vector<int64_t> token_positions(const Problem& p) {
  std::vector<int64_t> pos;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t i = 0; i < p.Lq; ++i)
      if (p.q_mask == nullptr || p.q_mask[b * p.Lq + i] != 0) pos.push_back(b * p.Lq + i);
  return pos;
}

// True when two non-empty document ranges share a row: then documents cannot own their rows
// of dvalues, and the backward runs on one thread.
bool ranges_overlap(const Problem& p) {
  std::vector<int64_t> order(p.N);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p.starts[a] < p.starts[b]; });
  int64_t end = std::numeric_limits<int64_t>::min();
  for (int64_t n : order) {
    if (p.lengths[n] == 0) continue;
    if (p.starts[n] < end) return true;
    end = std::max(end, p.starts[n] + p.lengths[n]);
  }
  return false;
}

}  // namespace

void scores_argmax(const Problem& p, float* out, int32_t* argmax, int num_threads) {
  check_problem(p, "maxsim_argmax");
  const Kernel& kernel = active_kernel();
  const maxsim::Kernel& base = *kernel.base;
  maxsim::QueryTokens tokens(p, base);
  const std::vector<int64_t> pos = token_positions(p);
  const int64_t n_tok = static_cast<int64_t>(pos.size());
  std::vector<float> packed(base.packed_query_floats(n_tok, p.D));
  base.pack_queries(tokens.q.data(), n_tok, p.D, packed.data());
  std::fill(argmax, argmax + p.B * p.Lq * p.N, -1);  // masked tokens and empty documents

  const int nt = threads_for(num_threads, p.N);
  const int64_t pad = base.run_max_pad;
  const int64_t lanes = (n_tok + pad - 1) / pad * pad + pad;
  struct Scratch {
    std::vector<float> run_max, run_idx, rows, sums;
  };
  std::vector<Scratch> scratch(nt);  // allocated before the threads: nothing throws inside
  for (auto& s : scratch) {
    s.run_max.resize(lanes);
    s.run_idx.resize(lanes);
    s.sums.resize(p.B);
    if (p.v_dtype != DType::F32) s.rows.resize(kChunkRows * p.D);
  }
  const int64_t row_size = row_bytes(p.v_dtype, p.D);
#pragma omp parallel num_threads(nt)
  {
    Scratch& s = scratch[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < p.N; ++n) {
      std::fill(s.sums.begin(), s.sums.end(), 0.f);
      const int64_t len = p.lengths[n];
      if (len > 0 && n_tok > 0) {
        std::fill(s.run_max.begin(), s.run_max.end(), -std::numeric_limits<float>::infinity());
        std::fill(s.run_idx.begin(), s.run_idx.end(), 0.f);
        for (int64_t r0 = 0; r0 < len; r0 += kChunkRows) {
          const int64_t rows = std::min(kChunkRows, len - r0);
          const auto* src = static_cast<const unsigned char*>(p.values) + (p.starts[n] + r0) * row_size;
          const float* doc = reinterpret_cast<const float*>(src);
          if (p.v_dtype != DType::F32) {
            base.to_float(src, p.v_dtype, rows, p.D, s.rows.data());
            doc = s.rows.data();
          }
          kernel.update_token_argmax(tokens.q.data(), packed.data(), n_tok, doc, rows, p.D, r0,
                                     s.run_max.data(), s.run_idx.data());
        }
        for (int64_t t = 0; t < n_tok; ++t) {  // token order: deterministic sums
          s.sums[tokens.owner[t]] += s.run_max[t];
          argmax[pos[t] * p.N + n] = static_cast<int32_t>(s.run_idx[t]);
        }
      }
      for (int64_t b = 0; b < p.B; ++b) out[b * p.N + n] = s.sums[b];
    }
  }
}

void backward(const Problem& p, const float* grad, const int32_t* argmax, float* dq, float* dvalues,
              int num_threads) {
  check_problem(p, "maxsim_backward");
  const int64_t BL = p.B * p.Lq, D = p.D;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t t = 0; t < BL; ++t) {
      const int32_t a = argmax[t * p.N + n];
      if (a < -1 || a >= p.lengths[n])
        throw std::invalid_argument("maxsim_backward: argmax entry " + std::to_string(a) + " of document " +
                                    std::to_string(n) + " is outside [-1, " + std::to_string(p.lengths[n]) + ")");
    }
  const Kernel& kernel = active_kernel();
  const maxsim::Kernel& base = *kernel.base;
  // Q widened to fp32 once (all B x Lq tokens, so argmax positions index it directly).
  std::vector<float> q(BL * D);
  if (p.q_dtype == DType::F32) {
    std::copy_n(static_cast<const float*>(p.q), BL * D, q.data());
  } else if (BL > 0) {
    base.to_float(p.q, p.q_dtype, BL, D, q.data());
  }
  std::fill(dvalues, dvalues + p.T * D, 0.f);
  const int nt = ranges_overlap(p) ? 1 : threads_for(num_threads, p.N);
  std::vector<std::vector<float>> dq_part(nt, std::vector<float>(BL * D, 0.f));
  std::vector<std::vector<float>> row_buf(nt, std::vector<float>(p.v_dtype == DType::F32 ? 0 : D));
  const int64_t row_size = row_bytes(p.v_dtype, D);
  // Static schedule: each thread's dq partial sums a fixed set of documents, so the result does
  // not depend on timing.
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t n = 0; n < p.N; ++n) {
    const int tid = omp_get_thread_num();
    float* dqt = dq_part[tid].data();
    for (int64_t t = 0; t < BL; ++t) {
      const int32_t a = argmax[t * p.N + n];
      if (a < 0) continue;
      const float g = grad[(t / p.Lq) * p.N + n];
      const int64_t row = p.starts[n] + a;
      const auto* src = static_cast<const unsigned char*>(p.values) + row * row_size;
      const float* v = reinterpret_cast<const float*>(src);
      if (p.v_dtype != DType::F32) {
        base.to_float(src, p.v_dtype, 1, D, row_buf[tid].data());
        v = row_buf[tid].data();
      }
      kernel.axpy(g, q.data() + t * D, dvalues + row * D, D);
      kernel.axpy(g, v, dqt + t * D, D);
    }
  }
  std::fill(dq, dq + BL * D, 0.f);
  for (int t = 0; t < nt; ++t) kernel.axpy(1.f, dq_part[t].data(), dq, BL * D);
}

}  // namespace colkern::maxsim_backward
