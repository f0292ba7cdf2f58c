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

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "colkern/cpu_features.h"
#include "colkern/dtype.h"
#include "cpu/centroid_scores/centroid_scores.h"
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

// ---- MaxSim-family problems (colkern/problem.h) from keyword arguments --------------------

// The shared part: queries' shape and mask, document ranges.
template <class P>
P query_docs_problem(int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr, int64_t T,
                     Address starts_ptr, Address lengths_ptr, int64_t N) {
  P p;
  p.B = B;
  p.Lq = Lq;
  p.D = D;
  p.q_mask = ptr<const uint8_t>(q_mask_ptr);
  p.T = T;
  p.starts = ptr<const int64_t>(starts_ptr);
  p.lengths = ptr<const int64_t>(lengths_ptr);
  p.N = N;
  return p;
}

// The document matrix of float-query problems and its element code: values and their dtype
// (maxsim, maxsim_backward), or packed bits and how a bit is read (maxsim_bits).
void set_documents(maxsim::Problem& p, Address values_ptr, DType values_dtype) {
  p.values = ptr<const void>(values_ptr);
  p.v_dtype = values_dtype;
}

void set_documents(maxsim_bits::Problem& p, Address bits_ptr, BitsMode mode) {
  p.bits = ptr<const uint8_t>(bits_ptr);
  p.mode = mode;
}

template <class P, class DocsCode>
P float_query_problem(Address q_ptr, DType q_dtype, int64_t B, int64_t Lq, int64_t D,
                      Address q_mask_ptr, Address docs_ptr, DocsCode docs_code, int64_t T,
                      Address starts_ptr, Address lengths_ptr, int64_t N) {
  auto p = query_docs_problem<P>(B, Lq, D, q_mask_ptr, T, starts_ptr, lengths_ptr, N);
  p.q = ptr<const void>(q_ptr);
  p.q_dtype = q_dtype;
  set_documents(p, docs_ptr, docs_code);
  return p;
}

constexpr auto maxsim_problem = float_query_problem<maxsim::Problem, DType>;
constexpr auto maxsim_bits_problem = float_query_problem<maxsim_bits::Problem, BitsMode>;

hamming::Problem hamming_problem(Address q_ptr, int64_t B, int64_t Lq, int64_t D, Address q_mask_ptr,
                                 Address bits_ptr, int64_t T, Address starts_ptr, Address lengths_ptr,
                                 int64_t N) {
  auto p = query_docs_problem<hamming::Problem>(B, Lq, D, q_mask_ptr, T, starts_ptr, lengths_ptr, N);
  p.q = ptr<const uint8_t>(q_ptr);
  p.bits = ptr<const uint8_t>(bits_ptr);
  return p;
}

// The keyword names of each builder's parameters, in order.
constexpr std::array<const char*, 12> kMaxsimArgs{
    "q_ptr", "q_dtype", "B", "Lq", "D", "q_mask_ptr", "values_ptr", "values_dtype", "T",
    "starts_ptr", "lengths_ptr", "N"};
constexpr std::array<const char*, 12> kMaxsimBitsArgs{
    "q_ptr", "q_dtype", "B", "Lq", "D", "q_mask_ptr", "bits_ptr", "mode", "T", "starts_ptr",
    "lengths_ptr", "N"};
constexpr std::array<const char*, 10> kHammingArgs{
    "q_ptr", "B", "Lq", "D", "q_mask_ptr", "bits_ptr", "T", "starts_ptr", "lengths_ptr", "N"};

// ---- Entries over a problem ------------------------------------------------------------

template <class Entry, size_t K, size_t... I, class... Extra>
void def_keyword_only(py::module_& m, const char* name, Entry entry,
                      const std::array<const char*, K>& names, std::index_sequence<I...>,
                      const Extra&... extra) {
  m.def(name, std::move(entry), py::kw_only(), py::arg(names[I])..., extra...);
}

// Binds name(*, <make's parameters, named by names>, <fn's parameters after the problem, named by
// extra's py::args>) and extra's docstring: the problem is built with the GIL held and fn runs
// with it released.
template <class P, class... MakeArgs, size_t K, class... FnArgs, class... Extra>
void def_problem_entry(py::module_& m, const char* name, P (*make)(MakeArgs...),
                       const std::array<const char*, K>& names, void (*fn)(const P&, FnArgs...),
                       const Extra&... extra) {
  static_assert(K == sizeof...(MakeArgs), "one keyword name per problem argument");
  auto entry = [make, fn](MakeArgs... problem_args, FnArgs... fn_args) {
    const P p = make(problem_args...);
    py::gil_scoped_release release;
    fn(p, fn_args...);
  };
  def_keyword_only(m, name, std::move(entry), names, std::make_index_sequence<K>{}, extra...);
}

template <auto scores, class P>
void scores_entry(const P& p, Address out_ptr, int num_threads) {
  scores(p, ptr<float>(out_ptr), num_threads);
}

template <auto topk, class P>
void topk_entry(const P& p, int64_t k, Address out_scores_ptr, Address out_indices_ptr,
                int num_threads) {
  topk(p, k, ptr<float>(out_scores_ptr), ptr<int64_t>(out_indices_ptr), num_threads);
}

// <op>_scores(*, <problem>, out_ptr, num_threads) and
// <op>_topk(*, <problem>, k, out_scores_ptr, out_indices_ptr, num_threads), on op's scores / topk.
template <auto scores, auto topk, class P, class... MakeArgs, size_t K>
void def_scores_topk(py::module_& m, const std::string& op, P (*make)(MakeArgs...),
                     const std::array<const char*, K>& names, const char* scores_doc,
                     const char* topk_doc) {
  def_problem_entry(m, (op + "_scores").c_str(), make, names, &scores_entry<scores, P>,
                    py::arg("out_ptr"), py::arg("num_threads"), scores_doc);
  def_problem_entry(m, (op + "_topk").c_str(), make, names, &topk_entry<topk, P>, py::arg("k"),
                    py::arg("out_scores_ptr"), py::arg("out_indices_ptr"), py::arg("num_threads"),
                    topk_doc);
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
  def_scores_topk<maxsim::scores, maxsim::topk>(
      m, "maxsim", maxsim_problem, kMaxsimArgs, "MaxSim scores [B, N] float32 into out_ptr.",
      "MaxSim top-k: [B, min(k, N)] float32 scores and int64 indices, best first.");
}

void bind_maxsim_backward(py::module_& m) {
  def_problem_entry(
      m, "maxsim_argmax", maxsim_problem, kMaxsimArgs,
      +[](const maxsim::Problem& p, Address out_ptr, Address argmax_ptr, int num_threads) {
        maxsim_backward::scores_argmax(p, ptr<float>(out_ptr), ptr<int32_t>(argmax_ptr), num_threads);
      },
      py::arg("out_ptr"), py::arg("argmax_ptr"), py::arg("num_threads"),
      "MaxSim scores [B, N] float32 into out_ptr and the winning local row [B, Lq, N] int32 into "
      "argmax_ptr (-1: masked token or empty document; ties to the lowest row).");
  def_problem_entry(
      m, "maxsim_backward", maxsim_problem, kMaxsimArgs,
      +[](const maxsim::Problem& p, Address grad_ptr, Address argmax_ptr, Address dq_ptr,
          Address dvalues_ptr, int num_threads) {
        maxsim_backward::backward(p, ptr<const float>(grad_ptr), ptr<const int32_t>(argmax_ptr),
                                  ptr<float>(dq_ptr), ptr<float>(dvalues_ptr), num_threads);
      },
      py::arg("grad_ptr"), py::arg("argmax_ptr"), py::arg("dq_ptr"), py::arg("dvalues_ptr"),
      py::arg("num_threads"),
      "MaxSim backward: dQ [B, Lq, D] and dvalues [T, D] float32 from grad [B, N] float32 and the "
      "argmax of maxsim_argmax.");
}

void bind_maxsim_bits(py::module_& m) {
  def_scores_topk<maxsim_bits::scores, maxsim_bits::topk>(
      m, "maxsim_bits", maxsim_bits_problem, kMaxsimBitsArgs,
      "Float x bits MaxSim scores [B, N] float32 into out_ptr.", "Float x bits MaxSim top-k.");
}

void bind_hamming(py::module_& m) {
  def_scores_topk<hamming::scores, hamming::topk>(
      m, "hamming", hamming_problem, kHammingArgs,
      "Hamming MaxSim scores [B, N] float32 into out_ptr.", "Hamming MaxSim top-k.");
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

void bind_centroid_scores(py::module_& m) {
  m.def(
      "centroid_scores",
      [](Address list_offsets_ptr, int64_t K, Address list_docs_ptr, int64_t P, int64_t n_docs, Address cent_ptr,
         Address delta_ptr, int64_t Lq, int64_t p, Address allowed_ptr, Address out_docs_ptr, Address out_scores_ptr) {
        py::gil_scoped_release release;
        return centroid_scores::score(ptr<const int64_t>(list_offsets_ptr), K, ptr<const int32_t>(list_docs_ptr), P,
                                      n_docs, ptr<const int64_t>(cent_ptr), ptr<const float>(delta_ptr), Lq, p,
                                      ptr<const uint8_t>(allowed_ptr), ptr<int64_t>(out_docs_ptr),
                                      ptr<float>(out_scores_ptr));
      },
      py::kw_only(), py::arg("list_offsets_ptr"), py::arg("K"), py::arg("list_docs_ptr"), py::arg("P"),
      py::arg("n_docs"), py::arg("cent_ptr"), py::arg("delta_ptr"), py::arg("Lq"), py::arg("p"),
      py::arg("allowed_ptr"), py::arg("out_docs_ptr"), py::arg("out_scores_ptr"),
      "Approximate document scores of one shard's probed inverted lists (see centroid_scores.h); "
      "-> the number of documents written.");
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
  bind_centroid_scores(m);
}
