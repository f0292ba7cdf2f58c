// Vector traits for AVX-512 F/BW/VL/DQ. Include only from translation units built with the
// AVX-512 flags. The anonymous namespace keeps each TU's copy private.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace colkern {
namespace {

struct Avx512 {
  static constexpr int W = 16;
  using reg = __m512;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load(const uint16_t* p, bool is_bf16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if (is_bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
  }
  // bf16 elements k (low half) and k + 1 (high half) of one 32-bit broadcast load (a load-port
  // op; GCC emits vpbroadcastd from memory, then the shift and the AND), widened exactly: bf16
  // is the top half of an fp32.
  static void bf16_pair(const uint16_t* p, reg& lo, reg& hi) {
    uint32_t pair;
    std::memcpy(&pair, p, sizeof(pair));
    const __m512i x = _mm512_set1_epi32(static_cast<int>(pair));
    lo = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    hi = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  static void store(float* p, reg r) { _mm512_storeu_ps(p, r); }
  // Folded by the compiler into the FMA as an embedded {1to16} broadcast operand.
  static reg bcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg max_keep_second_nan(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg nan_bits(reg a) {
    const __mmask16 m = _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    return _mm512_castsi512_ps(_mm512_maskz_set1_epi32(m, -1));
  }
  static bool any_nan(reg a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) != 0; }
  static reg bit_or(reg a, reg b) { return _mm512_or_ps(a, b); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  // 1 bit per float, x > 0, lane 0 in the MSB (numpy.packbits order); NaN compares false.
  static uint8_t positive_byte(const float* p) {
    const __mmask8 m = _mm256_cmp_ps_mask(_mm256_loadu_ps(p), _mm256_setzero_ps(), _CMP_GT_OQ);
    return static_cast<uint8_t>(_bit_reverse8(m));
  }

 private:
  // Mask bit i selects lane i; packed bits put dimension 0 in the byte's MSB.
  static unsigned _bit_reverse8(unsigned b) {
    b = ((b & 0xF0u) >> 4) | ((b & 0x0Fu) << 4);
    b = ((b & 0xCCu) >> 2) | ((b & 0x33u) << 2);
    return ((b & 0xAAu) >> 1) | ((b & 0x55u) << 1);
  }
};

}  // namespace
}  // namespace colkern
