// ISA selection, validation and the scorers of float queries: float documents (FMA
// micro-kernel) and packed-bit documents (table lookup).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "colkern/ranges.h"
#include "maxsim.h"
#include "maxsim_driver.h"
#ifdef COLKERN_HAVE_AMX_BF16
#include "maxsim_amx.h"
#endif

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

// Valid query tokens, converted to fp32 once: q [n_tok, D] and the query each belongs to.
struct QueryTokens {
  std::vector<float> q;
  std::vector<int64_t> owner;

  QueryTokens(const Problem& p, const Kernel& kernel) {
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
  }
};

// Float documents: scores chunks of rows (fp32 read in place, fp16 / bf16 widened into the
// thread's scratch) with the FMA micro-kernel.
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

// Packed-bit documents: each query token's partial dot products with every nibble of bits,
// tabulated once per call (bits_lut.h), so a row costs D / 4 table adds per token block
// instead of widening it to fp32 and D fused multiply-adds. Rows are read in place.
struct BitsLutScorer {
  const Problem& p;
  const BitsLutKernel& lut;
  std::vector<float> storage;  // the table, aligned to 64 bytes inside
  const float* table = nullptr;
  std::vector<int64_t> owner;
  int64_t n_tok = 0;
  int64_t run_max_pad = 1;
  // Every token block passes over the whole chunk, whose expanded nibbles (8 KiB at D = 128)
  // stay in L1 beside the block's table (32 KiB): long chunks bring each block's table back
  // into L1 less often when several blocks do not fit together.
  int64_t chunk_rows = kMaxChunkRows;

  BitsLutScorer(const Problem& problem, const Kernel& kernel) : p(problem), lut(kernel.bits_lut) {
    run_max_pad = lut.block;
    QueryTokens tokens(p, kernel);
    owner = std::move(tokens.owner);
    n_tok = static_cast<int64_t>(owner.size());
    // A table entry is up to one 64-byte line: unaligned, every load would split two lines.
    constexpr int64_t kAlignFloats = 64 / sizeof(float);
    storage.resize(lut.table_floats(n_tok, p.D) + kAlignFloats);
    const auto misalign = reinterpret_cast<uintptr_t>(storage.data()) % 64;
    float* aligned = storage.data() + (misalign == 0 ? 0 : (64 - misalign) / sizeof(float));
    lut.build(tokens.q.data(), n_tok, p.D, p.v_dtype == DType::BITS_PM1, aligned);
    table = aligned;
  }

  // The chunk's rows expanded to one byte per nibble (2 * nbytes per row) go in the scratch
  // that the float scorer widens rows into.
  void prepare(Scratch& s) const {
    s.rows.resize((chunk_rows * 2 * row_bytes(p.v_dtype, p.D) + sizeof(float) - 1) / sizeof(float));
  }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    const int64_t nbytes = row_bytes(p.v_dtype, p.D);
    lut.update(table, n_tok, static_cast<const uint8_t*>(p.values) + row0 * nbytes, rows, p.D,
               reinterpret_cast<uint8_t*>(s.rows.data()), run_max);
  }
};

}  // namespace

void scores(const Problem& p, float* out, int num_threads) {
  validate(p);
#ifdef COLKERN_HAVE_AMX_BF16
  if (amx_bf16_applies(p)) return amx_bf16_scores(p, out, num_threads);
#endif
  if (is_bits(p.v_dtype)) return run_scores(p, BitsLutScorer(p, active_kernel()), out, num_threads);
  run_scores(p, FloatScorer(p, active_kernel()), out, num_threads);
}

void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  validate(p);
#ifdef COLKERN_HAVE_AMX_BF16
  if (amx_bf16_applies(p)) return amx_bf16_topk(p, k, out_scores, out_indices, num_threads);
#endif
  if (is_bits(p.v_dtype))
    return run_topk(p, BitsLutScorer(p, active_kernel()), k, out_scores, out_indices, num_threads);
  run_topk(p, FloatScorer(p, active_kernel()), k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim
