"""pack_bits / unpack_bits, maxsim_bits and maxsim_hamming (CPU kernels) against references."""
import numpy as np
import pytest
import torch
from conftest import DTYPES, ISAS, assert_close_to_reference
from hypothesis import given, settings
from hypothesis import strategies as st

import colkern
from colkern.ops.bits import n_bytes

DIMS = [1, 7, 8, 9, 96, 128, 130]


def rand(shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def bit_corpus(lengths, dim, seed=0):
    return colkern.pack_bits(colkern.pack([rand((L, dim), seed=seed + i) for i, L in enumerate(lengths)]))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pack_bits_matches_numpy_and_round_trips(isa, dim, dtype):
    x = rand((37, dim), dtype, seed=dim)
    x[0, 0], x[1, 0], x[2, 0] = -0.0, 0.0, float("nan")  # none of them is > 0
    bits = colkern.pack_bits(x)
    assert bits.dtype == torch.uint8 and bits.shape == (37, n_bytes(dim))
    expected = np.packbits((x.float() > 0).numpy(), axis=-1)
    assert np.array_equal(bits.numpy(), expected)
    signs = torch.where(x.float() > 0, 1.0, -1.0)
    assert torch.equal(colkern.unpack_bits(bits, dim), signs)
    assert torch.equal(colkern.unpack_bits(bits, dim, mode="01"), (x.float() > 0).float())
    assert torch.equal(colkern.pack_bits(colkern.unpack_bits(bits, dim)), bits)


def test_pack_bits_keeps_corpus_structure():
    docs = [rand((L, 20), seed=L) for L in (3, 0, 5)]
    packed = colkern.pack(docs)
    bits = colkern.pack_bits(packed)
    assert isinstance(bits, colkern.PackedDocs) and torch.equal(bits.offsets, packed.offsets)
    assert [b.shape for b in colkern.pack_bits(docs)] == [(3, 3), (0, 3), (5, 3)]
    padded = torch.zeros(3, 5, 20)
    for i, d in enumerate(docs):
        padded[i, : len(d)] = d
    from_padded = colkern.pack_bits(padded, lengths=torch.tensor([3, 0, 5]))
    assert torch.equal(from_padded.values, bits.values) and torch.equal(from_padded.offsets, bits.offsets)
    assert colkern.pack_bits(rand((2, 4, 20))).shape == (2, 4, 3)


@pytest.mark.parametrize("mode", ["pm1", "01"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dim", [8, 9, 96, 128, 130])
@pytest.mark.parametrize("Lq", [1, 3, 17, 33])
def test_maxsim_bits_matches_reference(isa, mode, dtype, dim, Lq):
    docs = bit_corpus([0, 1, 3, 17, 97], dim)
    Q = rand((2, Lq, dim), dtype, seed=7)
    q_mask = torch.rand(2, Lq, generator=torch.Generator().manual_seed(1)) > 0.3
    got = colkern.maxsim_bits(Q, docs, dim=dim, mode=mode, q_mask=q_mask)
    ref = colkern.maxsim_bits_ref(Q, docs, dim=dim, mode=mode, q_mask=q_mask)
    fp32 = colkern.maxsim_bits_ref(Q, docs, dim=dim, mode=mode, q_mask=q_mask, dtype=torch.float32)
    # Each token's dot with a +-1 vector is a sum of |q_k|-sized terms: sum_i ||q_i||_1 bounds
    # the magnitude of everything the score adds up.
    magnitude = (Q.double().abs().sum(2) * q_mask).sum(1, keepdim=True)
    assert_close_to_reference(got, ref, fp32, dtype, magnitude=magnitude)
    assert torch.equal(got[:, 0], torch.zeros(2))


def test_pm1_is_two_01_minus_sum_per_token(isa):
    dim = 130
    docs = bit_corpus([5, 40, 1], dim, seed=3)
    for t in range(4):
        q = rand((1, dim), seed=10 + t)
        pm1 = colkern.maxsim_bits(q, docs, dim=dim, mode="pm1")
        zero_one = colkern.maxsim_bits(q, docs, dim=dim, mode="01")
        torch.testing.assert_close(pm1, 2 * zero_one - q.sum(), rtol=1e-5, atol=1e-4)


def test_float_x_bits_equals_float_maxsim_on_signs(isa):
    """Scoring bits in pm1 mode is MaxSim against the +-1 unpacked vectors.

    Bits are scored by table lookup (sums of 4-dim partial dot products) and floats by FMA, so
    the fp32 additions run in different orders: queries are multiples of 1/8 in [-1, 1], which
    makes every partial sum exact, and the two paths must then agree bit for bit."""
    dim = 96
    docs = bit_corpus([4, 9, 33], dim, seed=5)
    Q = torch.randint(-8, 9, (2, 6, dim), generator=torch.Generator().manual_seed(6)) / 8
    signs = colkern.PackedDocs(colkern.unpack_bits(docs.values, dim), docs.offsets)
    torch.testing.assert_close(colkern.maxsim_bits(Q, docs, dim=dim), colkern.maxsim(Q, signs), rtol=0, atol=0)


@pytest.mark.parametrize("dim", DIMS + [64, 192, 256, 300])
def test_hamming_exact(isa, dim):
    # 300 rows cross the kernels' 256-row chunk; 9 tokens leave a ragged token block
    docs = bit_corpus([0, 1, 3, 17, 97, 5, 300], dim, seed=dim)
    Q_bits = colkern.pack_bits(rand((3, 9, dim), seed=2))
    q_mask = torch.rand(3, 9, generator=torch.Generator().manual_seed(4)) > 0.3
    q_mask[1] = False
    got = colkern.maxsim_hamming(Q_bits, docs, dim=dim, q_mask=q_mask)
    assert torch.equal(got, colkern.maxsim_hamming_ref(Q_bits, docs, dim=dim, q_mask=q_mask))
    assert torch.equal(got[1], torch.zeros(7)) and torch.equal(got[:, 0], torch.zeros(3))


def test_hamming_is_float_maxsim_of_signs():
    dim = 128
    docs = bit_corpus([7, 30], dim, seed=8)
    Q = rand((1, 5, dim), seed=9)
    qs = colkern.unpack_bits(colkern.pack_bits(Q), dim)
    signs = colkern.PackedDocs(colkern.unpack_bits(docs.values, dim), docs.offsets)
    assert torch.equal(colkern.maxsim_hamming(colkern.pack_bits(Q), docs, dim=dim), colkern.maxsim(qs, signs))


@pytest.mark.parametrize("k", [1, 4, 100])
def test_topk_variants(isa, k):
    dim = 64
    g = torch.Generator().manual_seed(12)
    lengths = torch.randint(0, 30, (60,), generator=g).tolist()
    docs = bit_corpus(lengths, dim, seed=13)
    Q = rand((2, 8, dim), seed=14)
    for mode in ("pm1", "01"):
        full = colkern.maxsim_bits(Q, docs, dim=dim, mode=mode)
        s, i = colkern.maxsim_bits_topk(Q, docs, k, dim=dim, mode=mode)
        ref = torch.sort(full, dim=1, descending=True, stable=True)
        assert torch.equal(s, ref.values[:, :k]) and torch.equal(i, ref.indices[:, :k])
    Qb = colkern.pack_bits(Q)
    full = colkern.maxsim_hamming(Qb, docs, dim=dim)
    s, i = colkern.maxsim_hamming_topk(Qb, docs, k, dim=dim)
    ref = torch.sort(full, dim=1, descending=True, stable=True)  # many integer ties
    assert torch.equal(s, ref.values[:, :k]) and torch.equal(i, ref.indices[:, :k])


@settings(max_examples=50, deadline=None)
@given(lengths=st.lists(st.integers(0, 30), min_size=1, max_size=8), dim=st.integers(1, 140),
       Lq=st.integers(1, 12), isa_name=st.sampled_from(ISAS), seed=st.integers(0, 2**16),
       mode=st.sampled_from(["pm1", "01"]))
def test_property_random_bit_corpora(lengths, dim, Lq, isa_name, seed, mode):
    docs = bit_corpus(lengths, dim, seed=seed)
    Q = rand((2, Lq, dim), seed=seed + 1)
    with colkern.use_isa(isa_name):
        got = colkern.maxsim_bits(Q, docs, dim=dim, mode=mode)
        ref = colkern.maxsim_bits_ref(Q, docs, dim=dim, mode=mode)
        torch.testing.assert_close(got.double(), ref.double(), rtol=1e-5, atol=1e-4)
        Qb = colkern.pack_bits(Q)
        assert torch.equal(colkern.maxsim_hamming(Qb, docs, dim=dim), colkern.maxsim_hamming_ref(Qb, docs, dim=dim))


def test_opcheck_and_compile():
    dim = 20
    docs = bit_corpus([3, 5], dim)
    st_, ln = docs.offsets[:-1].contiguous(), (docs.offsets[1:] - docs.offsets[:-1]).contiguous()
    Q = rand((2, 3, dim), seed=1)
    Qb = colkern.pack_bits(Q)
    torch.library.opcheck(torch.ops.colkern.pack_bits.default, (rand((4, dim)),))
    torch.library.opcheck(torch.ops.colkern.maxsim_bits.default, (Q, None, docs.values, st_, ln, dim, "pm1"))
    torch.library.opcheck(torch.ops.colkern.maxsim_bits_topk.default, (Q, None, docs.values, st_, ln, dim, "01", 1))
    torch.library.opcheck(torch.ops.colkern.maxsim_hamming.default, (Qb, None, docs.values, st_, ln, dim))
    torch.library.opcheck(torch.ops.colkern.maxsim_hamming_topk.default, (Qb, None, docs.values, st_, ln, dim, 2))

    @torch.compile(fullgraph=True, backend="eager")
    def two_stage(q, qb, bits):
        stage1 = torch.ops.colkern.maxsim_hamming(qb, None, bits, st_, ln, dim)
        return stage1, torch.ops.colkern.maxsim_bits(q, None, bits, st_, ln, dim, "pm1")

    h, b = two_stage(Q, Qb, docs.values)
    assert torch.equal(h, colkern.maxsim_hamming(Qb, docs, dim=dim))
    torch.testing.assert_close(b, colkern.maxsim_bits(Q, docs, dim=dim))


def test_bad_input_messages():
    dim = 12
    docs = bit_corpus([2, 3], dim)
    Q = rand((1, 2, dim))
    cases = [
        (lambda: colkern.maxsim_bits(Q, docs, dim=16), r"2 bytes per vector but dim=16 needs ceil\(16/8\) = 2|has dim 12"),
        (lambda: colkern.maxsim_bits(Q, docs, dim=17), r"dim=17 needs ceil\(17/8\) = 3"),
        (lambda: colkern.maxsim_bits(Q, colkern.PackedDocs(docs.values.to(torch.int8), docs.offsets), dim=dim),
         "docs_bits must be uint8"),
        (lambda: colkern.maxsim_bits(Q, docs.values, dim=dim, offsets=torch.tensor([0, 9])), r"offsets must lie in \[0, 5\]"),
        (lambda: colkern.maxsim_bits(Q, docs, dim=dim, mode="pm2"), "mode must be"),
        (lambda: colkern.maxsim_bits(Q.to(torch.int32), docs, dim=dim), "Q must be"),
        (lambda: colkern.maxsim_hamming(Q, docs, dim=dim), "Q_bits must be a uint8"),
        (lambda: colkern.maxsim_hamming(colkern.pack_bits(rand((1, 2, 20))), docs, dim=dim), "Q_bits has 3 bytes"),
        (lambda: colkern.maxsim_hamming_topk(colkern.pack_bits(Q), docs, 0, dim=dim), "k must be"),
        (lambda: colkern.maxsim_bits(Q, docs, dim=0), "dim must be a positive int"),
        (lambda: colkern.pack_bits(torch.zeros(3, 4, dtype=torch.int64)), "pack_bits: x must be"),
        (lambda: colkern.unpack_bits(docs.values, 30), "needs ceil"),
    ]
    for fn, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            fn()
    with pytest.raises(ValueError, match="outside the 5 rows of docs_bits"):
        torch.ops.colkern.maxsim_hamming(colkern.pack_bits(Q), None, docs.values, torch.tensor([4]), torch.tensor([2]), dim)


# ---------------------------------------------------------------------------------------------
# The table-lookup scorer of float x bits (csrc/cpu/maxsim/bits_lut.h): one table entry per
# group of 4 dims, token blocks of 8-16 lanes, 256-row chunks.


@pytest.mark.parametrize("mode", ["pm1", "01"])
@pytest.mark.parametrize("dim", [1, 7, 64, 128])
def test_maxsim_bits_long_docs_and_many_token_blocks(isa, mode, dim):
    # 257 and 600 rows cross the 256-row chunks with odd remainders; 40 tokens fill 2-5 token
    # blocks and leave a ragged last one.
    docs = bit_corpus([257, 600, 2, 0], dim, seed=dim)
    Q = rand((2, 40, dim), seed=3)
    q_mask = torch.rand(2, 40, generator=torch.Generator().manual_seed(5)) > 0.2
    got = colkern.maxsim_bits(Q, docs, dim=dim, mode=mode, q_mask=q_mask)
    ref = colkern.maxsim_bits_ref(Q, docs, dim=dim, mode=mode, q_mask=q_mask)
    fp32 = colkern.maxsim_bits_ref(Q, docs, dim=dim, mode=mode, q_mask=q_mask, dtype=torch.float32)
    magnitude = (Q.double().abs().sum(2) * q_mask).sum(1, keepdim=True)
    assert_close_to_reference(got, ref, fp32, torch.float32, magnitude=magnitude)
    s, i = colkern.maxsim_bits_topk(Q, docs, 2, dim=dim, mode=mode, q_mask=q_mask)
    assert torch.equal(s, got.gather(1, i)) and torch.equal(s, got.sort(1, descending=True).values[:, :2])


@pytest.mark.parametrize("mode", ["pm1", "01"])
@pytest.mark.parametrize("dim", [9, 130])
def test_maxsim_bits_nan_and_inf_queries(isa, mode, dim):
    """A NaN query component makes its token's max, and so the score, NaN (also in 01 mode,
    where NaN * 0 is NaN); an infinite one gives +-inf or NaN exactly as the definition does;
    a masked token is ignored whatever it holds."""
    docs = bit_corpus([3, 0, 20], dim, seed=11)
    Q = rand((4, 3, dim), seed=12)
    Q[0, 1, dim - 1] = float("nan")  # last dim: the table's last, partly padded group
    Q[1, 0, 0] = float("inf")
    Q[2, 2, 4] = float("-inf")
    Q[3, 0, 2] = float("nan")
    q_mask = torch.ones(4, 3, dtype=torch.bool)
    q_mask[3, 0] = False
    got = colkern.maxsim_bits(Q, docs, dim=dim, mode=mode, q_mask=q_mask)
    ref = colkern.maxsim_bits_ref(Q, docs, dim=dim, mode=mode, q_mask=q_mask)
    assert torch.isnan(got[0, [0, 2]]).all() and not torch.isnan(got[3]).any()
    assert torch.equal(got[:, 1], torch.zeros(4))  # the empty document is 0 even for NaN tokens
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize("mode", ["pm1", "01"])
@pytest.mark.parametrize("dim", [1, 7, 9, 130])
def test_maxsim_bits_ignores_padding_bits(isa, mode, dim):
    """Bits past dim in the last byte are not dimensions: set or not, the score is the same
    (the table gives the padding dims q = 0, so a padding bit adds nothing in either mode)."""
    docs = bit_corpus([5, 31], dim, seed=21)
    dirty = docs.values.clone()
    dirty[:, -1] |= (1 << (8 * n_bytes(dim) - dim)) - 1  # all padding bits set
    assert not torch.equal(dirty, docs.values)
    Q = rand((2, 9, dim), seed=22)
    clean = colkern.maxsim_bits(Q, docs, dim=dim, mode=mode)
    assert torch.equal(colkern.maxsim_bits(Q, colkern.PackedDocs(dirty, docs.offsets), dim=dim, mode=mode), clean)
