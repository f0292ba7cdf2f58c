// bf16 MaxSim on AMX tiles (Sapphire Rapids and later): the only file built with -mamx-*.
//
// TDPBF16PS multiplies a 16 x 32 bf16 tile by a 32 x 16 one into 16 x 16 fp32 sums (products
// exact, fp32 accumulation): 16 384 flops per instruction, about 15x what the AVX-512 FMA
// pipes deliver on the same core. The document is the left operand, read in place: 16 rows x 32
// dims of its natural [L, D] layout are one tile load with the row stride. The queries are the
// right operand, laid out once per call in the tiles' pair-interleaved ("VNNI") form:
// B[kp][t] = (q_t[2kp], q_t[2kp+1]) for 16 tokens t. A 16-row x 16-token score tile then goes
// through memory once (1 KiB, L1) for the vertical max over its rows into the running max.
//
// Scope: bf16 queries against bf16 documents with D a multiple of 32 (ColPali and ColBERT use
// 128). A document's last L % 16 rows, which would not fill a tile, go through the AVX-512 fp32
// kernel. AMX flushes bf16 denormals to zero (|x| < 1.2e-38), which moves a score by less than
// the fp32 rounding of the sums.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "colkern/cpu_features.h"
#include "maxsim.h"
#include "maxsim_avx512_amx.h"
#include "maxsim_driver.h"

namespace colkern::maxsim {
namespace {

constexpr int kTile = 16;        // rows of a tile; also tokens per score tile
constexpr int kTileDims = 32;    // bf16 elements in a 64-byte tile row
constexpr int64_t kAmxChunkRows = 256;  // a multiple of kTile: only a document's end is ragged

// The tile palette: tmm0/tmm3 scores (two token blocks), tmm1 document rows, tmm2/tmm4 queries.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

inline void configure_tiles() {
  TileConfig cfg;
  for (int t = 0; t < 5; ++t) {
    cfg.rows[t] = kTile;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
}

// Folds a stored 16 x 16 score tile (row = document row, column = token) into run_max[0..16).
inline void fold_tile(const float* tile, float* run_max) {
  __m512 m = _mm512_loadu_ps(run_max);
  __mmask16 nan = 0;
#pragma GCC unroll 16
  for (int r = 0; r < kTile; ++r) {
    const __m512 c = _mm512_load_ps(tile + r * kTile);
    m = _mm512_max_ps(c, m);  // returns m when either is NaN: a NaN already in m sticks
    nan |= _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
  }
  _mm512_storeu_ps(run_max, _mm512_mask_mov_ps(m, nan, _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN())));
}

struct AmxBf16Scorer {
  const Problem& p;
  const Kernel& avx512;             // for the rows that do not fill a tile
  std::vector<uint16_t> q_tiles;    // [token block][D / 32][16 pairs][16 tokens][2] bf16
  std::vector<float> q_packed;      // fp32 queries in the AVX-512 kernel's layout
  std::vector<int64_t> owner;
  int64_t n_tok = 0, blocks = 0, k_chunks = 0;
  int64_t run_max_pad = 2 * kTile;  // the AVX-512 kernel's padding (two 16-lane vectors)
  int64_t chunk_rows = kAmxChunkRows;

  AmxBf16Scorer(const Problem& problem, const Kernel& k) : p(problem), avx512(k) {
    k_chunks = p.D / kTileDims;
    std::vector<const uint16_t*> tokens;
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t i = 0; i < p.Lq; ++i) {
        if (p.q_mask != nullptr && p.q_mask[b * p.Lq + i] == 0) continue;
        tokens.push_back(static_cast<const uint16_t*>(p.q) + (b * p.Lq + i) * p.D);
        owner.push_back(b);
      }
    n_tok = static_cast<int64_t>(tokens.size());
    blocks = (n_tok + kTile - 1) / kTile;
    // Padding tokens are zero vectors: their lanes score 0 and are never read back.
    q_tiles.assign(blocks * k_chunks * kTile * kTile * 2, 0);
    for (int64_t t = 0; t < n_tok; ++t) {
      const int64_t blk = t / kTile, lane = t % kTile;
      for (int64_t d = 0; d < p.D; ++d) {
        const int64_t kc = d / kTileDims, kp = (d % kTileDims) / 2;
        q_tiles[(((blk * k_chunks + kc) * kTile + kp) * kTile + lane) * 2 + d % 2] = tokens[t][d];
      }
    }
    std::vector<float> qf(n_tok * p.D);
    for (int64_t t = 0; t < n_tok; ++t) avx512.to_float(tokens[t], DType::BF16, 1, p.D, qf.data() + t * p.D);
    q_packed.resize(avx512.packed_query_floats(n_tok, p.D));
    avx512.pack_queries(qf.data(), n_tok, p.D, q_packed.data());
  }

  void prepare(Scratch& s) const { s.rows.resize(std::max<int64_t>(kTile * p.D, 2 * kTile * kTile)); }

  const uint16_t* b_tile(int64_t blk, int64_t kc) const {
    return q_tiles.data() + (blk * k_chunks + kc) * kTile * kTile * 2;
  }

  void update(int64_t row0, int64_t rows, float* run_max, Scratch& s) const {
    const auto* doc = static_cast<const uint16_t*>(p.values) + row0 * p.D;
    const int64_t stride = p.D * 2;  // bytes between document rows
    const int64_t full = rows / kTile * kTile;
    alignas(64) float scores[2][kTile * kTile];
    if (full > 0) {
      // Tile state is per thread and other libraries (oneDNN) may configure it differently
      // between our calls: configure on entry, release on exit.
      configure_tiles();
      for (int64_t j = 0; j < full; j += kTile) {
        const uint16_t* a = doc + j * p.D;
        // Tile loads do not train the hardware prefetchers the way row-by-row vector loads do,
        // and a large corpus streams from DRAM: request the tile two blocks ahead.
        if (j + 3 * kTile <= rows) {
          const char* ahead = reinterpret_cast<const char*>(a + 2 * kTile * p.D);
          for (int64_t off = 0; off < kTile * stride; off += 64) _mm_prefetch(ahead + off, _MM_HINT_T0);
        }
        int64_t blk = 0;
        for (; blk + 2 <= blocks; blk += 2) {  // two token blocks share each document tile load
          _tile_zero(0);
          _tile_zero(3);
          for (int64_t kc = 0; kc < k_chunks; ++kc) {
            _tile_loadd(1, a + kc * kTileDims, stride);
            _tile_loadd(2, b_tile(blk, kc), 64);
            _tile_loadd(4, b_tile(blk + 1, kc), 64);
            _tile_dpbf16ps(0, 1, 2);
            _tile_dpbf16ps(3, 1, 4);
          }
          _tile_stored(0, scores[0], 64);
          _tile_stored(3, scores[1], 64);
          fold_tile(scores[0], run_max + blk * kTile);
          fold_tile(scores[1], run_max + (blk + 1) * kTile);
        }
        if (blk < blocks) {
          _tile_zero(0);
          for (int64_t kc = 0; kc < k_chunks; ++kc) {
            _tile_loadd(1, a + kc * kTileDims, stride);
            _tile_loadd(2, b_tile(blk, kc), 64);
            _tile_dpbf16ps(0, 1, 2);
          }
          _tile_stored(0, scores[0], 64);
          fold_tile(scores[0], run_max + blk * kTile);
        }
      }
      _tile_release();
    }
    if (rows > full) {  // fewer than 16 rows left: widen them and use the fp32 kernel
      avx512.to_float(doc + full * p.D, DType::BF16, rows - full, p.D, s.rows.data());
      avx512.update_token_max(nullptr, q_packed.data(), n_tok, s.rows.data(), rows - full, p.D, run_max);
    }
  }
};

bool request_amx_permission() {
  // Linux keeps AMX tile data off until a process asks for it (arch_prctl, kernel >= 5.16).
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

}  // namespace

bool amx_bf16_usable() {
  static const bool usable = cpu_has_amx_bf16() && request_amx_permission();
  return usable;
}

bool amx_bf16_applies(const Problem& p) {
  return p.q_dtype == DType::BF16 && p.v_dtype == DType::BF16 && p.D % kTileDims == 0 &&
         active_isa() == Isa::Avx512 && amx_bf16_usable();
}

void amx_bf16_scores(const Problem& p, float* out, int num_threads) {
  const AmxBf16Scorer scorer(p, avx512_kernel());
  run_scores(p, scorer, out, num_threads);
}

void amx_bf16_topk(const Problem& p, int64_t k, float* out_scores, int64_t* out_indices, int num_threads) {
  const AmxBf16Scorer scorer(p, avx512_kernel());
  run_topk(p, scorer, k, out_scores, out_indices, num_threads);
}

}  // namespace colkern::maxsim
