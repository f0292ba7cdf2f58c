// pybind11 entry points. Tensors arrive as raw addresses from python/colkern/ops/, which has
// already checked dtypes, devices, shapes and contiguity with messages that name the argument;
// the kernels re-validate every document range (memory safety does not depend on Python) and
// run with the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "colkern/cpu_features.h"
#include "cpu/bits/pack_bits.h"
#include "cpu/maxsim/maxsim.h"
#ifdef COLKERN_HAVE_AMX_BF16
#include "cpu/maxsim/maxsim_amx.h"
#endif
#include "cpu/peak/fma_peak.h"
#include "cpu/pool/patch_pool.h"

namespace py = pybind11;
using namespace colkern;

namespace {

template <class T>
T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

DType to_dtype(int code) {
  if (code < 0 || code > 4) throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  return static_cast<DType>(code);
}

maxsim::Problem make_problem(std::uintptr_t q, int q_dtype, int64_t B, int64_t Lq, int64_t D,
                             std::uintptr_t q_mask, std::uintptr_t values, int v_dtype, int64_t T,
                             std::uintptr_t starts, std::uintptr_t lengths, int64_t N) {
  maxsim::Problem p;
  p.q = ptr<const void>(q);
  p.q_dtype = to_dtype(q_dtype);
  p.B = B;
  p.Lq = Lq;
  p.D = D;
  p.q_mask = ptr<const uint8_t>(q_mask);
  p.values = ptr<const void>(values);
  p.v_dtype = to_dtype(v_dtype);
  p.T = T;
  p.starts = ptr<const int64_t>(starts);
  p.lengths = ptr<const int64_t>(lengths);
  p.N = N;
  return p;
}

py::dict isa_info() {
  py::dict d;
  d["detected"] = isa_name(detected_isa());
  d["active"] = isa_name(active_isa());
  d["cap"] = isa_name(isa_cap());
  std::vector<std::string> compiled;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (isa_compiled(isa)) compiled.emplace_back(isa_name(isa));
  d["compiled"] = compiled;
  // AVX-512 extensions this build has kernels for and this CPU has (used at the avx512 level).
  std::vector<std::string> extensions;
#ifdef COLKERN_HAVE_AVX512_VPOPCNTDQ
  if (cpu_has_avx512_vpopcntdq()) extensions.emplace_back("avx512_vpopcntdq");
#endif
#ifdef COLKERN_HAVE_AMX_BF16
  if (maxsim::amx_bf16_usable()) extensions.emplace_back("amx_bf16");
#endif
  d["extensions"] = extensions;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "colkern CPU kernels (raw-pointer API; use the colkern package, not this module)";
  m.def("isa_info", &isa_info, "Detected, active and compiled ISA levels and the current cap.");
  m.def("set_isa", [](const std::string& name) { set_isa_cap(parse_isa(name)); },
        py::arg("name"), "Cap the kernel ISA level: scalar, avx2 or avx512.");
  m.def(
      "fma_peak_gflops",
      [](int threads) {
        py::gil_scoped_release release;
        return peak::fma_gflops(threads);
      },
      py::arg("threads"), "Measured fp32 FMA ceiling (GFLOP/s) of the active ISA level.");
  m.def(
      "maxsim_scores",
      [](std::uintptr_t q, int q_dtype, int64_t B, int64_t Lq, int64_t D, std::uintptr_t q_mask,
         std::uintptr_t values, int v_dtype, int64_t T, std::uintptr_t starts,
         std::uintptr_t lengths, int64_t N, std::uintptr_t out, int num_threads) {
        const auto p = make_problem(q, q_dtype, B, Lq, D, q_mask, values, v_dtype, T, starts, lengths, N);
        py::gil_scoped_release release;
        maxsim::scores(p, ptr<float>(out), num_threads);
      });
  m.def(
      "maxsim_topk",
      [](std::uintptr_t q, int q_dtype, int64_t B, int64_t Lq, int64_t D, std::uintptr_t q_mask,
         std::uintptr_t values, int v_dtype, int64_t T, std::uintptr_t starts,
         std::uintptr_t lengths, int64_t N, int64_t k, std::uintptr_t out_scores,
         std::uintptr_t out_indices, int num_threads) {
        const auto p = make_problem(q, q_dtype, B, Lq, D, q_mask, values, v_dtype, T, starts, lengths, N);
        py::gil_scoped_release release;
        maxsim::topk(p, k, ptr<float>(out_scores), ptr<int64_t>(out_indices), num_threads);
      });
  m.def(
      "patch_pool",
      [](std::uintptr_t values, int dtype, int64_t T, int64_t D, std::uintptr_t starts,
         std::uintptr_t lengths, int64_t N, std::uintptr_t row_mask, int64_t correction,
         std::uintptr_t out, int num_threads) {
        pool::Problem p;
        p.values = ptr<const void>(values);
        p.dtype = to_dtype(dtype);
        p.T = T;
        p.D = D;
        p.starts = ptr<const int64_t>(starts);
        p.lengths = ptr<const int64_t>(lengths);
        p.N = N;
        p.correction = correction;
        p.row_mask = ptr<const uint8_t>(row_mask);
        py::gil_scoped_release release;
        pool::patch_pool(p, ptr<float>(out), num_threads);
      });
  m.def(
      "maxsim_hamming_scores",
      [](std::uintptr_t q, int64_t B, int64_t Lq, int64_t dim, std::uintptr_t q_mask,
         std::uintptr_t values, int64_t T, std::uintptr_t starts, std::uintptr_t lengths, int64_t N,
         std::uintptr_t out, int num_threads) {
        const auto p = make_problem(q, 3, B, Lq, dim, q_mask, values, 3, T, starts, lengths, N);
        py::gil_scoped_release release;
        maxsim::hamming_scores(p, ptr<float>(out), num_threads);
      });
  m.def(
      "maxsim_hamming_topk",
      [](std::uintptr_t q, int64_t B, int64_t Lq, int64_t dim, std::uintptr_t q_mask,
         std::uintptr_t values, int64_t T, std::uintptr_t starts, std::uintptr_t lengths, int64_t N,
         int64_t k, std::uintptr_t out_scores, std::uintptr_t out_indices, int num_threads) {
        const auto p = make_problem(q, 3, B, Lq, dim, q_mask, values, 3, T, starts, lengths, N);
        py::gil_scoped_release release;
        maxsim::hamming_topk(p, k, ptr<float>(out_scores), ptr<int64_t>(out_indices), num_threads);
      });
  m.def(
      "pack_bits",
      [](std::uintptr_t x, int dtype, int64_t rows, int64_t D, std::uintptr_t out, int num_threads) {
        const DType t = to_dtype(dtype);
        py::gil_scoped_release release;
        bits::pack_bits(ptr<const void>(x), t, rows, D, ptr<uint8_t>(out), num_threads);
      });
}
