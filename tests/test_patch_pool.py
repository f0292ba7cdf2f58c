"""colkern.patch_pool (CPU kernels) against the pure-torch reference."""
import pytest
import torch
from conftest import DTYPES, FLOOR, ISAS
from hypothesis import given, settings
from hypothesis import strategies as st

import colkern
from colkern.ops.patch_pool import pool_rows_ref


def rand(shape, dtype, seed=0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) + offset).to(dtype)


def assert_pool_close(got, ref, dtype, std_rtol=None):
    """got: float32 kernel output; ref: float64 reference on the same rounded inputs."""
    assert got.dtype == torch.float32 and got.shape == ref.shape
    assert torch.equal(torch.isnan(got), torch.isnan(ref)), "NaN pattern differs from the reference"
    ok = ~torch.isnan(ref) & ~(got.double() == ref)  # equal values (infinities included) pass
    # Within the fp32 accumulation error of the reference's own magnitude (a sum of n terms of
    # size |x| loses about n * eps * |x| at worst; blocked sums do far better).
    scale = ref.abs().clamp_min(1.0)
    err = (got.double() - ref).abs()
    bound = 50 * FLOOR[dtype] * scale
    assert bool((err[ok] <= bound[ok]).all()), f"max scaled error {(err[ok] / scale[ok]).max():.3g}"
    assert torch.equal(torch.isinf(got), torch.isinf(ref)), "infinities differ from the reference"


def check(x, dtype, correction=1, **kw):
    got = colkern.patch_pool(x, correction=correction, **kw)
    ref = colkern.patch_pool_ref(x, correction=correction, **kw)
    assert_pool_close(got, ref, dtype)
    return got


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("D", [1, 7, 96, 128, 200, 2048])  # 96, 200: register strips + a memory-path tail
@pytest.mark.parametrize("N", [1, 2, 3, 17, 1025])
def test_matches_reference(isa, dtype, D, N):
    if D == 2048 and N == 1025 and isa == "scalar":
        N = 257  # keeps the scalar path fast; the SIMD paths take the full size
    x = rand((2, N, D), dtype)
    got = check(x, dtype)
    if N == 1:
        assert torch.equal(got[:, 2 * D:], torch.zeros(2, D)), "one patch: std is 0 with correction 1"


@pytest.mark.parametrize("correction", [0, 1, 2])
def test_masks_lengths_offsets_and_corrections(isa, correction):
    D = 33
    x = rand((4, 70, D), torch.float32, seed=1)
    lengths = torch.tensor([70, 0, 2, 65])
    got = check(x, torch.float32, correction=correction, lengths=lengths)
    assert torch.isnan(got[1]).all(), "a page with no valid patch is NaN"
    if correction == 2:
        assert torch.equal(got[2, 2 * D:], torch.zeros(D)), "count <= correction gives std 0"
    mask = torch.rand(4, 70, generator=torch.Generator().manual_seed(2)) > 0.5  # holes
    check(x, torch.float32, correction=correction, mask=mask)
    packed = colkern.pack([x[0, :5], x[1, :0], x[2, :64], x[3]])
    check(packed.values, torch.float32, correction=correction, offsets=packed.offsets)


def test_constant_page_has_zero_std_and_offset_keeps_std(isa):
    D = 130
    const = torch.full((1, 1025, D), 3.7)
    out = colkern.patch_pool(const)
    assert torch.equal(out[0, 2 * D:], torch.zeros(D)), "constant input must give std exactly 0"
    assert torch.equal(out[0, :D], torch.full((D,), 3.7))
    base = rand((1, 1025, D), torch.float32, seed=3)
    shifted = colkern.patch_pool(base + 1e4)
    ref_std = pool_rows_ref((base + 1e4)[0], torch.tensor([0]), torch.tensor([1025]))[0, 2 * D:]
    # Sums are taken relative to the page's first row, so the 1e4 offset costs no precision:
    # the std (~1) stays at fp32 accuracy although the inputs' ulp is ~1e-3.
    torch.testing.assert_close(shifted[0, 2 * D:].double(), ref_std, rtol=1e-5, atol=0)


def test_nan_and_inf_stay_in_their_column_and_page(isa):
    D = 20
    x = rand((3, 130, D), torch.float32, seed=4)
    x[1, 77, 3] = float("nan")
    x[1, 5, 9] = float("inf")
    x[1, 0, 11] = float("-inf")  # in the first row: the block's shift itself is infinite
    got = colkern.patch_pool(x)
    ref = colkern.patch_pool_ref(x)
    assert_pool_close(got, ref, torch.float32)
    bad_cols = {3, 9, 11}
    for part in range(3):
        for c in range(D):
            col = got[1, part * D + c]
            if c == 3:
                assert torch.isnan(col)
            elif c not in bad_cols:
                assert torch.isfinite(col)
    assert torch.isfinite(got[[0, 2]]).all(), "other pages are untouched"
    assert got[1, 9] == float("inf") and got[1, D + 9] == float("inf") and torch.isnan(got[1, 2 * D + 9])


def test_one_patch_with_nan_is_nan():
    x = torch.tensor([[[1.0, float("nan")]]])
    out = colkern.patch_pool(x)
    assert out[0, 0] == 1.0 and out[0, 2] == 1.0 and out[0, 4] == 0.0
    assert torch.isnan(out[0, [1, 3, 5]]).all()


def test_threads_do_not_change_results():
    x = rand((3, 300, 1100), torch.float32, seed=5)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = colkern.patch_pool(x)
        torch.set_num_threads(2)
        two = colkern.patch_pool(x)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 150), min_size=1, max_size=6), D=st.integers(1, 70),
       dtype=st.sampled_from(DTYPES), isa_name=st.sampled_from(ISAS), correction=st.integers(0, 3),
       seed=st.integers(0, 2**16), offset=st.sampled_from([0.0, 100.0, -3e3]))
def test_property_random_pages(lengths, D, dtype, isa_name, correction, seed, offset):
    pages = [rand((L, D), dtype, seed=seed + i, offset=offset) for i, L in enumerate(lengths)]
    with colkern.use_isa(isa_name):
        check(pages, dtype, correction=correction)


def test_gradcheck_fp64():
    x = rand((3, 6, 4), torch.float64, seed=6).requires_grad_()
    lengths = torch.tensor([6, 1, 4])
    torch.autograd.gradcheck(lambda t: colkern.patch_pool(t, lengths=lengths), (x,))
    packed = rand((9, 3), torch.float64, seed=7).requires_grad_()
    offsets = torch.tensor([0, 4, 4, 9])
    # Page 1 is empty (NaN outputs, no inputs): nan_to_num keeps its finite-difference column 0.
    torch.autograd.gradcheck(lambda t: colkern.patch_pool(t, offsets=offsets, correction=0).nan_to_num(), (packed,))


def test_mask_with_holes_pools_in_place_and_differentiates():
    """A non-prefix mask is applied inside the kernel (no gather): masked rows hold garbage that
    must never be read, and get no gradient."""
    x = rand((3, 12, 5), torch.float32, seed=10)
    mask = torch.rand(3, 12, generator=torch.Generator().manual_seed(11)) > 0.4
    mask[2] = False
    garbage = x.clone()
    garbage[~mask] = 1e30
    got = colkern.patch_pool(garbage, mask=mask)
    assert torch.isnan(got[2]).all()
    expected = torch.stack([colkern.patch_pool([x[b][mask[b]]])[0] for b in range(2)])
    torch.testing.assert_close(got[:2], expected, rtol=1e-5, atol=1e-5)
    x64 = x.double().requires_grad_()
    torch.autograd.gradcheck(lambda t: colkern.patch_pool(t, mask=mask).nan_to_num(), (x64,))
    g = x.clone().requires_grad_()
    colkern.patch_pool(g, mask=mask)[:2].sum().backward()
    assert torch.equal(g.grad[~mask], torch.zeros_like(g.grad[~mask]))


def test_backward_of_the_fast_path_matches_reference_autograd():
    x = rand((2, 9, 5), torch.float32, seed=8).requires_grad_()
    x64 = x.detach().double().requires_grad_()
    w = torch.randn(2, 15, dtype=torch.float64)
    (colkern.patch_pool(x).double() * w).sum().backward()
    ref = torch.cat([x64.mean(1), x64.amax(1), x64.std(1)], 1)
    (ref * w).sum().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-5)


def test_opcheck_and_compile():
    x = rand((7, 5), torch.float32, seed=9)
    # No empty page here: its NaN outputs would fail opcheck's eager-vs-traced equality check.
    starts, lengths = torch.tensor([0, 3, 3]), torch.tensor([3, 1, 4])
    torch.library.opcheck(torch.ops.colkern.patch_pool.default, (x, starts, lengths, None, 1))
    x64 = x.double().requires_grad_()
    torch.library.opcheck(torch.ops.colkern.patch_pool.default, (x64, starts, lengths, None, 1))

    @torch.compile(fullgraph=True, backend="eager")
    def pooled(values):
        return torch.ops.colkern.patch_pool(values, starts, lengths, None, 1) + 1

    torch.testing.assert_close(pooled(x), torch.ops.colkern.patch_pool(x, starts, lengths, None, 1) + 1,
                               equal_nan=True)


def test_bad_input_messages():
    x = rand((2, 4, 3), torch.float32)
    cases = [
        (lambda: colkern.patch_pool(x, mask=torch.ones(2, 5, dtype=torch.bool)), "mask must be bool"),
        (lambda: colkern.patch_pool(x, mask=torch.ones(2, 4)), "mask must be bool"),
        (lambda: colkern.patch_pool(x, lengths=torch.tensor([1, 9])), r"lengths must lie in \[0, 4\]"),
        (lambda: colkern.patch_pool(x[0], offsets=torch.tensor([0, 5])), r"offsets must lie in \[0, 4\]"),
        (lambda: colkern.patch_pool(x[0], offsets=torch.tensor([0, 3, 2])), "non-decreasing"),
        (lambda: colkern.patch_pool(x[0]), "need offsets"),
        (lambda: colkern.patch_pool(x.to(torch.int32)), "x must be float32"),
        (lambda: colkern.patch_pool(x, correction=-1), "correction must be"),
        (lambda: colkern.patch_pool(x, correction=1.5), "correction must be"),
        (lambda: colkern.patch_pool(x, mask=torch.ones(2, 4, dtype=torch.bool), lengths=torch.tensor([1, 2])),
         "either lengths or mask"),
    ]
    for fn, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            fn()
    with pytest.raises(ValueError, match=r"row_mask must be bool \[T\] = \[7\]"):
        torch.ops.colkern.patch_pool(torch.randn(7, 3), torch.tensor([0]), torch.tensor([3]),
                                     torch.ones(6, dtype=torch.bool), 1)
    with pytest.raises(ValueError, match="outside the 7 rows"):
        torch.ops.colkern.patch_pool(torch.randn(7, 3), torch.tensor([5]), torch.tensor([3]), None, 1)
