// Vector traits for AVX2 + FMA + F16C. Include only from translation units built with
// -mavx2 -mfma -mf16c. The anonymous namespace keeps each TU's copy private (no ODR merging
// of code compiled for different ISAs).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace colkern {
namespace {

// Packed-bit byte -> 8 floats, MSB first, built at compile time (no initialisation guard on
// the hot path): [mode: 0 = {0, 1}, 1 = +-1][byte][lane].
struct Bits8Table {
  alignas(32) float v[2][256][8];
};
constexpr Bits8Table make_bits8_table() {
  Bits8Table t{};
  for (int mode = 0; mode < 2; ++mode)
    for (int b = 0; b < 256; ++b)
      for (int i = 0; i < 8; ++i) t.v[mode][b][i] = ((b >> (7 - i)) & 1) ? 1.f : (mode == 1 ? -1.f : 0.f);
  return t;
}
constexpr Bits8Table kBits8Table = make_bits8_table();

struct Avx2 {
  static constexpr int W = 8;
  using reg = __m256;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load(const uint16_t* p, bool is_bf16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if (is_bf16)  // bf16 is the top half of an fp32: widen and shift
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
  }
  static void store(float* p, reg r) { _mm256_storeu_ps(p, r); }
  static reg bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  // maxps returns its second operand when either is NaN.
  static reg max_keep_second_nan(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg nan_bits(reg a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static bool any_nan(reg a) { return _mm256_movemask_ps(nan_bits(a)) != 0; }
  static reg bit_or(reg a, reg b) { return _mm256_or_ps(a, b); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  // 1 bit per float, x > 0, lane 0 in the MSB (numpy.packbits order); NaN compares false.
  static uint8_t positive_byte(const float* p) {
    const __m256 reversed = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p), _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0));
    return static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(reversed, _mm256_setzero_ps(), _CMP_GT_OQ)));
  }
  // 8 floats from one byte of packed bits, MSB first: +-1 (pm1) or {0, 1}: one 32-byte load
  // from the L1-resident table (16 KiB) and one store, instead of computing the lanes with a
  // broadcast, an and, a compare and a blend per byte.
  static void store_bits8(float* dst, uint8_t byte, bool pm1) {
    _mm256_storeu_ps(dst, _mm256_load_ps(kBits8Table.v[pm1 ? 1 : 0][byte]));
  }

};

}  // namespace
}  // namespace colkern
