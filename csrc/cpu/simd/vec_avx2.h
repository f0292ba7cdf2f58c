// Vector traits for AVX2 + FMA + F16C. Include only from translation units built with
// -mavx2 -mfma -mf16c. The anonymous namespace keeps each TU's copy private (no ODR merging
// of code compiled for different ISAs).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace colkern {
namespace {

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
  // bf16 elements k (low half) and k + 1 (high half) of one 32-bit broadcast, widened exactly:
  // bf16 is the top half of an fp32.
  static void bf16_pair(const uint16_t* p, reg& lo, reg& hi) {
    uint32_t pair;
    std::memcpy(&pair, p, sizeof(pair));
    const __m256i x = _mm256_set1_epi32(static_cast<int>(pair));
    lo = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
    hi = _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
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
};

}  // namespace
}  // namespace colkern
