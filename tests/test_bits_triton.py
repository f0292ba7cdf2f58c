"""The Triton binary-quantisation kernels (pack_bits, float x bits MaxSim, hamming MaxSim), run on
CPU tensors by the Triton interpreter against the pure-torch references of colkern/ops/bits.py and
numpy.packbits; and an ahead-of-time compile for sm_80 / sm_90 that catches lowering errors the
interpreter cannot see.

The interpreter cannot show one GPU-only hazard: numpy's max propagates NaN, while a compiled
tl.max may drop it. The kernel tracks NaN explicitly for that reason; only a GPU run tests it.
"""
import os

# Must precede the kernel module's import: @triton.jit reads it when the kernel is defined.
os.environ["TRITON_INTERPRET"] = "1"


import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from triton_support import aot_compile, load_interpreted, packed  # noqa: E402

from colkern.ops.bits import maxsim_bits_ref, maxsim_hamming_ref, n_bytes, pack_bits_ref  # noqa: E402

pytest.importorskip("triton")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
MODES = ["pm1", "01"]
# Error allowed, relative to the score scale (1 + max |reference score|), for every Q dtype: the
# reference sees the same (already rounded) queries, and q x {+-1, 0, 1} products are exact in
# fp32, so only the fp32 accumulation order differs from the fp64 reference.
RTOL = 1e-5
DOC_LENGTHS = [0, 1, 3, 17, 97, 0, 64]  # 97: two document blocks of 64 rows; 0: empty documents


# maxsim_bits runs the MaxSim kernel of kernels/maxsim.py (BITS=True).
K_MAXSIM = load_interpreted("maxsim", "_maxsim_fwd_kernel")
K_PACK = load_interpreted("pack_bits", "_pack_bits_kernel")
K_HAMMING = load_interpreted("hamming", "_maxsim_hamming_kernel")




def bit_docs(lengths, D, seed):
    g = torch.Generator().manual_seed(seed)
    return [pack_bits_ref(torch.randn(L, D, generator=g)) for L in lengths]


def float_queries(B, Lq, D, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, Lq, D, generator=g).to(dtype)


def bits_scores(Q, docs, dim, mode, q_mask=None):
    values, starts, lengths = packed(docs)
    out = K_MAXSIM.maxsim_bits_triton(Q.contiguous(), q_mask, values, starts, lengths, dim, mode)
    assert out.dtype == torch.float32 and out.shape == (Q.shape[0], len(docs))
    return out


def hamming_scores(Q_bits, docs, dim, q_mask=None):
    values, starts, lengths = packed(docs)
    out = K_HAMMING.maxsim_hamming_triton(Q_bits.contiguous(), q_mask, values, starts, lengths, dim)
    assert out.dtype == torch.float32 and out.shape == (Q_bits.shape[0], len(docs))
    return out


def assert_close(got, ref):
    assert got.shape == ref.shape
    ref = ref.double()
    nonfin = ~torch.isfinite(ref)
    # NaN where the reference has NaN, the same infinity where it has one.
    assert torch.equal(got[nonfin].double().nan_to_num(0), ref[nonfin].nan_to_num(0)), f"{got}\n{ref}"
    assert torch.equal(torch.isnan(got), torch.isnan(ref)), f"NaN pattern differs:\n{got}\n{ref}"
    fin = ~nonfin
    if fin.any():
        scale = 1 + ref[fin].abs().max()
        err = (got[fin].double() - ref[fin]).abs().max()
        assert err <= RTOL * scale, f"max error {err:.3g} > {RTOL * scale:.3g}"


# ---------------------------------------------------------------------------------------------
# pack_bits


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("D", [1, 7, 8, 9, 96, 128, 130, 600])  # 600: two byte blocks per row
def test_pack_bits_matches_numpy_packbits(dtype, D):
    g = torch.Generator().manual_seed(D)
    R = 1100 if D == 1 else 70  # D = 1: 512 rows per program, so several row blocks
    x = torch.randn(R, D, generator=g).to(dtype)
    x[0] = 0.0
    x[1] = -0.0  # -0.0 > 0 is false: bit 0, like +0
    x[2, :] = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e-30, -1e-30] * D)[:D].to(dtype)
    got = K_PACK.pack_bits_triton(x.contiguous())
    want = torch.from_numpy(np.packbits((x > 0).numpy(), axis=-1))
    assert got.dtype == torch.uint8 and got.shape == (R, n_bytes(D))
    assert torch.equal(got, want)
    assert torch.equal(got, pack_bits_ref(x))
    assert bool((got[:2] == 0).all())


def test_pack_bits_empty_does_not_launch(monkeypatch):
    class NoLaunch:
        def __getitem__(self, grid):
            raise AssertionError("launched an empty grid")

    monkeypatch.setattr(K_PACK, "_pack_bits_kernel", NoLaunch())
    out = K_PACK.pack_bits_triton(torch.randn(0, 9))
    assert out.shape == (0, 2) and out.dtype == torch.uint8


# ---------------------------------------------------------------------------------------------
# float x bits MaxSim


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("Lq,D", [(1, 8), (3, 9), (17, 96), (33, 128), (1, 130), (17, 130)])
def test_maxsim_bits_matches_reference(dtype, mode, Lq, D):
    Q = float_queries(2, Lq, D, dtype, seed=Lq * 1000 + D)
    docs = bit_docs(DOC_LENGTHS, D, seed=D)
    got = bits_scores(Q, docs, D, mode)
    assert_close(got, maxsim_bits_ref(Q, docs, dim=D, mode=mode))
    empty = torch.tensor([L == 0 for L in DOC_LENGTHS])
    assert bool((got[:, empty] == 0).all()), "empty documents must score exactly 0"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("Lq,D", [(3, 9), (17, 130), (70, 32)])  # 70: two query blocks of 64
def test_maxsim_bits_query_mask(dtype, Lq, D):
    Q = float_queries(3, Lq, D, dtype, seed=7)
    docs = bit_docs(DOC_LENGTHS, D, seed=8)
    g = torch.Generator().manual_seed(3)
    q_mask = torch.rand(3, Lq, generator=g) < 0.6
    q_mask[1] = False  # a query with no valid token scores 0 everywhere
    q_mask[2] = True
    for mode in MODES:
        got = bits_scores(Q, docs, D, mode, q_mask)
        assert_close(got, maxsim_bits_ref(Q, docs, dim=D, mode=mode, q_mask=q_mask))
        assert bool((got[1] == 0).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("D", [9, 128])
def test_pm1_is_twice_01_minus_sum_for_one_token(dtype, D):
    # Per token, q . (2b - 1) = 2 (q . b) - sum(q), and the max commutes with that affine map:
    # with one query token the two modes score every non-empty document consistently.
    Q = float_queries(3, 1, D, dtype, seed=D)
    lens = [L for L in DOC_LENGTHS if L]  # an empty document scores 0 in both modes
    docs = bit_docs(lens, D, seed=D + 1)
    pm1 = bits_scores(Q, docs, D, "pm1").double()
    zo = bits_scores(Q, docs, D, "01").double()
    qsum = Q.double().sum(-1)  # [3, 1]
    assert_close(pm1, 2 * zo - qsum)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_negative_documents_pad_with_minus_inf(dtype):
    # Positive queries against all-zero bits: every pm1 product is negative, and padding rows
    # past a document's end must not contribute a larger max. In "01" mode every score is 0.
    g = torch.Generator().manual_seed(5)
    Q = (torch.rand(2, 5, 16, generator=g) + 0.1).to(dtype)
    docs = [torch.zeros(L, 2, dtype=torch.uint8) for L in (1, 3, 63, 65, 97)]
    got = bits_scores(Q, docs, 16, "pm1")
    assert bool((got < 0).all())
    assert_close(got, maxsim_bits_ref(Q, docs, dim=16))
    assert torch.equal(bits_scores(Q, docs, 16, "01"), torch.zeros(2, 5))


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning")  # numpy's max
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_propagates_and_masked_nan_does_not(dtype):
    Q = float_queries(3, 3, 24, dtype, seed=11)
    docs = bit_docs([5, 70, 0], 24, seed=12)
    Q[0, 1, 3] = float("nan")
    Q[1, 2, 5] = float("nan")  # ...in a token that the mask removes
    q_mask = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])
    for mode in MODES:
        got = bits_scores(Q, docs, 24, mode, q_mask)
        assert bool(torch.isnan(got[0, :2]).all())
        assert got[0, 2] == 0  # the empty document still scores 0
        assert not bool(torch.isnan(got[1:]).any())
        assert_close(got, maxsim_bits_ref(Q, docs, dim=24, mode=mode, q_mask=q_mask))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy's inf * 0
def test_infinite_query_ignores_padding_rows_and_dims():
    # inf times the expanded padding rows would give inf / NaN; those rows must not count. D = 9
    # also has 7 padding dims per byte pair, where the query is 0.
    Q = float_queries(1, 2, 9, torch.float32, seed=2)
    Q[0, 0, 4] = float("inf")
    docs = bit_docs([3, 17], 9, seed=3)
    got = bits_scores(Q, docs, 9, "pm1")
    ref = maxsim_bits_ref(Q, docs, dim=9)
    assert not bool(torch.isnan(ref).any())
    assert_close(got, ref)


def test_maxsim_bits_empty_batch_corpus_and_bad_mode():
    values, starts, lengths = packed(bit_docs([3], 8, seed=0))
    out = K_MAXSIM.maxsim_bits_triton(torch.randn(0, 4, 8), None, values, starts, lengths, 8, "pm1")
    assert out.shape == (0, 1) and out.dtype == torch.float32
    none = torch.zeros(0, dtype=torch.int64)
    out = K_MAXSIM.maxsim_bits_triton(torch.randn(2, 4, 8), None, values, none, none, 8, "01")
    assert out.shape == (2, 0) and out.dtype == torch.float32
    zeros = torch.zeros(2, dtype=torch.int64)
    out = K_MAXSIM.maxsim_bits_triton(torch.randn(2, 4, 8), None, torch.zeros(0, 1, dtype=torch.uint8),
                                      zeros, zeros, 8, "pm1")
    assert torch.equal(out, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="mode"):
        K_MAXSIM.maxsim_bits_triton(torch.randn(2, 4, 8), None, values, starts, lengths, 8, "sign")


def test_maxsim_bits_subrange_of_corpus():
    Q = float_queries(2, 4, 32, torch.float16, seed=4)
    docs = bit_docs([3, 5, 17, 2, 9], 32, seed=4)
    values, starts, lengths = packed(docs)
    got = K_MAXSIM.maxsim_bits_triton(Q, None, values, starts[2:4], lengths[2:4], 32, "pm1")
    assert_close(got, maxsim_bits_ref(Q, docs[2:4], dim=32))


# ---------------------------------------------------------------------------------------------
# hamming MaxSim: exact integers, so compared with torch.equal.


@pytest.mark.parametrize("D", [1, 7, 8, 9, 96, 128, 130])
def test_hamming_matches_reference_exactly(D):
    g = torch.Generator().manual_seed(D)
    docs = bit_docs(DOC_LENGTHS, D, seed=D + 1)
    Q_bits = pack_bits_ref(torch.randn(2, 3, D, generator=g))
    got = hamming_scores(Q_bits, docs, D)
    assert torch.equal(got, maxsim_hamming_ref(Q_bits, docs, dim=D))
    assert bool((got[:, torch.tensor(DOC_LENGTHS) == 0] == 0).all())
    # Masked, and 33 tokens: two query blocks of 32.
    Q_bits = pack_bits_ref(torch.randn(2, 33, D, generator=g))
    q_mask = torch.rand(2, 33, generator=g) < 0.5
    q_mask[1] = False
    got = hamming_scores(Q_bits, docs, D, q_mask)
    assert torch.equal(got, maxsim_hamming_ref(Q_bits, docs, dim=D, q_mask=q_mask))
    assert bool((got[1] == 0).all())


@pytest.mark.parametrize("D", [1024, 2000])  # several word chunks: word loads, then byte loads
def test_hamming_wide_vectors(D):
    g = torch.Generator().manual_seed(D)
    docs = bit_docs([2, 0, 40], D, seed=1)
    Q_bits = pack_bits_ref(torch.randn(2, 5, D, generator=g))
    assert K_HAMMING._hamming_config(5, D, True)["ONE_W_CHUNK"] is False
    assert torch.equal(hamming_scores(Q_bits, docs, D), maxsim_hamming_ref(Q_bits, docs, dim=D))


def test_hamming_extremes():
    # Identical vectors give +dim per token, complements -dim; all bits set uses the sign bit of
    # the top byte of every word.
    D = 130
    ones = pack_bits_ref(torch.ones(1, D))
    zeros = torch.zeros(1, n_bytes(D), dtype=torch.uint8)
    Q_bits = torch.stack([ones.expand(4, -1), zeros.expand(4, -1)]).contiguous()  # [2, 4, 17]
    got = hamming_scores(Q_bits, [ones, zeros, torch.cat([zeros, ones])], D)
    assert torch.equal(got, torch.tensor([[4.0 * D, -4.0 * D, 4.0 * D], [-4.0 * D, 4.0 * D, 4.0 * D]]))


def test_hamming_byte_loads_when_words_are_misaligned():
    # nbytes % 4 == 0 takes int32 word loads; a storage offset that is not 4-byte aligned falls
    # back to assembling words from bytes, with the same result.
    D = 128
    docs = bit_docs([4, 0, 70], D, seed=6)
    values, starts, lengths = packed(docs)
    Q_bits = pack_bits_ref(torch.randn(2, 6, D, generator=torch.Generator().manual_seed(6)))
    assert K_HAMMING._as_words(values) is not None
    shifted = torch.empty(values.numel() + 1, dtype=torch.uint8)[1:].view(values.shape)
    shifted.copy_(values)
    assert shifted.is_contiguous() and K_HAMMING._as_words(shifted) is None
    a = K_HAMMING.maxsim_hamming_triton(Q_bits, None, values, starts, lengths, D)
    b = K_HAMMING.maxsim_hamming_triton(Q_bits, None, shifted, starts, lengths, D)
    assert torch.equal(a, b)
    assert torch.equal(a, maxsim_hamming_ref(Q_bits, docs, dim=D))


def test_hamming_empty_inputs_do_not_launch(monkeypatch):
    class NoLaunch:
        def __getitem__(self, grid):
            raise AssertionError("launched an empty grid")

    monkeypatch.setattr(K_HAMMING, "_maxsim_hamming_kernel", NoLaunch())
    monkeypatch.setattr(K_MAXSIM, "_maxsim_fwd_kernel", NoLaunch())
    values, starts, lengths = packed(bit_docs([3], 16, seed=0))
    none = torch.zeros(0, dtype=torch.int64)
    Q_bits = torch.zeros(2, 4, 2, dtype=torch.uint8)
    assert K_HAMMING.maxsim_hamming_triton(Q_bits[:0], None, values, starts, lengths, 16).shape == (0, 1)
    assert K_HAMMING.maxsim_hamming_triton(Q_bits, None, values, none, none, 16).shape == (2, 0)
    assert K_MAXSIM.maxsim_bits_triton(torch.randn(2, 4, 16), None, values, none, none, 16, "pm1").shape == (2, 0)


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation for real GPUs: the interpreter runs the kernels as numpy and cannot
# see lowering errors (layouts, dot shapes and dtypes, register or shared-memory limits).


def test_aot_compile_sm80_sm90(tmp_path):
    # A copy of the MaxSim module with a deliberate error in its bits path (the expanded bits
    # left as int32 for tl.dot): aot_compile_all must raise, not skip the variant.
    import colkern.triton_kernels.maxsim as maxsim_module

    src = open(maxsim_module.__file__).read()
    bad = src.replace("UPCAST).to(q_tile.dtype)", "UPCAST)", 1)
    assert bad != src
    # The copy is imported as a top-level module: package-relative imports must be absolute.
    (tmp_path / "maxsim_broken.py").write_text(bad.replace("from ._", "from colkern.triton_kernels._"))
    bad_code = ("import sys; sys.path.insert(0, sys.argv[2]); import maxsim_broken\n"
                "try:\n    maxsim_broken.aot_compile_all(int(sys.argv[1]))\n"
                "except Exception as e:\n    print('RAISED', type(e).__name__, str(e)[-300:])\n"
                "else:\n    print('NO ERROR')")
    outs = aot_compile(tmp_path, ["pack_bits", "maxsim", "hamming"],
                       extra={"broken": [bad_code, "80", str(tmp_path)]})
    for arch in ("sm_80", "sm_90"):
        out = outs[arch]
        assert out.count("_pack_bits_kernel") == 3, out
        assert out.count("_maxsim_fwd_kernel (bits)") == 6, out
        assert out.count("_maxsim_hamming_kernel") == 4, out
        for dtype in ("fp32", "fp16", "bf16"):
            for mode in MODES:
                assert f"_maxsim_fwd_kernel (bits) {arch} {dtype} {mode}" in out, (dtype, mode)
    assert "RAISED CompilationError" in outs["broken"], outs["broken"]
