// ISA selection, validation and the float x float scorer (FMA micro-kernel, or AMX tiles where
// they apply).
#include <cstdint>
#include <utility>
#include <vector>

#include "colkern/cpu_features.h"
#include "colkern/isa_select.h"
#include "colkern/problem.h"
#include "maxsim.h"
#include "maxsim_driver.h"
#include "query_tokens.h"
#ifdef COLKERN_HAVE_AMX_BF16
#include "maxsim_avx512_amx.h"
#endif

namespace colkern::maxsim {

const Kernel& active_kernel() {
  return select_isa(scalar_kernel, COLKERN_IF_AVX2(avx2_kernel), COLKERN_IF_AVX512(avx512_kernel));
}

void validate(const Problem& p) {
  check_dtype(p.q_dtype, "maxsim", "Q");
  check_dtype(p.v_dtype, "maxsim", "values");
  check_problem(p, p.q, p.values, {"maxsim", "dimension D", "Q", "values", "values"});
}

namespace {

// Scores chunks of rows (fp32 read in place, fp16 / bf16 widened into the thread's scratch)
// with the FMA micro-kernel.
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
    QueryTokens tokens(p, kernel);
    q = std::move(tokens.q);
    owner = std::move(tokens.owner);
    n_tok = static_cast<int64_t>(owner.size());
    packed.resize(kernel.packed_query_floats(n_tok, p.D));
    kernel.pack_queries(q.data(), n_tok, p.D, packed.data());
    bf16_in_place = p.v_dtype == DType::BF16 && kernel.update_token_max_bf16 != nullptr && bf16_widen_in_registers();
  }

  // bf16 rows are widened in registers where that pays (bf16_widen_in_registers()) by kernels
  // that can (update_token_max_bf16); otherwise, and for fp16, a chunk is widened into the
  // thread's scratch first.
  bool bf16_in_place = false;

  void prepare(Scratch& s) const {
    if (p.v_dtype != DType::F32 && !bf16_in_place) s.rows.resize(kChunkRows * p.D);
  }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    const unsigned char* src = static_cast<const unsigned char*>(p.values) + row0 * row_bytes(p.v_dtype, p.D);
    const float* doc;
    if (bf16_in_place) {
      kernel.update_token_max_bf16(q.data(), packed.data(), n_tok, reinterpret_cast<const uint16_t*>(src), rows,
                                   p.D, run_max);
      return;
    }
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
#ifdef COLKERN_HAVE_AMX_BF16
  if (amx_bf16_applies(p)) return amx_bf16_scores(p, out, num_threads);
#endif
  run_scores(p, FloatScorer(p, active_kernel()), out, num_threads);
}

void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  validate(p);
#ifdef COLKERN_HAVE_AMX_BF16
  if (amx_bf16_applies(p)) return amx_bf16_topk(p, k, out_scores, out_indices, num_threads);
#endif
  run_topk(p, FloatScorer(p, active_kernel()), k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim
