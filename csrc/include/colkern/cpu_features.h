// Runtime ISA detection and the COLKERN_ISA cap.
//
// Kernels are compiled once per ISA (each in its own translation unit with its own -m flags)
// and chosen here at run time, never with -march=native, so one wheel runs on any x86-64.
#pragma once

#include <string>

namespace colkern {

// Ordered: a level implies every level below it.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512"; throws std::invalid_argument otherwise.
Isa parse_isa(const std::string& name);

// Best level this CPU and OS support (AVX-512 needs the OS to save ZMM state, which
// __builtin_cpu_supports checks through XGETBV).
Isa detected_isa();
// Extensions some AVX-512 CPUs add (Ice Lake / Zen 4 and later), detected at run time. A kernel
// that needs one runs only when the active level is AVX-512 and the CPU has it.
bool cpu_has_avx512_vpopcntdq();
// AMX tiles with bf16 (Sapphire Rapids and later), with the tile state enabled by the OS (XCR0).
bool cpu_has_amx_bf16();
// Whether the SIMD MaxSim kernels widen bf16 documents in registers as they broadcast them
// (AMD Zen) rather than through a per-chunk fp32 buffer (elsewhere): see cpu_features.cpp.
bool bf16_widen_in_registers();
// These report false for an extension or variant named in $COLKERN_DISABLE (read once; a
// comma-separated list of avx512_vpopcntdq, amx_bf16, bf16_in_registers; anything else throws
// std::invalid_argument), so the paths of other CPUs are tested on one that has them.
// set_disabled_extensions("...") replaces the list at run time (the self-test; the AMX kernel
// decides once, at its first call).
void set_disabled_extensions(const std::string& names);

// Whether this build compiled kernels for the level (AVX-512 needs a capable compiler).
bool isa_compiled(Isa isa);
// Level in use: min(detected, compiled, cap). The cap starts from $COLKERN_ISA.
Isa active_isa();
// Caps the level for tests and benchmarks; a cap above what the CPU has is clamped.
void set_isa_cap(Isa cap);
Isa isa_cap();

}  // namespace colkern
