"""colkern.maxsim's gradient (ops/maxsim_backward.py): the argmax forward and the scatter
backward against fp64 autograd of the reference, every input form, dtype and ISA level; the
tie / NaN / mask rules; opcheck (autograd included), gradcheck, torch.compile; bad input."""
import pytest
import torch
from conftest import DTYPES, ISAS
from hypothesis import given, settings
from hypothesis import strategies as st

import colkern
from colkern.ops.maxsim_backward import argmax_rows_ref, backward_rows_ref

# Gradients come back in the input dtype: the error allowed is that rounding, relative to
# (1 + |reference|), over fp32 accumulation of at most a few hundred terms.
GRAD_RTOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def ref_scores(Q, docs_list, q_mask=None):
    """fp64 autograd reference: [B, N] from Q [B, Lq, D] and a list of [L, D] documents."""
    B, Lq, _ = Q.shape
    valid = q_mask if q_mask is not None else torch.ones(B, Lq, dtype=torch.bool)
    cols = []
    for d in docs_list:
        if d.shape[0] == 0:
            cols.append(torch.zeros(B, dtype=Q.dtype) + 0 * Q.sum() + 0 * d.sum())
        else:
            cols.append(torch.where(valid, (Q @ d.T).amax(2), 0).sum(1))
    return torch.stack(cols, 1)


def leaves(Q, docs, dtype):
    Qk = Q.to(dtype).requires_grad_()
    dk = [d.to(dtype).requires_grad_() for d in docs]
    Q64 = Qk.detach().double().requires_grad_()
    d64 = [d.detach().double().requires_grad_() for d in dk]
    return Qk, dk, Q64, d64


def assert_grad_close(got, ref, dtype, what):
    got, ref = got.double(), ref.double()
    err = (got - ref).abs()
    bound = GRAD_RTOL[dtype] * (1 + ref.abs())
    assert bool((err <= bound).all()), f"{what}: max error {err.max():.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [8, 130])
def test_grad_list_matches_fp64_autograd(isa, dtype, D):
    g = torch.Generator().manual_seed(D)
    Q = torch.randn(3, 17, D, generator=g)
    docs = [torch.randn(L, D, generator=g) for L in (1, 3, 0, 17, 97, 1025)]
    q_mask = torch.rand(3, 17, generator=g) > 0.3
    Qk, dk, Q64, d64 = leaves(Q, docs, dtype)
    w = torch.randn(3, len(docs), generator=g)
    (colkern.maxsim(Qk, dk, q_mask=q_mask) * w).sum().backward()
    (ref_scores(Q64, d64, q_mask) * w.double()).sum().backward()
    assert_grad_close(Qk.grad, Q64.grad, dtype, "dQ")
    for n, (a, b) in enumerate(zip(dk, d64)):
        assert_grad_close(a.grad, b.grad, dtype, f"ddocs[{n}]")
    assert not Qk.grad[~q_mask].any(), "masked query tokens must get zero gradient"
    assert dk[2].grad.shape == (0, D)


@pytest.mark.parametrize("form", ["padded_lengths", "padded_mask_holes", "packed", "single_query"])
@pytest.mark.parametrize("D", [96, 128])
def test_grad_every_input_form(form, D):
    g = torch.Generator().manual_seed(1)
    N, Ld = 4, 33
    Q = torch.randn(2, 7, D, generator=g)
    padded = torch.randn(N, Ld, D, generator=g)
    lengths = torch.tensor([33, 1, 0, 17])
    mask = torch.rand(N, Ld, generator=g) > 0.4
    kept = {"padded_lengths": [padded[n, :lengths[n]] for n in range(N)],
            "padded_mask_holes": [padded[n][mask[n]] for n in range(N)]}
    Qk = Q.clone().requires_grad_()
    dk = padded.clone().requires_grad_()
    if form == "padded_lengths":
        out = colkern.maxsim(Qk, dk, lengths=lengths)
    elif form == "padded_mask_holes":
        out = colkern.maxsim(Qk, dk, mask=mask)
    elif form == "packed":
        offsets = torch.tensor([0, 33, 66, 99, 132])
        out = colkern.maxsim(Qk, dk.view(-1, D), offsets=offsets)
    else:
        out = colkern.maxsim(Qk[0], dk)[None]
    w = torch.randn(out.shape, generator=g)
    (out * w).sum().backward()
    Q64 = Q.double().requires_grad_()
    P64 = padded.double().requires_grad_()
    if form in kept:
        rows = kept[form] if form == "padded_lengths" else None
        docs = rows if rows is not None else [P64[n][mask[n]] for n in range(N)]
        docs = [P64[n, :lengths[n]] for n in range(N)] if form == "padded_lengths" else docs
        Qr = Q64
    else:
        docs = [P64[n] for n in range(N)]
        Qr = Q64[:1] if form == "single_query" else Q64
    (ref_scores(Qr, docs) * w.double()).sum().backward()
    assert_grad_close(Qk.grad, Q64.grad, torch.float32, "dQ")
    assert_grad_close(dk.grad, P64.grad, torch.float32, "ddocs")
    if form == "padded_mask_holes":
        assert not dk.grad[~mask].any(), "masked document rows must get zero gradient"


def test_inference_path_unchanged():
    """Without a gradient to compute, colkern.maxsim runs the plain op (no argmax work)."""
    Q, d = torch.randn(2, 5, 16), torch.randn(3, 9, 16)
    with torch.no_grad():
        a = colkern.maxsim(Q.requires_grad_(), d)
    assert not a.requires_grad
    b = colkern.maxsim(Q.detach(), d)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ties_go_to_the_lowest_row(isa):
    """Duplicated rows tie exactly: the first copy gets the whole gradient."""
    g = torch.Generator().manual_seed(2)
    Q = torch.randn(2, 5, 24, generator=g)
    base = torch.randn(7, 24, generator=g)
    doc = torch.cat([base, base, base[:3]]).requires_grad_()  # rows 7.. duplicate rows 0..
    Qk = Q.clone().requires_grad_()
    colkern.maxsim(Qk, [doc]).sum().backward()
    assert not doc.grad[7:].any(), "a duplicate (later) row received gradient"
    expect = torch.zeros(7, 24, dtype=torch.float64)
    win = (Q.double() @ base.double().T).argmax(2)  # no ties within base
    for b in range(2):
        for i in range(5):
            expect[win[b, i]] += Q[b, i].double()
    torch.testing.assert_close(doc.grad[:7].double(), expect, rtol=1e-5, atol=1e-5)
    _, argmax = torch.ops.colkern.maxsim_argmax(Q, None, doc.detach(), torch.tensor([0]), torch.tensor([17]))
    assert bool((argmax[..., 0] == win).all())


def test_nan_reaches_only_its_row_and_token(isa):
    """The first NaN row of a document wins every token (NaN is sticky); the gradient goes to
    that row only (finite: it is grad x Q), and the tokens' dQ takes the NaN row (as torch's
    matmul backward would). Other documents are untouched."""
    g = torch.Generator().manual_seed(3)
    Q = torch.randn(1, 4, 16, generator=g)
    doc = torch.randn(10, 16, generator=g)
    doc[6, 3] = float("nan")
    doc[8, 0] = float("nan")
    doc.requires_grad_()
    ok = torch.randn(5, 16, generator=g, requires_grad=True)
    Qk = Q.clone().requires_grad_()
    out = colkern.maxsim(Qk, [doc, ok])
    assert torch.isnan(out[0, 0]) and not torch.isnan(out[0, 1])
    _, argmax = torch.ops.colkern.maxsim_argmax(Q, None, doc.detach(), torch.tensor([0]), torch.tensor([10]))
    assert bool((argmax[0, :, 0] == 6).all()), "the first NaN row must win"
    out.sum().backward()
    assert not doc.grad[torch.arange(10) != 6].any() and torch.isfinite(doc.grad[6]).all()
    assert torch.isfinite(ok.grad).all()
    assert torch.isnan(Qk.grad[0, :, 3]).all() and torch.isfinite(Qk.grad[0, :, :3]).all()


def test_empty_documents_and_masked_queries_get_zero_gradient():
    Q = torch.randn(2, 3, 8, requires_grad=True)
    d = torch.randn(4, 8, requires_grad=True)
    out = colkern.maxsim(Q, d, offsets=torch.tensor([0, 0, 4, 4]),
                         q_mask=torch.tensor([[True, False, True], [False, False, False]]))
    assert out[:, 0].eq(0).all() and out[:, 2].eq(0).all() and out[1].eq(0).all()
    out.sum().backward()
    assert not Q.grad[1].any() and not Q.grad[0, 1].any()
    assert Q.grad[0, 0].any()


def test_matches_reference_argmax_and_backward(isa):
    g = torch.Generator().manual_seed(4)
    Q = torch.randn(3, 9, 40, generator=g)
    docs = [torch.randn(L, 40, generator=g) for L in (5, 0, 31)]
    p = colkern.pack(docs)
    starts, lengths = p.offsets[:-1], p.lengths
    qm = torch.rand(3, 9, generator=g) > 0.2
    s, a = torch.ops.colkern.maxsim_argmax(Q, qm, p.values, starts, lengths)
    sr, ar = argmax_rows_ref(Q, qm, p.values, starts, lengths)
    assert torch.equal(a, ar)
    torch.testing.assert_close(s, sr.float(), rtol=1e-5, atol=1e-5)
    grad = torch.randn(3, 3, generator=g)
    dq, dv = torch.ops.colkern.maxsim_backward(grad, Q, qm, p.values, starts, lengths, a)
    dqr, dvr = backward_rows_ref(grad, Q, qm, p.values, starts, lengths, a, torch.float64)
    torch.testing.assert_close(dq.double(), dqr, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dv.double(), dvr, rtol=1e-5, atol=1e-5)


def test_overlapping_ranges_accumulate():
    """A subset that repeats rows (the same document twice): its rows get both gradients."""
    Q = torch.randn(1, 4, 8)
    v = torch.randn(6, 8, requires_grad=True)
    starts, lengths = torch.tensor([0, 2, 0]), torch.tensor([6, 3, 6])
    s, a = torch.ops.colkern.maxsim_argmax(Q, None, v, starts, lengths)
    s.sum().backward()
    v64 = v.detach().double().requires_grad_()
    ref_scores(Q.double(), [v64[0:6], v64[2:5], v64[0:6]]).sum().backward()
    torch.testing.assert_close(v.grad.double(), v64.grad, rtol=1e-5, atol=1e-5)


def _op_args(dtype=torch.float32):
    g = torch.Generator().manual_seed(5)
    Q = torch.randn(2, 5, 12, generator=g).to(dtype)
    p = colkern.pack([torch.randn(L, 12, generator=g).to(dtype) for L in (3, 1, 7)])
    qm = torch.tensor([[True, True, False, True, True], [True] * 5])
    return Q, qm, p.values, p.offsets[:-1].contiguous(), p.lengths.contiguous()


def test_opcheck_including_autograd():
    Q, qm, v, s, l = _op_args()
    torch.library.opcheck(torch.ops.colkern.maxsim_argmax.default,
                          (Q.requires_grad_(), qm, v.requires_grad_(), s, l))
    _, a = torch.ops.colkern.maxsim_argmax(Q.detach(), qm, v.detach(), s, l)
    torch.library.opcheck(torch.ops.colkern.maxsim_backward.default,
                          (torch.randn(2, 3), Q.detach(), qm, v.detach(), s, l, a))


def test_gradcheck_fp64():
    Q, qm, v, s, l = _op_args(torch.float64)
    Q.requires_grad_()
    v.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda q, vv: torch.ops.colkern.maxsim_argmax(q, qm, vv, s, l)[0], (Q, v))


def test_torch_compile_forward_and_backward():
    Q, qm, v, s, l = _op_args()
    padded = torch.randn(3, 6, 12)

    @torch.compile(fullgraph=True, backend="eager")
    def loss(q, vv, dd):
        # The op itself, and the public function on a padded batch (offsets are validated with
        # data-dependent checks, which fullgraph cannot trace).
        return (torch.ops.colkern.maxsim_argmax(q, qm, vv, s, l)[0] ** 2).sum() + \
            colkern.maxsim(q, dd, q_mask=qm).sum()

    q1, v1, d1 = (t.clone().requires_grad_() for t in (Q, v, padded))
    loss(q1, v1, d1).backward()
    q2, v2, d2 = (t.clone().requires_grad_() for t in (Q, v, padded))
    ((torch.ops.colkern.maxsim_argmax(q2, qm, v2, s, l)[0] ** 2).sum() + colkern.maxsim(q2, d2, q_mask=qm).sum()).backward()
    for a, b in ((q1, q2), (v1, v2), (d1, d2)):
        torch.testing.assert_close(a.grad, b.grad)


def test_bits_are_not_differentiable():
    Q = torch.randn(2, 3, 16, requires_grad=True)
    bits = colkern.pack_bits(torch.randn(5, 16))
    out = colkern.maxsim_bits(Q, bits, offsets=torch.tensor([0, 2, 5]), dim=16)
    with pytest.raises(RuntimeError, match="maxsim_bits is not differentiable"):
        out.sum().backward()


def test_bad_argmax_is_rejected():
    Q, qm, v, s, l = _op_args()
    _, a = torch.ops.colkern.maxsim_argmax(Q, qm, v, s, l)
    bad = a.clone()
    bad[0, 0, 0] = 3  # document 0 has 3 rows
    with pytest.raises(ValueError, match="argmax entry 3 of document 0"):
        torch.ops.colkern.maxsim_backward(torch.ones(2, 3), Q, qm, v, s, l, bad)
    with pytest.raises(ValueError, match="argmax must be contiguous int32"):
        torch.ops.colkern.maxsim_backward(torch.ones(2, 3), Q, qm, v, s, l, a.long())


# ---- property test ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=8),
    D=st.integers(1, 40),
    B=st.integers(1, 3),
    Lq=st.integers(1, 12),
    dtype=st.sampled_from(DTYPES),
    isa_name=st.sampled_from(ISAS),
    seed=st.integers(0, 2**16),
    use_mask=st.booleans(),
    ties=st.booleans(),
)
def test_property_grad_matches_fp64_autograd(lengths, D, B, Lq, dtype, isa_name, seed, use_mask, ties):
    """Random ragged corpora, masks, dtypes and ISA levels: dQ and ddocs equal fp64 autograd of the
    reference. ties: values drawn from {-1, 0, 1}, so equal maxima are common; fp64 autograd's amax
    would split a tie's gradient evenly, while colkern's rule gives it all to the lowest row, so
    those cases are checked against the rule's fp64 reference (argmax_rows_ref, backward_rows_ref)."""
    g = torch.Generator().manual_seed(seed)
    draw = (lambda *s: torch.randint(-1, 2, s, generator=g).float()) if ties else (lambda *s: torch.randn(*s, generator=g))
    Q = draw(B, Lq, D)
    docs = [draw(L, D) for L in lengths]
    q_mask = (torch.rand(B, Lq, generator=g) > 0.3) if use_mask else None
    w = torch.randn(B, len(docs), generator=g)
    Qk, dk, Q64, d64 = leaves(Q, docs, dtype)
    with colkern.use_isa(isa_name):
        (colkern.maxsim(Qk, dk, q_mask=q_mask) * w).sum().backward()
    if ties:
        values = torch.cat([d.to(dtype).double() for d in docs]) if docs else torch.zeros(0, D)
        starts = torch.tensor([0] + lengths[:-1]).cumsum(0)
        lens = torch.tensor(lengths)
        mask = q_mask if q_mask is not None else torch.ones(B, Lq, dtype=torch.bool)
        arg = argmax_rows_ref(Q.to(dtype).double(), mask, values, starts, lens)[1]
        dQ, dV = backward_rows_ref(w.double(), Q.to(dtype).double(), mask, values, starts, lens, arg,
                                   dtype=torch.float64)
        assert_grad_close(Qk.grad, dQ, dtype, "dQ")
        for n, d in enumerate(dk):
            assert_grad_close(d.grad, dV[int(starts[n]):int(starts[n]) + lengths[n]], dtype, f"ddocs[{n}]")
    else:
        (ref_scores(Q64, d64, q_mask) * w.double()).sum().backward()
        assert_grad_close(Qk.grad, Q64.grad, dtype, "dQ")
        for n, (a, b) in enumerate(zip(dk, d64)):
            assert_grad_close(a.grad, b.grad, dtype, f"ddocs[{n}]")
