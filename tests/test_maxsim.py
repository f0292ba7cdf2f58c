"""colkern.maxsim / maxsim_topk (CPU kernels) against the pure-torch reference."""
import os
import subprocess
import sys

import pytest
import torch
from conftest import DTYPES, ISAS, assert_close_to_reference
from hypothesis import given, settings
from hypothesis import strategies as st

import colkern
from colkern.ops.maxsim import maxsim_ref

LENGTHS = [1, 3, 17, 33, 97, 1025]


def make_corpus(lengths, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(L, D, generator=g).to(dtype) for L in lengths]


def make_queries(B, Lq, D, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, Lq, D, generator=g).to(dtype)


def check(Q, docs, dtype, **kw):
    got = colkern.maxsim(Q, docs, **kw)
    ref = maxsim_ref(Q, docs, **kw)
    # The comparator is the fp32 torch computation on the same rounded inputs: the kernel
    # accumulates in fp32 whatever the input dtype, so it must be as accurate as that.
    fp32 = maxsim_ref(Q, docs, dtype=torch.float32, **kw)
    # The floor scales with the size of the terms summed, not with the score: maxima of both
    # signs can cancel to a score far smaller than the dot products behind it.
    magnitude = maxsim_ref(Q.abs(), [d.abs() for d in docs], **kw)
    assert got.dtype == torch.float32
    assert_close_to_reference(got, ref, fp32, dtype, magnitude=magnitude)
    return got


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("D", [8, 96, 128, 130])
@pytest.mark.parametrize("Lq", [1, 3, 17, 33, 97])
def test_matches_reference_awkward_shapes(isa, dtype, D, Lq):
    docs = make_corpus([0] + LENGTHS, D, dtype)
    Q = make_queries(2, Lq, D, dtype)
    got = check(Q, docs, dtype)
    assert torch.equal(got[:, 0], torch.zeros(2)), "an empty document must score 0"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_query_mask(isa, dtype):
    D = 64
    docs = make_corpus([5, 40, 0, 200], D, dtype)
    Q = make_queries(4, 33, D, dtype)
    q_mask = torch.rand(4, 33, generator=torch.Generator().manual_seed(3)) > 0.4
    q_mask[2] = False  # a query with no valid token scores 0 everywhere
    got = check(Q, docs, dtype, q_mask=q_mask)
    assert torch.equal(got[2], torch.zeros(4))
    # Masking must equal dropping the tokens.
    for b in (0, 1, 3):
        alone = colkern.maxsim(Q[b][q_mask[b]], docs)
        torch.testing.assert_close(got[b], alone, rtol=0, atol=0)


def test_single_query_shape_and_single_doc(isa):
    docs = make_corpus([7], 16, torch.float32)
    Q = make_queries(1, 5, 16, torch.float32)[0]
    out = colkern.maxsim(Q, docs)
    assert out.shape == (1,)
    torch.testing.assert_close(out, maxsim_ref(Q, docs))


def test_many_documents(isa):
    g = torch.Generator().manual_seed(5)
    lengths = torch.randint(0, 40, (700,), generator=g).tolist()
    docs = make_corpus(lengths, 24, torch.float32)
    Q = make_queries(3, 9, 24, torch.float32)
    check(Q, docs, torch.float32)


def test_input_forms_agree():
    """List, packed, PackedDocs, padded + lengths, padded + prefix mask, padded + holey mask."""
    D, lengths = 32, [4, 0, 9, 1, 9]
    docs = make_corpus(lengths, D, torch.float32)
    Q = make_queries(2, 6, D, torch.float32)
    expected = colkern.maxsim(Q, docs)
    packed = colkern.pack(docs)
    assert torch.equal(colkern.maxsim(Q, packed), expected)
    assert torch.equal(colkern.maxsim(Q, packed.values, offsets=packed.offsets), expected)
    padded = torch.zeros(len(docs), max(lengths), D)
    for i, d in enumerate(docs):
        padded[i, : len(d)] = d
    lens = torch.tensor(lengths)
    prefix = torch.arange(max(lengths))[None] < lens[:, None]
    assert torch.equal(colkern.maxsim(Q, padded, lengths=lens), expected)
    assert torch.equal(colkern.maxsim(Q, padded, mask=prefix), expected)
    # A mask with holes: move the valid rows of doc 2 apart; same set of rows, same scores.
    holey, hmask = padded.clone(), prefix.clone()
    holey[2, 1:] = padded[2, :-1].clone()
    holey[2, 0] = 1e6  # garbage in a masked row must never be read as a token
    hmask[2] = True
    hmask[2, 0] = False
    expected_holey = colkern.maxsim(Q, [d if i != 2 else padded[2, : lengths[2] - 1] for i, d in enumerate(docs)])
    got = colkern.maxsim(Q, holey, mask=hmask)
    torch.testing.assert_close(got[:, [0, 1, 3, 4]], expected[:, [0, 1, 3, 4]], rtol=0, atol=0)
    torch.testing.assert_close(got[:, 2], expected_holey[:, 2], rtol=0, atol=0)


def test_padding_never_takes_part():
    """Padded rows hold huge values; lengths must keep them out of the max."""
    D = 16
    docs = make_corpus([3, 5], D, torch.float32)
    padded = torch.full((2, 8, D), 1e4)
    for i, d in enumerate(docs):
        padded[i, : len(d)] = d
    Q = make_queries(1, 4, D, torch.float32)
    torch.testing.assert_close(colkern.maxsim(Q, padded, lengths=torch.tensor([3, 5])), colkern.maxsim(Q, docs))


def test_no_documents_and_no_queries():
    empty = colkern.pack([torch.zeros(0, 8)])
    assert colkern.maxsim(torch.randn(2, 3, 8), empty).tolist() == [[0.0], [0.0]]
    values, offsets = torch.zeros(0, 8), torch.zeros(1, dtype=torch.int64)
    assert colkern.maxsim(torch.randn(2, 3, 8), values, offsets=offsets).shape == (2, 0)
    assert colkern.maxsim(torch.randn(0, 3, 8), make_corpus([2, 3], 8, torch.float32)).shape == (0, 2)


def test_nan_stays_in_its_document_and_query(isa):
    D = 16
    docs = make_corpus([5, 30, 7], D, torch.float32)
    docs[1][17, 3] = float("nan")
    Q = make_queries(2, 3, D, torch.float32)
    Q[1, 2, 0] = float("nan")
    got = colkern.maxsim(Q, docs)
    assert torch.isnan(got[0, 1]) and not torch.isnan(got[0, [0, 2]]).any()
    assert torch.isnan(got[1]).all()
    assert torch.equal(torch.isnan(got), torch.isnan(maxsim_ref(Q, docs)))


@pytest.mark.parametrize("D", [32, 128])
def test_bf16_tile_path_nan_ragged_and_topk(isa, D):
    """bf16 with D % 32 == 0 runs on AMX tiles at the avx512 level where the CPU has them
    (colkern.backend_info()["cpu_extensions"]): full 16-row tiles, ragged tails that take the
    vector kernel, 40 tokens = a pair of 16-token blocks plus a single one, NaN inside a tile."""
    docs = make_corpus([16, 40, 1030, 5, 256, 257], D, torch.bfloat16, seed=3)
    docs[2][700, 5] = float("nan")
    Q = make_queries(2, 40, D, torch.bfloat16, seed=4)
    got = colkern.maxsim(Q, docs)
    assert torch.isnan(got[:, 2]).all() and not torch.isnan(got[:, [0, 1, 3, 4, 5]]).any()
    finite = [docs[i] for i in (0, 1, 3, 4, 5)]
    assert torch.equal(check(Q, finite, torch.bfloat16), got[:, [0, 1, 3, 4, 5]])
    scores, idx = colkern.maxsim_topk(Q, docs, 3)
    ref = torch.sort(got.nan_to_num(float("inf")), dim=1, descending=True, stable=True)
    assert torch.equal(idx, ref.indices[:, :3]) and torch.isnan(scores[:, 0]).all()
    assert torch.equal(scores[:, 1:], got.gather(1, idx[:, 1:]))


def test_threads_do_not_change_results():
    docs = make_corpus([30] * 50 + [1025], 128, torch.float32)
    Q = make_queries(2, 32, 128, torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = colkern.maxsim(Q, docs)
        torch.set_num_threads(2)
        two = colkern.maxsim(Q, docs)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


# ---- top-k --------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 10, 1000])
def test_topk_matches_full_scores(isa, k):
    g = torch.Generator().manual_seed(11)
    lengths = torch.randint(0, 60, (300,), generator=g).tolist()
    docs = make_corpus(lengths, 40, torch.float32)
    Q = make_queries(3, 7, 40, torch.float32)
    full = colkern.maxsim(Q, docs)
    scores, idx = colkern.maxsim_topk(Q, docs, k)
    keep = min(k, len(docs))
    assert scores.shape == idx.shape == (3, keep)
    ref = torch.sort(full, dim=1, descending=True, stable=True)
    assert torch.equal(scores, ref.values[:, :keep])
    assert torch.equal(idx, ref.indices[:, :keep])
    assert torch.equal(full.gather(1, idx), scores)


def test_topk_ties_and_nan_order():
    base = make_corpus([4], 8, torch.float32)[0]
    nan_doc = base.clone()
    nan_doc[0, 0] = float("nan")
    docs = [base * 0.5, base, base, nan_doc, base]  # docs 1, 2, 4 tie
    Q = make_queries(1, 3, 8, torch.float32)[0]
    scores, idx = colkern.maxsim_topk(Q, docs, 4)
    assert torch.isnan(scores[0]) and idx[0] == 3, "NaN ranks first, as torch.topk"
    assert idx[1:].tolist() == [1, 2, 4], "ties go to the lower index"


def test_topk_single_query_and_k_validation():
    docs = make_corpus([3, 4], 8, torch.float32)
    s, i = colkern.maxsim_topk(make_queries(1, 2, 8, torch.float32)[0], docs, 5)
    assert s.shape == i.shape == (2,)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be"):
            colkern.maxsim_topk(make_queries(1, 2, 8, torch.float32)[0], docs, bad)


# ---- property tests -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    D=st.integers(1, 40),
    B=st.integers(1, 3),
    Lq=st.integers(1, 20),
    dtype=st.sampled_from(DTYPES),
    isa_name=st.sampled_from(ISAS),
    seed=st.integers(0, 2**16),
    use_mask=st.booleans(),
)
def test_property_random_ragged_corpora(lengths, D, B, Lq, dtype, isa_name, seed, use_mask):
    docs = make_corpus(lengths, D, dtype, seed=seed)
    Q = make_queries(B, Lq, D, dtype, seed=seed + 1)
    q_mask = (torch.rand(B, Lq, generator=torch.Generator().manual_seed(seed)) > 0.3) if use_mask else None
    with colkern.use_isa(isa_name):
        check(Q, docs, dtype, q_mask=q_mask)
        k = max(1, len(lengths) // 2)
        s, i = colkern.maxsim_topk(Q, docs, k, q_mask=q_mask)
        full = colkern.maxsim(Q, docs, q_mask=q_mask)
        assert torch.equal(full.gather(1, i), s)
        assert torch.equal(s, full.sort(dim=1, descending=True).values[:, :k])


# ---- torch.library integration ------------------------------------------------------------


def test_opcheck():
    docs = colkern.pack(make_corpus([3, 0, 9], 16, torch.float32))
    Q = make_queries(2, 4, 16, torch.float32)
    starts, lengths = docs.offsets[:-1].contiguous(), (docs.offsets[1:] - docs.offsets[:-1]).contiguous()
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]])
    for m in (None, mask):
        torch.library.opcheck(torch.ops.colkern.maxsim.default, (Q, m, docs.values, starts, lengths))
        torch.library.opcheck(torch.ops.colkern.maxsim_topk.default, (Q, m, docs.values, starts, lengths, 2))


def test_torch_compile_fullgraph():
    docs = colkern.pack(make_corpus([3, 5, 9], 16, torch.float32))
    Q = make_queries(2, 4, 16, torch.float32)
    starts, lengths = docs.offsets[:-1].contiguous(), (docs.offsets[1:] - docs.offsets[:-1]).contiguous()

    @torch.compile(fullgraph=True, backend="eager")
    def score(q, values, st, ln):
        return torch.ops.colkern.maxsim(q, None, values, st, ln) * 2, torch.ops.colkern.maxsim_topk(q, None, values, st, ln, 2)

    doubled, (s, i) = score(Q, docs.values, starts, lengths)
    torch.testing.assert_close(doubled, 2 * colkern.maxsim(Q, docs))
    assert torch.equal(i, colkern.maxsim_topk(Q, docs, 2)[1])


# ---- bad input ----------------------------------------------------------------------------


def test_bad_input_messages():
    docs = make_corpus([3, 4], 8, torch.float32)
    Q = make_queries(1, 2, 8, torch.float32)
    packed = colkern.pack(docs)
    cases = [
        (lambda: colkern.maxsim(make_queries(1, 2, 9, torch.float32), docs), "docs has dim 8 but Q has dim 9"),
        (lambda: colkern.maxsim(Q.to(torch.int32), docs), "Q must be float32"),
        (lambda: colkern.maxsim(Q, [d.to(torch.float64) for d in docs]), "docs must be float32"),
        (lambda: colkern.maxsim(Q, packed.values, offsets=torch.tensor([0, 5, 3])), "offsets must be non-decreasing"),
        (lambda: colkern.maxsim(Q, packed.values, offsets=torch.tensor([0, 3, 99])), r"offsets must lie in \[0, 7\]"),
        (lambda: colkern.maxsim(Q, packed.values, offsets=torch.tensor([0, 3, 7], dtype=torch.int32)),
         "offsets must be a 1-D int64"),
        (lambda: colkern.maxsim(Q, packed.values), "need offsets"),
        (lambda: colkern.maxsim(Q, docs, q_mask=torch.ones(1, 3, dtype=torch.bool)), "q_mask must be bool"),
        (lambda: colkern.maxsim(Q, docs, q_mask=torch.ones(1, 2)), "q_mask must be bool"),
        (lambda: colkern.maxsim(Q, torch.zeros(2, 4, 8), lengths=torch.tensor([1, 5])), r"lengths must lie in \[0, 4\]"),
        (lambda: colkern.maxsim(Q, torch.zeros(2, 4, 8), mask=torch.ones(2, 3, dtype=torch.bool)), "mask must be bool"),
        (lambda: colkern.maxsim(Q, []), "empty list"),
        (lambda: colkern.maxsim(torch.zeros(8), docs), r"Q must be \[Lq, D\]"),
        (lambda: colkern.maxsim(Q, [docs[0], torch.zeros(2, 9)]), r"docs\[1\] has dim 9"),
        (lambda: colkern.maxsim(Q.to("meta"), docs), "Q is on meta but docs is on cpu"),
        (lambda: colkern.maxsim(Q, packed.values, offsets=packed.offsets.to("meta")), "offsets"),
    ]
    for fn, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            fn()


def test_raw_op_rejects_out_of_range_documents():
    """Calling the op directly with bad ranges must raise, not read out of bounds."""
    values = torch.randn(10, 8)
    Q = make_queries(1, 2, 8, torch.float32)
    for starts, lengths in (([8], [3]), ([-1], [2]), ([0], [-1]), ([2**62], [2**62])):
        with pytest.raises(ValueError, match="outside the 10 rows"):
            torch.ops.colkern.maxsim(Q, None, values, torch.tensor(starts), torch.tensor(lengths))
    with pytest.raises(ValueError, match="same D"):
        torch.ops.colkern.maxsim(Q, None, torch.randn(10, 7), torch.tensor([0]), torch.tensor([1]))


def test_isa_environment_variable():
    env = dict(os.environ, COLKERN_ISA="scalar")
    code = "import colkern; print(colkern.backend_info()['cpu_isa_active'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "scalar"
    env["COLKERN_ISA"] = "avx9000"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown ISA 'avx9000'" in bad.stderr
    with pytest.raises(ValueError, match="unknown ISA"):
        colkern.set_isa("sse9")
