// Vector traits of width 1: the portable path of every generic kernel.
#pragma once

#include <cmath>
#include <cstdint>

#include "colkern/half.h"

namespace colkern {
namespace {

struct Scalar {
  static constexpr int W = 1;
  using reg = float;
  static reg zero() { return 0.f; }
  static reg set1(float x) { return x; }
  static reg load(const float* p) { return *p; }
  static reg load(const uint16_t* p, bool is_bf16) {
    return is_bf16 ? bfloat16_to_float(*p) : half_to_float(*p);
  }
  static void store(float* p, reg r) { *p = r; }
  static reg bcast(const float* p) { return *p; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg fma(reg a, reg b, reg c) { return std::fma(a, b, c); }
  // Same NaN rule as maxps: the second operand when either is NaN.
  static reg max_keep_second_nan(reg a, reg b) { return a > b ? a : b; }
  static bool any_nan(reg a) { return std::isnan(a); }
  static reg bit_or(reg a, reg b) { return a + b; }  // only used to keep values alive
  static void prefetch(const void*) {}
  static uint8_t positive_byte(const float* p) {
    uint8_t b = 0;
    for (int i = 0; i < 8; ++i) b |= static_cast<uint8_t>((p[i] > 0.f) << (7 - i));
    return b;
  }
};

}  // namespace
}  // namespace colkern
