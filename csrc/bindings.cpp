// pybind11 entry points, one per op and entry (scores / top-k). Tensors arrive from
// python/colkern/ops/ as raw addresses (the `*_ptr` keywords; 0 = absent) after the Python side
// has checked dtypes, devices, shapes and contiguity with messages that name the argument. Every
// argument is keyword-only, and element types and bit modes are enums exported from here, so a
// caller can neither shift an argument into the wrong slot nor pass a bare code. The kernels
// re-validate codes, sizes and every document range (memory safety does not depend on Python)
// and run with the GIL released.
#include <pybind11/native_enum.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "colkern/cpu_features.h"
#include "colkern/dtype.h"
#include "cpu/hamming/hamming.h"
#include "cpu/maxsim/maxsim.h"
#include "cpu/maxsim_backward/maxsim_backward.h"
#ifdef COLKERN_HAVE_AMX_BF16
#include "cpu/maxsim/maxsim_avx512_amx.h"
#endif
#include "cpu/maxsim_bits/maxsim_bits.h"
#include "cpu/pack_bits/pack_bits.h"
#include "cpu/patch_pool/patch_pool.h"
#include "cpu/peak/peak.h"

namespace py = pybind11;
using namespace colkern;
using Address = std::uintptr_t;

namespace {

template <class T>
T* ptr(Address address) {
  return reinterpret_cast<T*>(address);
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
  // How the SIMD MaxSim kernels widen bf16 documents (bf16_widen_in_registers()).
  d["bf16_widen"] = bf16_widen_in_registers() ? "registers" : "buffer";
  return d;
}

maxsim::Problem maxsim_problem(Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D,
                               Address q_mask_ptr, Address values_ptr, DType values_dtype, int64_t T,
                               Address starts_ptr, Address lengths_ptr, int64_t N) {
  maxsim::Problem p;
  p.q = ptr<const void>(q_ptr);
  p.q_dtype = q_dtype;
  p.B = B;
  p.Lq = Lq;
  p.D = D;
  p.q_mask = ptr<const uint8_t>(q_mask_ptr);
  p.values = ptr<const void>(values_ptr);
  p.v_dtype = values_dtype;
  p.T = T;
  p.starts = ptr<const int64_t>(starts_ptr);
  p.lengths = ptr<const int64_t>(lengths_ptr);
  p.N = N;
  return p;
}

maxsim_bits::Problem maxsim_bits_problem(Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D,
                                         Address q_mask_ptr, Address bits_ptr, BitsMode mode, int64_t T,
                                         Address starts_ptr, Address lengths_ptr, int64_t N) {
  maxsim_bits::Problem p;
  p.q = ptr<const void>(q_ptr);
  p.q_dtype = q_dtype;
  p.B = B;
  p.Lq = Lq;
  p.D = D;
  p.q_mask = ptr<const uint8_t>(q_mask_ptr);
  p.bits = ptr<const uint8_t>(bits_ptr);
  p.mode = mode;
  p.T = T;
  p.starts = ptr<const int64_t>(starts_ptr);
  p.lengths = ptr<const int64_t>(lengths_ptr);
  p.N = N;
  return p;
}

hamming::Problem hamming_problem(Address q_ptr, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
                                 Address bits_ptr, int64_t T, Address starts_ptr, Address lengths_ptr,
                                 int64_t N) {
  hamming::Problem p;
  p.q = ptr<const uint8_t>(q_ptr);
  p.B = B;
  p.Lq = Lq;
  p.D = D;
  p.q_mask = ptr<const uint8_t>(q_mask_ptr);
  p.bits = ptr<const uint8_t>(bits_ptr);
  p.T = T;
  p.starts = ptr<const int64_t>(starts_ptr);
  p.lengths = ptr<const int64_t>(lengths_ptr);
  p.N = N;
  return p;
}

void bind_enums(py::module_& m) {
  // Named as the torch dtypes, so Python maps getattr(torch, name) -> member.
  py::native_enum<DType>(m, "DType", "enum.Enum", "Element type of float inputs.")
      .value("float32", DType::F32)
      .value("float16", DType::F16)
      .value("bfloat16", DType::BF16)
      .finalize();
  py::native_enum<BitsMode>(m, "BitsMode", "enum.Enum", "How a packed sign bit is read.")
      .value("pm1", BitsMode::PM1, "+-1 per dimension")
      .value("zero_one", BitsMode::ZERO_ONE, "{0, 1} per dimension")
      .finalize();
}

void bind_maxsim(py::module_& m) {
  m.def(
      "maxsim_scores",
      [](Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
         Address values_ptr, DType values_dtype, int64_t T, Address starts_ptr, Address lengths_ptr,
         int64_t N, Address out_ptr, int num_threads) {
        const auto p = maxsim_problem(q_ptr, q_dtype, B, Lq, D, q_mask_ptr, values_ptr, values_dtype, T,
                                      starts_ptr, lengths_ptr, N);
        py::gil_scoped_release release;
        maxsim::scores(p, ptr<float>(out_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("q_dtype"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("values_ptr"), py::arg("values_dtype"), py::arg("T"),
      py::arg("starts_ptr"), py::arg("lengths_ptr"), py::arg("N"), py::arg("out_ptr"),
      py::arg("num_threads"), "MaxSim scores [B, N] float32 into out_ptr.");
  m.def(
      "maxsim_topk",
      [](Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
         Address values_ptr, DType values_dtype, int64_t T, Address starts_ptr, Address lengths_ptr,
         int64_t N, int64_t k, Address out_scores_ptr, Address out_indices_ptr, int num_threads) {
        const auto p = maxsim_problem(q_ptr, q_dtype, B, Lq, D, q_mask_ptr, values_ptr, values_dtype, T,
                                      starts_ptr, lengths_ptr, N);
        py::gil_scoped_release release;
        maxsim::topk(p, k, ptr<float>(out_scores_ptr), ptr<int64_t>(out_indices_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("q_dtype"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("values_ptr"), py::arg("values_dtype"), py::arg("T"),
      py::arg("starts_ptr"), py::arg("lengths_ptr"), py::arg("N"), py::arg("k"), py::arg("out_scores_ptr"),
      py::arg("out_indices_ptr"), py::arg("num_threads"),
      "MaxSim top-k: [B, min(k, N)] float32 scores and int64 indices, best first.");
}

void bind_maxsim_backward(py::module_& m) {
  m.def(
      "maxsim_argmax",
      [](Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
         Address values_ptr, DType values_dtype, int64_t T, Address starts_ptr, Address lengths_ptr,
         int64_t N, Address out_ptr, Address argmax_ptr, int num_threads) {
        const auto p = maxsim_problem(q_ptr, q_dtype, B, Lq, D, q_mask_ptr, values_ptr, values_dtype, T,
                                      starts_ptr, lengths_ptr, N);
        py::gil_scoped_release release;
        maxsim_backward::scores_argmax(p, ptr<float>(out_ptr), ptr<int32_t>(argmax_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("q_dtype"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("values_ptr"), py::arg("values_dtype"), py::arg("T"),
      py::arg("starts_ptr"), py::arg("lengths_ptr"), py::arg("N"), py::arg("out_ptr"), py::arg("argmax_ptr"),
      py::arg("num_threads"),
      "MaxSim scores [B, N] float32 into out_ptr and the winning local row [B, Lq, N] int32 into "
      "argmax_ptr (-1: masked token or empty document; ties to the lowest row).");
  m.def(
      "maxsim_backward",
      [](Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
         Address values_ptr, DType values_dtype, int64_t T, Address starts_ptr, Address lengths_ptr,
         int64_t N, Address grad_ptr, Address argmax_ptr, Address dq_ptr, Address dvalues_ptr,
         int num_threads) {
        const auto p = maxsim_problem(q_ptr, q_dtype, B, Lq, D, q_mask_ptr, values_ptr, values_dtype, T,
                                      starts_ptr, lengths_ptr, N);
        py::gil_scoped_release release;
        maxsim_backward::backward(p, ptr<const float>(grad_ptr), ptr<const int32_t>(argmax_ptr),
                                  ptr<float>(dq_ptr), ptr<float>(dvalues_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("q_dtype"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("values_ptr"), py::arg("values_dtype"), py::arg("T"),
      py::arg("starts_ptr"), py::arg("lengths_ptr"), py::arg("N"), py::arg("grad_ptr"), py::arg("argmax_ptr"),
      py::arg("dq_ptr"), py::arg("dvalues_ptr"), py::arg("num_threads"),
      "MaxSim backward: dQ [B, Lq, D] and dvalues [T, D] float32 from grad [B, N] float32 and the "
      "argmax of maxsim_argmax.");
}

void bind_maxsim_bits(py::module_& m) {
  m.def(
      "maxsim_bits_scores",
      [](Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
         Address bits_ptr, BitsMode mode, int64_t T, Address starts_ptr, Address lengths_ptr, int64_t N,
         Address out_ptr, int num_threads) {
        const auto p = maxsim_bits_problem(q_ptr, q_dtype, B, Lq, D, q_mask_ptr, bits_ptr, mode, T,
                                           starts_ptr, lengths_ptr, N);
        py::gil_scoped_release release;
        maxsim_bits::scores(p, ptr<float>(out_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("q_dtype"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("bits_ptr"), py::arg("mode"), py::arg("T"), py::arg("starts_ptr"),
      py::arg("lengths_ptr"), py::arg("N"), py::arg("out_ptr"), py::arg("num_threads"),
      "Float x bits MaxSim scores [B, N] float32 into out_ptr.");
  m.def(
      "maxsim_bits_topk",
      [](Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
         Address bits_ptr, BitsMode mode, int64_t T, Address starts_ptr, Address lengths_ptr, int64_t N,
         int64_t k, Address out_scores_ptr, Address out_indices_ptr, int num_threads) {
        const auto p = maxsim_bits_problem(q_ptr, q_dtype, B, Lq, D, q_mask_ptr, bits_ptr, mode, T,
                                           starts_ptr, lengths_ptr, N);
        py::gil_scoped_release release;
        maxsim_bits::topk(p, k, ptr<float>(out_scores_ptr), ptr<int64_t>(out_indices_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("q_dtype"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("bits_ptr"), py::arg("mode"), py::arg("T"), py::arg("starts_ptr"),
      py::arg("lengths_ptr"), py::arg("N"), py::arg("k"), py::arg("out_scores_ptr"),
      py::arg("out_indices_ptr"), py::arg("num_threads"), "Float x bits MaxSim top-k.");
}

void bind_hamming(py::module_& m) {
  m.def(
      "hamming_scores",
      [](Address q_ptr, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr, Address bits_ptr,
         int64_t T, Address starts_ptr, Address lengths_ptr, int64_t N, Address out_ptr, int num_threads) {
        const auto p = hamming_problem(q_ptr, B, Lq, D, q_mask_ptr, bits_ptr, T, starts_ptr,
                                       lengths_ptr, N);
        py::gil_scoped_release release;
        hamming::scores(p, ptr<float>(out_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("bits_ptr"), py::arg("T"), py::arg("starts_ptr"),
      py::arg("lengths_ptr"), py::arg("N"), py::arg("out_ptr"), py::arg("num_threads"),
      "Hamming MaxSim scores [B, N] float32 into out_ptr.");
  m.def(
      "hamming_topk",
      [](Address q_ptr, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr, Address bits_ptr,
         int64_t T, Address starts_ptr, Address lengths_ptr, int64_t N, int64_t k, Address out_scores_ptr,
         Address out_indices_ptr, int num_threads) {
        const auto p = hamming_problem(q_ptr, B, Lq, D, q_mask_ptr, bits_ptr, T, starts_ptr,
                                       lengths_ptr, N);
        py::gil_scoped_release release;
        hamming::topk(p, k, ptr<float>(out_scores_ptr), ptr<int64_t>(out_indices_ptr), num_threads);
      },
      py::kw_only(), py::arg("q_ptr"), py::arg("B"), py::arg("Lq"), py::arg("D"),
      py::arg("q_mask_ptr"), py::arg("bits_ptr"), py::arg("T"), py::arg("starts_ptr"),
      py::arg("lengths_ptr"), py::arg("N"), py::arg("k"), py::arg("out_scores_ptr"),
      py::arg("out_indices_ptr"), py::arg("num_threads"), "Hamming MaxSim top-k.");
}

void bind_patch_pool(py::module_& m) {
  m.def(
      "patch_pool",
      [](Address values_ptr, DType dtype, int64_t T, int64_t D, Address starts_ptr, Address lengths_ptr,
         int64_t N, Address row_mask_ptr, int64_t correction, Address out_ptr, int num_threads) {
        patch_pool::Problem p;
        p.values = ptr<const void>(values_ptr);
        p.dtype = dtype;
        p.T = T;
        p.D = D;
        p.starts = ptr<const int64_t>(starts_ptr);
        p.lengths = ptr<const int64_t>(lengths_ptr);
        p.N = N;
        p.correction = correction;
        p.row_mask = ptr<const uint8_t>(row_mask_ptr);
        py::gil_scoped_release release;
        patch_pool::pool(p, ptr<float>(out_ptr), num_threads);
      },
      py::kw_only(), py::arg("values_ptr"), py::arg("dtype"), py::arg("T"), py::arg("D"),
      py::arg("starts_ptr"), py::arg("lengths_ptr"), py::arg("N"), py::arg("row_mask_ptr"),
      py::arg("correction"), py::arg("out_ptr"), py::arg("num_threads"),
      "[mean | max | std] per page, [N, 3 * D] float32 into out_ptr.");
}

void bind_pack_bits(py::module_& m) {
  m.def(
      "pack_bits",
      [](Address x_ptr, DType dtype, int64_t rows, int64_t D, Address out_ptr, int num_threads) {
        py::gil_scoped_release release;
        pack_bits::pack(ptr<const void>(x_ptr), dtype, rows, D, ptr<uint8_t>(out_ptr), num_threads);
      },
      py::kw_only(), py::arg("x_ptr"), py::arg("dtype"), py::arg("rows"), py::arg("D"), py::arg("out_ptr"),
      py::arg("num_threads"), "Sign bits of [rows, D] floats, [rows, ceil(D / 8)] uint8 into out_ptr.");
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
  bind_enums(m);
  bind_maxsim(m);
  bind_maxsim_backward(m);
  bind_maxsim_bits(m);
  bind_hamming(m);
  bind_patch_pool(m);
  bind_pack_bits(m);
}
