// Picks one op's implementation for the active ISA level (cpu_features.h).
//
// Candidates are getters, and only the chosen one is called: a getter is defined in its ISA's
// translation unit, built with that ISA's flags, so even constructing its result may use
// instructions an older CPU lacks. A level this build did not compile is passed as nullptr
// (COLKERN_IF_AVX2 / COLKERN_IF_AVX512), because its getter exists in no object file.
#pragma once

#include "colkern/cpu_features.h"

#ifdef COLKERN_HAVE_AVX2
#define COLKERN_IF_AVX2(getter) (getter)
#define COLKERN_IF_AVX2_DECL(decl) decl
#else
#define COLKERN_IF_AVX2(getter) nullptr
#define COLKERN_IF_AVX2_DECL(decl)
#endif
#ifdef COLKERN_HAVE_AVX512
#define COLKERN_IF_AVX512(getter) (getter)
#define COLKERN_IF_AVX512_DECL(decl) decl
#else
#define COLKERN_IF_AVX512(getter) nullptr
#define COLKERN_IF_AVX512_DECL(decl)
#endif

// Declares an op's getters `ret scalar_<name>()`, `ret avx2_<name>()` and `ret avx512_<name>()`,
// each defined in the op's <op>_<isa>.cpp; a level this build does not compile is not declared.
// Used as `COLKERN_DECLARE_ISA_GETTERS(const Kernel&, kernel);`.
#define COLKERN_DECLARE_ISA_GETTERS(ret, name) \
  COLKERN_IF_AVX2_DECL(ret avx2_##name();)     \
  COLKERN_IF_AVX512_DECL(ret avx512_##name();) \
  ret scalar_##name()

namespace colkern {

template <class T>
struct IsaGetter {
  using type = T (*)();
};

// The best candidate at or below active_isa(); T is deduced from the scalar getter alone, so
// the others may be nullptr.
template <class T>
T select_isa(T (*scalar)(), typename IsaGetter<T>::type avx2, typename IsaGetter<T>::type avx512) {
  const Isa level = active_isa();
  if (level == Isa::Avx512 && avx512 != nullptr) return avx512();
  if (level >= Isa::Avx2 && avx2 != nullptr) return avx2();
  return scalar();
}

}  // namespace colkern
