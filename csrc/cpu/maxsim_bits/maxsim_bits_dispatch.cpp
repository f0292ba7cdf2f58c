// ISA selection, validation and the float x bits scorer, on the MaxSim driver.
#include <cstdint>
#include <utility>
#include <vector>

#include "colkern/isa_select.h"
#include "colkern/problem.h"
#include "cpu/maxsim/maxsim.h"
#include "cpu/maxsim/maxsim_driver.h"
#include "cpu/maxsim/query_tokens.h"
#include "maxsim_bits.h"

namespace colkern::maxsim_bits {

using maxsim::kMaxChunkRows;
using maxsim::Scratch;

void validate(const Problem& p) {
  check_dtype(p.q_dtype, "maxsim_bits", "Q");
  check_bits_mode(p.mode, "maxsim_bits");
  check_problem(p, p.q, p.bits, {"maxsim_bits", "dim", "Q", "bits", "docs_bits"});
}

namespace {

const Kernel& active_kernel() {
  return select_isa(scalar_kernel, COLKERN_IF_AVX2(avx2_kernel), COLKERN_IF_AVX512(avx512_kernel));
}

// Each query token's partial dot products with every nibble of bits, tabulated once per call
// (bits_lut.h), so a row costs D / 4 table adds per token block instead of widening it to fp32
// and D fused multiply-adds. Rows are read in place.
struct BitsLutScorer {
  const Problem& p;
  const Kernel& lut;
  std::vector<float> storage;  // the table, aligned to 64 bytes inside
  const float* table = nullptr;
  std::vector<int64_t> owner;
  int64_t n_tok = 0;
  int64_t run_max_pad = 1;
  // Every token block passes over the whole chunk, whose expanded nibbles (8 KiB at D = 128)
  // stay in L1 beside the block's table (32 KiB): long chunks bring each block's table back
  // into L1 less often when several blocks do not fit together.
  int64_t chunk_rows = kMaxChunkRows;

  explicit BitsLutScorer(const Problem& problem, const Kernel& kernel = active_kernel())
      : p(problem), lut(kernel) {
    run_max_pad = lut.block;
    // fp16 / bf16 query tokens are widened by the float MaxSim kernel of the active level.
    maxsim::QueryTokens tokens(p, maxsim::active_kernel());
    owner = std::move(tokens.owner);
    n_tok = static_cast<int64_t>(owner.size());
    // A table entry is up to one 64-byte line: unaligned, every load would split two lines.
    constexpr int64_t kAlignFloats = 64 / sizeof(float);
    storage.resize(lut.table_floats(n_tok, p.D) + kAlignFloats);
    const auto misalign = reinterpret_cast<uintptr_t>(storage.data()) % 64;
    float* aligned = storage.data() + (misalign == 0 ? 0 : (64 - misalign) / sizeof(float));
    lut.build(tokens.q.data(), n_tok, p.D, p.mode == BitsMode::PM1, aligned);
    table = aligned;
  }

  // The chunk's rows expanded to one byte per nibble (2 * nbytes per row), in the float
  // scratch that the float scorer widens rows into.
  void prepare(Scratch& s) const {
    s.rows.resize((chunk_rows * 2 * packed_row_bytes(p.D) + sizeof(float) - 1) / sizeof(float));
  }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    lut.update(table, n_tok, p.bits + row0 * packed_row_bytes(p.D), rows, p.D,
               reinterpret_cast<uint8_t*>(s.rows.data()), run_max);
  }
};

}  // namespace

void scores(const Problem& p, float* out, int num_threads) {
  maxsim::validated_scores<BitsLutScorer>(p, out, num_threads);
}

void topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  maxsim::validated_topk<BitsLutScorer>(p, k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim_bits
