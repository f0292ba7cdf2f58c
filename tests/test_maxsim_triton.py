"""The Triton MaxSim kernel, run on CPU tensors by the Triton interpreter, against the pure-torch
reference and the CPU op; the chunked GPU top-k; and an ahead-of-time compile for sm_80 / sm_90
that catches lowering errors the interpreter cannot see.
"""
import os

# Must precede the kernel module's import: @triton.jit reads it when the kernel is defined.
os.environ["TRITON_INTERPRET"] = "1"


import pytest  # noqa: E402
import torch  # noqa: E402
from triton_support import aot_compile, load_interpreted, packed  # noqa: E402

import colkern  # noqa: E402
from colkern.ops._topk import chunked_topk  # noqa: E402
from colkern.ops.maxsim import maxsim_ref  # noqa: E402

pytest.importorskip("triton")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Error allowed, relative to the score scale (1 + max |reference score|). fp16/bf16 inputs are
# rounded before the reference sees them, so only fp32 accumulation order differs; the looser
# bound covers the fp32 sums of larger bf16/fp16 magnitudes with margin.
RTOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-3}


K = load_interpreted("maxsim", "_maxsim_fwd_kernel")




def make(B, Lq, lengths, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = torch.randn(B, Lq, D, generator=g).to(dtype)
    docs = [torch.randn(L, D, generator=g).to(dtype) for L in lengths]
    return Q, docs


def triton_scores(Q, docs, q_mask=None):
    values, starts, lengths = packed(docs)
    out = K.maxsim_triton(Q.contiguous(), q_mask, values, starts, lengths)
    assert out.dtype == torch.float32 and out.shape == (Q.shape[0], len(docs))
    return out


def assert_close(got, ref, dtype):
    assert got.shape == ref.shape
    nan = torch.isnan(ref)
    assert torch.equal(torch.isnan(got), nan), f"NaN pattern differs:\n{got}\n{ref}"
    fin = ~nan
    if fin.any():
        scale = 1 + ref[fin].abs().max()
        err = (got[fin].double() - ref[fin].double()).abs().max()
        assert err <= RTOL[dtype] * scale, f"max error {err:.3g} > {RTOL[dtype] * scale:.3g}"


DOC_LENGTHS = [0, 1, 3, 17, 97, 0, 64]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("D", [8, 96, 128, 130])
@pytest.mark.parametrize("Lq", [1, 3, 17, 33])
def test_matches_reference_and_cpu_op(dtype, D, Lq):
    Q, docs = make(2, Lq, DOC_LENGTHS, D, dtype, seed=Lq * 1000 + D)
    got = triton_scores(Q, docs)
    assert_close(got, maxsim_ref(Q, docs), dtype)
    assert_close(got, colkern.maxsim(Q, docs), dtype)
    empty = torch.tensor([L == 0 for L in DOC_LENGTHS])
    assert bool((got[:, empty] == 0).all()), "empty documents must score exactly 0"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("Lq,D", [(3, 8), (17, 130), (70, 32)])  # 70: several query blocks
def test_query_mask(dtype, Lq, D):
    Q, docs = make(3, Lq, DOC_LENGTHS, D, dtype, seed=7)
    g = torch.Generator().manual_seed(3)
    q_mask = torch.rand(3, Lq, generator=g) < 0.6
    q_mask[1] = False  # a query with no valid token scores 0 everywhere
    q_mask[2] = True
    got = triton_scores(Q, docs, q_mask)
    assert_close(got, maxsim_ref(Q, docs, q_mask=q_mask), dtype)
    assert_close(got, colkern.maxsim(Q, docs, q_mask=q_mask), dtype)
    assert bool((got[1] == 0).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_negative_documents_pad_with_minus_inf(dtype):
    # All products negative: padding rows past a document's end must not contribute a 0 max.
    g = torch.Generator().manual_seed(5)
    Q = torch.rand(2, 5, 16, generator=g).to(dtype)
    docs = [-torch.rand(L, 16, generator=g).to(dtype) - 0.1 for L in (1, 3, 63, 65, 97)]
    got = triton_scores(Q, docs)
    assert bool((got < 0).all())
    assert_close(got, maxsim_ref(Q, docs), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_propagates_and_masked_nan_does_not(dtype):
    Q, docs = make(2, 3, [5, 70, 4, 0], 24, dtype, seed=11)
    docs[1][66, 2] = float("nan")  # in the second document block
    docs[2][0, 0] = float("nan")
    Q[1, 2, 5] = float("nan")  # ...in a token that the mask removes
    q_mask = torch.tensor([[True, True, True], [True, True, False]])
    got = triton_scores(Q, docs, q_mask)
    ref = maxsim_ref(Q, docs, q_mask=q_mask)
    assert bool(torch.isnan(got[:, 1:3]).all())
    assert not bool(torch.isnan(got[:, [0, 3]]).any())
    assert got[0, 3] == 0 and got[1, 3] == 0
    assert_close(got, ref, dtype)
    assert_close(got, colkern.maxsim(Q, docs, q_mask=q_mask), dtype)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy's inf * 0
def test_infinite_query_ignores_padding_rows():
    # inf * 0 on the zero-filled padding rows would be NaN; those rows must not count.
    Q, docs = make(1, 1, [3, 17], 16, torch.float32, seed=2)
    Q[0, 0, 4] = float("inf")
    got = triton_scores(Q, docs)
    ref = maxsim_ref(Q, docs)
    assert not bool(torch.isnan(ref).any())
    assert torch.equal(got, ref)


def test_empty_batch_and_corpus():
    values, starts, lengths = packed([torch.randn(3, 8)])
    out = K.maxsim_triton(torch.randn(0, 4, 8), None, values, starts, lengths)
    assert out.shape == (0, 1) and out.dtype == torch.float32
    none = torch.zeros(0, dtype=torch.int64)
    out = K.maxsim_triton(torch.randn(2, 4, 8), None, values, none, none)
    assert out.shape == (2, 0) and out.dtype == torch.float32
    out = K.maxsim_triton(torch.randn(2, 4, 8), None, torch.randn(0, 8), *([torch.zeros(2, dtype=torch.int64)] * 2))
    assert torch.equal(out, torch.zeros(2, 2))


def test_subrange_of_corpus():
    # The GPU top-k scores slices starts[lo:hi] of one packed corpus: starts need not begin at 0.
    Q, docs = make(2, 4, [3, 5, 17, 2, 9], 32, torch.float32, seed=4)
    values, starts, lengths = packed(docs)
    got = K.maxsim_triton(Q, None, values, starts[2:4], lengths[2:4])
    assert_close(got, maxsim_ref(Q, docs[2:4]), torch.float32)


# ---------------------------------------------------------------------------------------------
# chunked_topk (the CUDA maxsim_topk's selection), checked on CPU score matrices.


def _stable_topk(scores, k):
    # Reference order: NaN first, then higher score, then lower index.
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), order


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
@pytest.mark.parametrize("k", [1, 4, 25, 40])
def test_chunked_topk_matches_topk(chunk, k):
    g = torch.Generator().manual_seed(chunk * 100 + k)
    # Few distinct values: many ties, across and within chunks.
    scores = torch.randint(0, 6, (3, 25), generator=g).float()
    scores[1, 4] = float("nan")
    s, i = chunked_topk(lambda lo, hi: scores[:, lo:hi], scores.shape[1], k, chunk=chunk)
    keep = min(k, scores.shape[1])
    assert s.shape == i.shape == (3, keep) and i.dtype == torch.int64
    ref_s, ref_i = _stable_topk(scores, k)
    assert torch.equal(i, ref_i)
    assert torch.allclose(s, ref_s, rtol=0, atol=0, equal_nan=True)
    # Same values as torch.topk (whose order among ties is unspecified).
    tv, _ = torch.topk(scores, keep, dim=1)
    assert torch.allclose(s, tv, rtol=0, atol=0, equal_nan=True)


def test_chunked_topk_with_triton_scores_matches_cpu_topk():
    Q, docs = make(2, 5, [4, 0, 17, 3, 65, 1, 9, 2], 16, torch.float16, seed=9)
    docs.append(docs[2].clone())  # an exact tie with document 2: the lower index wins
    values, starts, lengths = packed(docs)
    s, i = chunked_topk(lambda lo, hi: K.maxsim_triton(Q, None, values, starts[lo:hi], lengths[lo:hi]),
                        len(docs), 4, chunk=3)
    cs, ci = colkern.maxsim_topk(Q, docs, 4)
    assert torch.equal(i, ci)
    assert_close(s, cs, torch.float16)


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation for real GPUs: the interpreter runs the kernel as numpy and cannot
# see lowering errors (layouts, dot shapes, register or shared-memory limits).


def test_aot_compile_sm80_sm90(tmp_path):
    aot_compile(tmp_path, "maxsim")
