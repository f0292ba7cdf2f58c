// C++ self-test, built with AddressSanitizer + UBSan in CI (cmake -DCOLKERN_SANITIZE=ON).
// Every ISA level this CPU runs is compared with the scalar oracle on awkward shapes; inputs
// live in exactly-sized heap buffers so any read past a document, a query or a mask is caught.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "colkern/cpu_features.h"
#include "colkern/dtype.h"
#include "cpu/centroid_scores/centroid_scores.h"
#include "cpu/hamming/hamming.h"
#include "cpu/maxsim/maxsim.h"
#include "cpu/maxsim_backward/maxsim_backward.h"
#include "cpu/maxsim_bits/maxsim_bits.h"
#include "cpu/pack_bits/pack_bits.h"
#include "cpu/patch_pool/patch_pool.h"

using namespace colkern;
using colkern::DType;

namespace {

int failures = 0;

uint16_t to_bits(float f, DType t) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (t == DType::BF16) return static_cast<uint16_t>(u >> 16);
  // fp16 from a value that is exactly representable (small integers / 8): exponent rebias.
  const uint32_t sign = (u >> 16) & 0x8000u;
  const int exp = static_cast<int>((u >> 23) & 0xff) - 127 + 15;
  if ((u & 0x7fffffffu) == 0) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (exp << 10) | ((u >> 13) & 0x3ffu));
}

struct Case {
  int64_t B, Lq, D;
  std::vector<int64_t> lengths;
  DType dtype;
  bool mask;
};

// The training pair (maxsim_backward/): the argmax forward must give maxsim's scores, and every
// ISA level the scalar oracle's argmax (inputs are multiples of 1/8, so ties are frequent and
// exact: the lowest row must win everywhere) and gradients, bit for bit.
void check_argmax_backward(const maxsim::Problem& p, const std::vector<float>& expect_scores,
                           std::mt19937& rng) {
  const size_t n_arg = p.B * p.Lq * p.N;
  std::vector<float> grad(p.B * p.N);
  for (auto& g : grad) g = static_cast<float>(static_cast<int>(rng() % 9) - 4) / 4.f;
  std::vector<int32_t> arg_ref(n_arg), arg(n_arg);
  std::vector<float> scores(p.B * p.N), dq_ref(p.B * p.Lq * p.D), dv_ref(p.T * p.D), dq(dq_ref.size()),
      dv(dv_ref.size());
  set_isa_cap(Isa::Scalar);
  maxsim_backward::scores_argmax(p, scores.data(), arg_ref.data(), 2);
  maxsim_backward::backward(p, grad.data(), arg_ref.data(), dq_ref.data(), dv_ref.data(), 2);
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa()) || !isa_compiled(isa)) continue;
    set_isa_cap(isa);
    maxsim_backward::scores_argmax(p, scores.data(), arg.data(), 2);
    maxsim_backward::backward(p, grad.data(), arg.data(), dq.data(), dv.data(), 2);
    bool ok = scores == expect_scores && arg == arg_ref && dq == dq_ref && dv == dv_ref;
    for (int64_t n = 0; ok && n < p.N; ++n)
      for (int64_t t = 0; t < p.B * p.Lq; ++t) {
        const int32_t a = arg[t * p.N + n];
        const bool masked = p.q_mask != nullptr && p.q_mask[t] == 0;
        if ((masked || p.lengths[n] == 0) ? a != -1 : (a < 0 || a >= p.lengths[n])) ok = false;
      }
    if (!ok) {
      std::printf("FAIL maxsim_backward %s B=%lld Lq=%lld D=%lld dtype=%d\n", isa_name(isa), (long long)p.B,
                  (long long)p.Lq, (long long)p.D, (int)p.v_dtype);
      ++failures;
    }
  }
}

void run_case(const Case& c, std::mt19937& rng) {
  std::uniform_int_distribution<int> small(-8, 8);  // k/8: exact in fp16 and bf16
  const int64_t N = static_cast<int64_t>(c.lengths.size());
  std::vector<int64_t> starts(N);
  int64_t T = 0;
  for (int64_t n = 0; n < N; ++n) {
    starts[n] = T;
    T += c.lengths[n];
  }
  std::vector<float> qf(c.B * c.Lq * c.D), vf(T * c.D);
  for (auto& x : qf) x = small(rng) / 8.f;
  for (auto& x : vf) x = small(rng) / 8.f;
  std::vector<uint16_t> qh(qf.size()), vh(vf.size());
  for (size_t i = 0; i < qf.size(); ++i) qh[i] = to_bits(qf[i], c.dtype);
  for (size_t i = 0; i < vf.size(); ++i) vh[i] = to_bits(vf[i], c.dtype);
  std::vector<uint8_t> mask(c.B * c.Lq);
  for (auto& m : mask) m = (rng() % 4) != 0;

  maxsim::Problem p;
  const bool f32 = c.dtype == DType::F32;
  p.q = f32 ? static_cast<const void*>(qf.data()) : qh.data();
  p.q_dtype = c.dtype;
  p.B = c.B;
  p.Lq = c.Lq;
  p.D = c.D;
  p.q_mask = c.mask ? mask.data() : nullptr;
  p.values = f32 ? static_cast<const void*>(vf.data()) : vh.data();
  p.v_dtype = c.dtype;
  p.T = T;
  p.starts = starts.data();
  p.lengths = c.lengths.data();
  p.N = N;

  std::vector<float> expect(c.B * N), got(c.B * N);
  set_isa_cap(Isa::Scalar);
  maxsim::scores(p, expect.data(), 2);
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa()) || !isa_compiled(isa)) continue;
    set_isa_cap(isa);
    maxsim::scores(p, got.data(), 2);
    // Inputs are multiples of 1/8 with |x| <= 1 and D <= 300: every dot product is exact in
    // fp32, so all ISA levels must agree bit for bit.
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != expect[i]) {
        std::printf("FAIL %s B=%lld Lq=%lld D=%lld dtype=%d: [%zu] %g != %g\n", isa_name(isa),
                    (long long)c.B, (long long)c.Lq, (long long)c.D, (int)c.dtype, i, got[i], expect[i]);
        ++failures;
        break;
      }
    const int64_t k = 3, keep = k < N ? k : N;
    std::vector<float> ts(c.B * keep);
    std::vector<int64_t> ti(c.B * keep);
    maxsim::topk(p, k, ts.data(), ti.data(), 2);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < keep; ++i)
        if (ts[b * keep + i] != got[b * N + ti[b * keep + i]]) {
          std::printf("FAIL topk %s: score/index mismatch\n", isa_name(isa));
          ++failures;
        }
  }
  check_argmax_backward(p, expect, rng);
}

// Every ISA level against the scalar oracle, bit for bit: a lambda fills `out` at the current level.
template <class Fn>
void compare_isas(const char* what, size_t n, Fn run) {
  std::vector<float> expect(n), got(n);
  set_isa_cap(Isa::Scalar);
  run(expect.data());
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa()) || !isa_compiled(isa)) continue;
    set_isa_cap(isa);
    run(got.data());
    for (size_t i = 0; i < n; ++i)
      if (got[i] != expect[i]) {
        std::printf("FAIL %s %s: [%zu] %g != %g\n", what, isa_name(isa), i, got[i], expect[i]);
        ++failures;
        break;
      }
  }
}

// Packed-bit paths: pack_bits, float x bits (pm1 and 01) and hamming, on exact inputs.
void run_bits_case(int64_t B, int64_t Lq, int64_t D, const std::vector<int64_t>& lengths, std::mt19937& rng) {
  std::uniform_int_distribution<int> small(-8, 8);
  const int64_t N = static_cast<int64_t>(lengths.size()), nbytes = (D + 7) / 8;
  std::vector<int64_t> starts(N);
  int64_t T = 0;
  for (int64_t n = 0; n < N; ++n) {
    starts[n] = T;
    T += lengths[n];
  }
  std::vector<float> qf(B * Lq * D), vf(T * D);
  for (auto& x : qf) x = small(rng) / 8.f;
  for (auto& x : vf) x = small(rng) / 8.f;
  // Exactly sized outputs: a kernel writing one byte too many is caught by ASan.
  std::vector<uint8_t> vbits(T * nbytes), qbits(B * Lq * nbytes), check(T * nbytes);
  set_isa_cap(Isa::Scalar);
  pack_bits::pack(vf.data(), DType::F32, T, D, vbits.data(), 2);
  pack_bits::pack(qf.data(), DType::F32, B * Lq, D, qbits.data(), 2);
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa()) || !isa_compiled(isa)) continue;
    set_isa_cap(isa);
    pack_bits::pack(vf.data(), DType::F32, T, D, check.data(), 2);
    if (check != vbits) {
      std::printf("FAIL pack_bits %s D=%lld\n", isa_name(isa), (long long)D);
      ++failures;
    }
  }
  maxsim_bits::Problem p;
  p.q = qf.data(); p.q_dtype = DType::F32; p.B = B; p.Lq = Lq; p.D = D;
  p.bits = vbits.data(); p.T = T; p.starts = starts.data(); p.lengths = lengths.data(); p.N = N;
  for (BitsMode mode : {BitsMode::PM1, BitsMode::ZERO_ONE}) {
    p.mode = mode;
    compare_isas("maxsim_bits", B * N, [&](float* out) { maxsim_bits::scores(p, out, 2); });
    // Every ISA scores bits by table lookup, so also check the definition: q . s per token
    // pair with s = +-1 or {0, 1} from the float vectors' signs (exact on these inputs).
    std::vector<float> got(B * N);
    maxsim_bits::scores(p, got.data(), 2);
    const double zero_bit = mode == BitsMode::PM1 ? -1.0 : 0.0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n) {
        double total = 0;
        for (int64_t i = 0; i < Lq && lengths[n] > 0; ++i) {
          double best = -INFINITY;
          for (int64_t j = 0; j < lengths[n]; ++j) {
            double dot = 0;
            for (int64_t k = 0; k < D; ++k)
              dot += qf[(b * Lq + i) * D + k] * (vf[(starts[n] + j) * D + k] > 0 ? 1.0 : zero_bit);
            best = dot > best ? dot : best;
          }
          total += best;
        }
        if (got[b * N + n] != static_cast<float>(total)) {
          std::printf("FAIL maxsim_bits definition D=%lld Lq=%lld mode=%d: %g != %g\n", (long long)D,
                      (long long)Lq, (int)mode, got[b * N + n], total);
          ++failures;
          return;
        }
      }
  }
  hamming::Problem h;
  h.q = qbits.data(); h.B = B; h.Lq = Lq; h.D = D;
  h.bits = vbits.data(); h.T = T; h.starts = starts.data(); h.lengths = lengths.data(); h.N = N;
  std::vector<float> ham(B * N);
  compare_isas("hamming", B * N, [&](float* out) { hamming::scores(h, out, 2); });
  // The AVX-512 level without VPOPCNTDQ (Skylake-class: the AVX-512BW nibble-table kernel), on
  // a CPU that has it; elsewhere this repeats the run above.
  set_disabled_extensions("avx512_vpopcntdq");
  compare_isas("hamming (no vpopcntdq)", B * N, [&](float* out) { hamming::scores(h, out, 2); });
  set_disabled_extensions("");
  // And against the definition, straight from the float vectors' signs.
  hamming::scores(h, ham.data(), 2);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      double total = 0;
      for (int64_t i = 0; i < Lq && lengths[n] > 0; ++i) {
        int64_t best = -D - 1;
        for (int64_t j = 0; j < lengths[n]; ++j) {
          int64_t dot = 0;
          for (int64_t k = 0; k < D; ++k)
            dot += ((qf[(b * Lq + i) * D + k] > 0) == (vf[(starts[n] + j) * D + k] > 0)) ? 1 : -1;
          best = dot > best ? dot : best;
        }
        total += static_cast<double>(best);
      }
      if (ham[b * N + n] != static_cast<float>(total)) {
        std::printf("FAIL hamming definition D=%lld: %g != %g\n", (long long)D, ham[b * N + n], total);
        ++failures;
      }
    }
}

// Float x bits with NaN query components: the token's max is NaN in both modes (NaN * 0 is
// NaN), so every non-empty document scores NaN for that query; a masked NaN token is ignored.
void run_bits_nan_case(int64_t D, std::mt19937& rng) {
  std::uniform_int_distribution<int> small(-8, 8);
  const int64_t B = 3, Lq = 20, nbytes = (D + 7) / 8;
  const std::vector<int64_t> lengths{4, 0, 260}, starts{0, 4, 4};
  const int64_t N = 3, T = 264;
  std::vector<float> qf(B * Lq * D);
  for (auto& x : qf) x = small(rng) / 8.f;
  std::vector<uint8_t> vbits(T * nbytes), mask(B * Lq, 1);
  for (auto& x : vbits) x = static_cast<uint8_t>(rng());
  qf[(0 * Lq + 17) * D + D - 1] = NAN;  // query 0: a valid NaN token in the last block
  qf[(2 * Lq + 3) * D] = NAN;           // query 2: a NaN token, masked out
  mask[2 * Lq + 3] = 0;
  maxsim_bits::Problem p;
  p.q = qf.data(); p.q_dtype = DType::F32; p.B = B; p.Lq = Lq; p.D = D; p.q_mask = mask.data();
  p.bits = vbits.data(); p.T = T; p.starts = starts.data(); p.lengths = lengths.data(); p.N = N;
  std::vector<float> out(B * N);
  for (BitsMode mode : {BitsMode::PM1, BitsMode::ZERO_ONE})
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detected_isa()) || !isa_compiled(isa)) continue;
      set_isa_cap(isa);
      p.mode = mode;
      maxsim_bits::scores(p, out.data(), 2);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t n = 0; n < N; ++n) {
          const bool want_nan = b == 0 && lengths[n] > 0;
          if (std::isnan(out[b * N + n]) != want_nan || (lengths[n] == 0 && out[b * N + n] != 0.f)) {
            std::printf("FAIL maxsim_bits NaN %s D=%lld mode=%d: query %lld doc %lld = %g\n",
                        isa_name(isa), (long long)D, (int)mode, (long long)b, (long long)n, out[b * N + n]);
            ++failures;
          }
        }
    }
}

// Pooling with and without a row mask, each ISA against a double-precision reference.
void run_pool_case(int64_t D, const std::vector<int64_t>& lengths, bool masked, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  const int64_t N = static_cast<int64_t>(lengths.size());
  std::vector<int64_t> starts(N);
  int64_t T = 0;
  for (int64_t n = 0; n < N; ++n) {
    starts[n] = T;
    T += lengths[n];
  }
  std::vector<float> x(T * D);
  for (auto& v : x) v = u(rng) + 100.f;  // a common offset the shifted sums must absorb
  std::vector<uint8_t> mask(T);
  for (auto& m : mask) m = masked ? (rng() % 3 != 0) : 1;
  patch_pool::Problem p;
  p.values = x.data(); p.T = T; p.D = D; p.starts = starts.data(); p.lengths = lengths.data();
  p.N = N; p.correction = 1; p.row_mask = masked ? mask.data() : nullptr;
  std::vector<float> out(N * 3 * D);
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa()) || !isa_compiled(isa)) continue;
    set_isa_cap(isa);
    patch_pool::pool(p, out.data(), 2);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < D; ++c) {
        double s = 0, s2 = 0, mx = -1e300;
        int64_t cnt = 0;
        for (int64_t r = starts[n]; r < starts[n] + lengths[n]; ++r)
          if (mask[r]) {
            const double v = x[r * D + c];
            s += v;
            mx = v > mx ? v : mx;
            ++cnt;
          }
        const double mean = cnt ? s / cnt : 0;
        for (int64_t r = starts[n]; r < starts[n] + lengths[n]; ++r)
          if (mask[r]) s2 += (x[r * D + c] - mean) * (x[r * D + c] - mean);
        const double sd = cnt > 1 ? std::sqrt(s2 / (cnt - 1)) : 0;
        const float* o = out.data() + n * 3 * D;
        const bool ok = cnt == 0 ? (std::isnan(o[c]) && std::isnan(o[D + c]) && std::isnan(o[2 * D + c]))
                                 : (std::fabs(o[c] - mean) <= 1e-5 * std::fabs(mean) && o[D + c] == mx &&
                                    std::fabs(o[2 * D + c] - sd) <= 1e-4 * sd + 1e-6);
        if (!ok) {
          std::printf("FAIL patch_pool %s D=%lld page %lld col %lld: %g %g %g vs %g %g %g\n",
                      isa_name(isa), (long long)D, (long long)n, (long long)c, o[c], o[D + c],
                      o[2 * D + c], mean, mx, sd);
          ++failures;
          return;
        }
      }
  }
}

// The candidate stage's reduction against a brute-force oracle: every document's best delta per
// token (a max over that token's probed lists holding it) summed over tokens in order.
void run_centroid_case(int64_t K, int64_t n_docs, int64_t Lq, int64_t p, bool masked, std::mt19937& rng) {
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> docs;
  for (int64_t c = 0; c < K; ++c) {
    for (int32_t d = 0; d < n_docs; ++d)
      if (rng() % 3 == 0) docs.push_back(d);
    offsets.push_back(static_cast<int64_t>(docs.size()));
  }
  std::vector<int64_t> cent(static_cast<size_t>(Lq * p));
  std::vector<float> delta(cent.size());
  for (int64_t t = 0; t < Lq; ++t) {
    float v = 1.0f;
    for (int64_t j = 0; j < p; ++j) {
      cent[t * p + j] = static_cast<int64_t>(rng() % K);
      v -= static_cast<float>(rng() % 100) / 1000.0f;  // descending within a token
      delta[t * p + j] = v;
    }
  }
  std::vector<uint8_t> allowed(static_cast<size_t>(n_docs));
  for (auto& a : allowed) a = masked ? static_cast<uint8_t>(rng() % 2) : 1;
  std::vector<float> expect(static_cast<size_t>(n_docs), 0.0f);
  std::vector<uint8_t> seen(static_cast<size_t>(n_docs), 0);
  for (int64_t t = 0; t < Lq; ++t) {
    std::vector<float> best(static_cast<size_t>(n_docs), -1.0f);
    for (int64_t j = 0; j < p; ++j)
      for (int64_t e = offsets[cent[t * p + j]]; e < offsets[cent[t * p + j] + 1]; ++e)
        if (allowed[docs[e]]) best[docs[e]] = std::max(best[docs[e]], delta[t * p + j]);
    for (int64_t d = 0; d < n_docs; ++d)
      if (best[d] >= 0) { expect[d] += best[d]; seen[d] = 1; }
  }
  std::vector<int64_t> out_docs(static_cast<size_t>(n_docs));
  std::vector<float> out_scores(static_cast<size_t>(n_docs));
  const int64_t n = centroid_scores::score(offsets.data(), K, docs.data(), static_cast<int64_t>(docs.size()), n_docs,
                                           cent.data(), delta.data(), Lq, p, masked ? allowed.data() : nullptr,
                                           out_docs.data(), out_scores.data());
  int64_t i = 0;
  for (int64_t d = 0; d < n_docs; ++d) {
    if (!seen[d]) continue;
    if (i >= n || out_docs[i] != d || out_scores[i] != expect[d]) {
      std::printf("FAIL: centroid_scores K=%lld docs=%lld Lq=%lld p=%lld masked=%d at document %lld\n",
                  static_cast<long long>(K), static_cast<long long>(n_docs), static_cast<long long>(Lq),
                  static_cast<long long>(p), masked, static_cast<long long>(d));
      ++failures;
      return;
    }
    ++i;
  }
  if (i != n) {
    std::printf("FAIL: centroid_scores wrote %lld documents, expected %lld\n", static_cast<long long>(n),
                static_cast<long long>(i));
    ++failures;
  }
}

template <class Fn>
void expect_rejected(const char* what, Fn run) {
  try {
    run();
    std::printf("FAIL: %s accepted\n", what);
    ++failures;
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

int main() {
  std::mt19937 rng(42);
  int cases = 0;
  for (DType dtype : {DType::F32, DType::F16, DType::BF16})
    for (int64_t D : {1, 7, 8, 96, 130})
      for (int64_t Lq : {1, 3, 17, 33})
        for (bool mask : {false, true}) {
          run_case({2, Lq, D, {0, 1, 3, 17, 97, 5}, dtype, mask}, rng);
          ++cases;
        }
  run_case({1, 32, 128, {1025, 0, 6}, DType::F32, false}, rng);
  // bf16 documents both ways at every level: widened in registers (on AMD) and through the
  // chunk buffer (elsewhere, or disabled as here); odd D takes the kernels' single-element tail.
  for (const char* variant : {"", "bf16_in_registers"}) {
    set_disabled_extensions(variant);
    for (int64_t D : {1, 2, 7, 33, 128, 130}) {
      run_case({2, 33, D, {0, 1, 3, 5, 13, 97}, DType::BF16, true}, rng);
      ++cases;
    }
  }
  set_disabled_extensions("");
  for (int64_t D : {1, 7, 8, 129, 600})
    for (bool masked : {false, true}) {
      run_pool_case(D, {0, 1, 2, 3, 17, 70, 300}, masked, rng);
      ++cases;
    }
  for (int64_t D : {1, 7, 8, 9, 64, 65, 128, 130, 256, 300}) {
    run_bits_case(2, 5, D, {0, 1, 3, 17, 300, 5}, rng);
    ++cases;
  }
  // Several token blocks of the float x bits table (8 or 16 tokens each) with a ragged last one.
  for (int64_t D : {1, 7, 8, 9, 96, 128, 130}) {
    run_bits_case(2, 33, D, {0, 1, 3, 257, 5}, rng);
    run_bits_nan_case(D, rng);
    cases += 2;
  }
  // Validation must reject out-of-range documents before any read.
  maxsim::Problem bad;
  std::vector<float> v(8), q(8), out(1);
  std::vector<int64_t> s{6}, l{3};
  bad.q = q.data(); bad.B = 1; bad.Lq = 1; bad.D = 1; bad.values = v.data(); bad.T = 8;
  bad.starts = s.data(); bad.lengths = l.data(); bad.N = 1;
  expect_rejected("out-of-range document", [&] { maxsim::scores(bad, out.data(), 1); });
  // So must element-type and bit-mode codes outside their enums (C++ callers can cast any int).
  l[0] = 1;  // a valid range now: only the code is wrong
  bad.v_dtype = static_cast<DType>(7);
  expect_rejected("dtype code 7", [&] { maxsim::scores(bad, out.data(), 1); });
  bad.v_dtype = DType::F32;
  std::vector<int32_t> bad_arg{5};  // row 5 of a 1-row document
  std::vector<float> grad1(1), dq1(1), dv1(8);
  expect_rejected("argmax out of its document",
                  [&] { maxsim_backward::backward(bad, grad1.data(), bad_arg.data(), dq1.data(), dv1.data(), 1); });
  bad.v_dtype = static_cast<DType>(7);
  maxsim_bits::Problem bad_bits;
  std::vector<uint8_t> packed(8);
  bad_bits.q = q.data(); bad_bits.B = 1; bad_bits.Lq = 1; bad_bits.D = 1; bad_bits.bits = packed.data();
  bad_bits.T = 8; bad_bits.starts = s.data(); bad_bits.lengths = l.data(); bad_bits.N = 1;
  bad_bits.mode = static_cast<BitsMode>(2);
  expect_rejected("bits mode code 2", [&] { maxsim_bits::scores(bad_bits, out.data(), 1); });
  expect_rejected("pack_bits dtype code -1",
                  [&] { pack_bits::pack(v.data(), static_cast<DType>(-1), 1, 8, packed.data(), 1); });
  for (bool masked : {false, true}) {
    run_centroid_case(9, 40, 5, 3, masked, rng);
    run_centroid_case(1, 1, 1, 1, masked, rng);
    cases += 2;
  }
  {
    std::vector<int64_t> offs{0, 2, 3}, cents{5}, outd(2);
    std::vector<int32_t> ids{0, 1, 7};
    std::vector<float> dl{0.5f}, outs(2);
    expect_rejected("centroid id 5 of 2", [&] {
      centroid_scores::score(offs.data(), 2, ids.data(), 3, 2, cents.data(), dl.data(), 1, 1, nullptr, outd.data(),
                             outs.data());
    });
    cents[0] = 1;  // list 1 holds document 7 of 2
    expect_rejected("document id 7 of 2", [&] {
      centroid_scores::score(offs.data(), 2, ids.data(), 3, 2, cents.data(), dl.data(), 1, 1, nullptr, outd.data(),
                             outs.data());
    });
  }
  std::printf("%d cases, %d failures (ISA detected: %s)\n", cases + 1, failures, isa_name(detected_isa()));
  return failures == 0 ? 0 : 1;
}
