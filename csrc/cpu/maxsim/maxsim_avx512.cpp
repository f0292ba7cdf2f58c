// AVX-512 F/BW/VL/DQ. The only MaxSim file compiled with -mavx512* alone (the AMX kernel,
// maxsim_avx512_amx.cpp, adds -mamx-*).
#include "cpu/simd/to_float.h"
#include "cpu/simd/vec_avx512.h"
#include "maxsim.h"
#include "maxsim_simd.h"

namespace colkern::maxsim {
namespace {

// 32 zmm registers: 2 query vectors x 12 document rows = 24 accumulators; broadcasts come
// from memory operands, so 2 loads + 12 broadcasts feed 24 FMAs per step.
constexpr int kRows = 12;

}  // namespace

const Kernel& avx512_kernel() {
  static const Kernel k{packed_query_floats_simd<Avx512>, pack_queries_simd<Avx512>, to_float_rows<Avx512>,
                        update_token_max_simd<Avx512, kRows>, Avx512::W * 2,
                        update_token_max_bf16_simd<Avx512, kRows>};
  return k;
}

}  // namespace colkern::maxsim
