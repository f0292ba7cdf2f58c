#include "colkern/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace colkern {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  throw std::invalid_argument("unknown ISA '" + name + "': expected scalar, avx2 or avx512");
}

Isa detected_isa() {
  static const Isa detected = [] {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Isa::Avx512;
    // F16C and POPCNT come with every AVX2 CPU in practice; the AVX2 kernels use them for fp16
    // input and hamming distances.
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c") && __builtin_cpu_supports("popcnt"))
      return Isa::Avx2;
#endif
    return Isa::Scalar;
  }();
  return detected;
}

namespace {
// Extensions turned off by $COLKERN_DISABLE or set_disabled_extensions(), as bits. The kernels
// of a machine without them then run on this one (tests cover the AVX-512 path of Skylake-class
// CPUs on a CPU with VPOPCNTDQ, for example).
enum : unsigned { kNoVpopcntdq = 1u, kNoAmxBf16 = 2u, kNoBf16InRegisters = 4u };

unsigned parse_disabled(const std::string& list) {
  unsigned bits = 0;
  size_t at = 0;
  while (at <= list.size()) {
    size_t end = list.find(',', at);
    if (end == std::string::npos) end = list.size();
    const std::string name = list.substr(at, end - at);
    if (name == "avx512_vpopcntdq") bits |= kNoVpopcntdq;
    else if (name == "amx_bf16") bits |= kNoAmxBf16;
    else if (name == "bf16_in_registers") bits |= kNoBf16InRegisters;
    else if (!name.empty())
      // A typo must not silently leave the extension on.
      throw std::invalid_argument("unknown CPU extension '" + name + "' in COLKERN_DISABLE: expected a "
                                  "comma-separated list of avx512_vpopcntdq, amx_bf16, bf16_in_registers");
    at = end + 1;
  }
  return bits;
}

std::atomic<unsigned>& disabled_storage() {
  static std::atomic<unsigned> bits{[] {
    const char* env = std::getenv("COLKERN_DISABLE");
    return env == nullptr ? 0u : parse_disabled(env);
  }()};
  return bits;
}
}  // namespace

void set_disabled_extensions(const std::string& names) { disabled_storage().store(parse_disabled(names)); }

bool bf16_widen_in_registers() {
#if defined(__x86_64__) || defined(_M_X64)
  // Widening at broadcast time costs one vector integer op per document element and row, the
  // same count as the FMAs it feeds for every 16 query tokens. AMD Zen issues those ops to
  // pipes beside the two FMA pipes, so they are nearly free and bf16 reads half the bytes of
  // fp32 (measured on Zen 4: 1.07-1.27x fp32 MaxSim at both levels; the buffer: 0.83-1.02x).
  // Intel cores issue vector shifts and logic to the FMA ports (p0/p5 for zmm, p0/p1 for ymm),
  // where they would cost about 1/3 of the FMA throughput; there one widening pass per chunk
  // (2 ops per 16 elements) is cheaper.
  static const bool amd = [] {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
    return ebx == 0x68747541u && edx == 0x69746e65u && ecx == 0x444d4163u;  // "AuthenticAMD"
  }();
  return amd && (disabled_storage().load() & kNoBf16InRegisters) == 0;
#else
  return false;
#endif
}

bool cpu_has_avx512_vpopcntdq() {
#if defined(__x86_64__) || defined(_M_X64)
  static const bool has = detected_isa() == Isa::Avx512 && __builtin_cpu_supports("avx512vpopcntdq");
  return has && (disabled_storage().load() & kNoVpopcntdq) == 0;
#else
  return false;
#endif
}

bool cpu_has_amx_bf16() {
#if defined(__x86_64__) || defined(_M_X64)
  if (disabled_storage().load() & kNoAmxBf16) return false;
  static const bool has = [] {
    if (detected_isa() != Isa::Avx512) return false;
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = (edx >> 22) & 1u, amx_tile = (edx >> 24) & 1u;
    if (!amx_bf16 || !amx_tile) return false;
    // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves tile state on context switches.
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((lo >> 17) & 3u) == 3u;
  }();
  return has;
#else
  return false;
#endif
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2:
#ifdef COLKERN_HAVE_AVX2
      return true;
#else
      return false;
#endif
    case Isa::Avx512:
#ifdef COLKERN_HAVE_AVX512
      return true;
#else
      return false;
#endif
  }
  return false;
}

namespace {
Isa initial_cap() {
  const char* env = std::getenv("COLKERN_ISA");
  if (env == nullptr || *env == '\0') return Isa::Avx512;
  // A typo in the environment must not silently fall back to another level.
  return parse_isa(env);
}
std::atomic<int>& cap_storage() {
  static std::atomic<int> cap{static_cast<int>(initial_cap())};
  return cap;
}
}  // namespace

Isa isa_cap() { return static_cast<Isa>(cap_storage().load()); }

void set_isa_cap(Isa cap) { cap_storage().store(static_cast<int>(cap)); }

Isa active_isa() {
  int level = static_cast<int>(isa_cap());
  const int detected = static_cast<int>(detected_isa());
  if (detected < level) level = detected;
  while (level > 0 && !isa_compiled(static_cast<Isa>(level))) --level;
  return static_cast<Isa>(level);
}

}  // namespace colkern
