"""The Triton patch-pooling kernel (per-page mean | max | std), run on CPU tensors by the Triton
interpreter against the fp64 torch reference (pool_rows_ref) and the CPU op; and an ahead-of-time
compile for sm_80 / sm_90 that catches lowering errors the interpreter cannot see.

The interpreter cannot show one GPU-only hazard: numpy's max propagates NaN, while a compiled
tl.max may drop it. The kernel tracks NaN explicitly for that reason; only a GPU run tests it.
"""
import os

# Must precede the kernel module's import: @triton.jit reads it when the kernel is defined.
os.environ["TRITON_INTERPRET"] = "1"


import pytest  # noqa: E402
import torch  # noqa: E402
from triton_support import aot_compile, load_interpreted  # noqa: E402

import colkern  # noqa: E402, F401  (registers torch.ops.colkern.patch_pool)
from colkern.ops.patch_pool import pool_rows_ref  # noqa: E402

pytest.importorskip("triton")

# The interpreter evaluates the kernel with numpy, which warns on the inf - inf / NaN arithmetic
# of the NaN / inf tests and on the x / 0 of pages with count <= correction: the kernel replaces
# those lanes with tl.where, on purpose.
pytestmark = [pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")]

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# Relative error allowed against the fp64 reference computed from the same (already rounded)
# inputs: only the fp32 accumulation differs, whatever the input dtype.
RTOL = 1e-5


K = load_interpreted("patch_pool", "_patch_pool_fwd_kernel")


def run(values, starts, lengths, correction, cpu_op=True):
    values = values.contiguous()
    starts = torch.as_tensor(starts, dtype=torch.int64)
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    # The kernel trusts its inputs (the op validates them), and torch slicing would silently clip
    # the reference: keep every page inside values.
    assert bool(((starts >= 0) & (lengths >= 0) & (starts + lengths <= values.shape[0])).all())
    out = K.patch_pool_triton(values, starts, lengths, correction)
    assert out.dtype == torch.float32 and out.shape == (starts.shape[0], 3 * values.shape[1])
    if cpu_op:  # both backends follow the same rules, NaN / inf and empty pages included
        cpu = torch.ops.colkern.patch_pool(values, starts, lengths, None, correction)
        assert_close(out, cpu.double())
    return out, pool_rows_ref(values, starts, lengths, correction)


def assert_close(got, ref, rtol=RTOL):
    """Same NaN and infinity pattern; max exactly equal (it is a selection, not a sum); mean and
    std within rtol * (|ref| + 1), the data being O(1) (means of zero-mean data are near 0, so a
    purely relative bound would be meaningless there)."""
    assert got.shape == ref.shape
    got = got.double()
    nan = torch.isnan(ref)
    assert torch.equal(torch.isnan(got), nan), f"NaN pattern differs:\n{got}\n{ref}"
    inf = torch.isinf(ref)
    assert torch.equal(got[inf], ref[inf]), "infinities differ"
    D = ref.shape[1] // 3
    assert torch.equal(got[:, D:2 * D].nan_to_num(), ref[:, D:2 * D].nan_to_num()), "max differs"
    fin = ~nan & ~inf
    err = (got[fin] - ref[fin]).abs()
    bound = rtol * (ref[fin].abs() + 1)
    if err.numel():
        worst = (err - bound).max()
        assert bool((err <= bound).all()), f"max error {err.max():.3g}, worst excess {worst:.3g}"


def random_pages(lengths, D, dtype, seed, gap=3):
    """Pages laid out in a shuffled order with gaps between them: starts are not a prefix sum."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=g).tolist()
    starts = [0] * len(lengths)
    pos = gap
    for i in order:
        starts[i] = pos
        pos += lengths[i] + gap
    values = torch.randn(pos, D, generator=g).to(dtype)
    return values, starts, list(lengths)


PAGE_LENGTHS = [0, 1, 2, 3, 17, 1025, 0, 64, 65]


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("D", [1, 7, 128])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_fp64_reference(dtype, D, correction):
    values, starts, lengths = random_pages(PAGE_LENGTHS, D, dtype, seed=D * 10 + correction)
    got, ref = run(values, starts, lengths, correction)
    assert_close(got, ref)
    # Empty pages are NaN throughout; pages with count <= correction have std exactly 0.
    for i, L in enumerate(lengths):
        if L == 0:
            assert bool(torch.isnan(got[i]).all())
        elif L <= correction:
            assert bool((got[i, 2 * D:] == 0).all())
        elif L >= 3:  # (two random bf16 rows can coincide in a column; three practically not)
            assert bool((got[i, 2 * D:] > 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_wide_d_2048(dtype):
    values, starts, lengths = random_pages([130, 0, 1, 5], 2048, dtype, seed=1)
    got, ref = run(values, starts, lengths, 1)
    assert_close(got, ref)


def test_grid_splits_d_across_programs():
    # One page of D = 2048 must not be a single program: the grid is (pages, D blocks).
    cfg = K._config(2048)
    grid = K._grid(1, 2048, cfg["BLOCK_D"])
    assert grid[0] * grid[1] >= 16, grid
    for D in (1, 7, 128, 2048):  # every column is covered, with no program left idle
        block_d = K._config(D)["BLOCK_D"]
        pages, d_blocks = K._grid(3, D, block_d)
        assert pages == 3 and (d_blocks - 1) * block_d < D <= d_blocks * block_d


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_constant_pages_have_exactly_zero_std(dtype):
    D = 96
    consts = torch.tensor([0.0, -3.7, 1e4 + 0.1, 123.456, -1e-3, 7.0] * 16)[:D].to(dtype)
    lengths = [1, 2, 3, 17, 1025]
    values, starts, _ = random_pages(lengths, D, dtype, seed=3)
    for s, L in zip(starts, lengths):
        values[s:s + L] = consts
    for correction in (0, 1):
        got, ref = run(values, starts, lengths, correction)
        assert_close(got, ref)
        c = consts.float()
        assert torch.equal(got[:, :D], c.expand(len(lengths), D)), "mean must be exact"
        assert torch.equal(got[:, D:2 * D], c.expand(len(lengths), D))
        assert torch.equal(got[:, 2 * D:], torch.zeros(len(lengths), D)), "std must be exactly 0"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_large_common_offset_keeps_std(dtype):
    # Unit-variance data on top of 1e4: E[x^2] - E[x]^2 in fp32 cancels catastrophically here
    # (x^2 ~ 1e8 has an ulp of 8); the shifted Welford/Chan scheme must keep fp32-level relative
    # accuracy on std. fp16 / bf16 round 1e4 + x to multiples of 8 / 64, so their data is scaled
    # to stay non-degenerate; the reference sees the same rounded values either way.
    scale = {torch.float32: 1.0, torch.float16: 16.0, torch.bfloat16: 128.0}[dtype]
    lengths = [2, 3, 17, 100, 1025]
    values, starts, _ = random_pages(lengths, 7, torch.float32, seed=5)
    values = (values * scale + 1e4).to(dtype)
    for correction in (0, 1):
        # (No CPU-op cross-check here: its std is held to a looser bound by its own tests.)
        got, ref = run(values, starts, lengths, correction, cpu_op=False)
        std, ref_std = got[:, 14:].double(), ref[:, 14:]
        pos = ref_std > 0  # (a few rounded fp16 / bf16 pairs coincide: their std must stay 0)
        assert bool(pos[1:].all()) and torch.equal(std[~pos], ref_std[~pos])
        rel = ((std[pos] - ref_std[pos]).abs() / ref_std[pos]).max()
        # 1e-5, not the 1e-3 one might accept: the kernel gets ~2e-7 here, while dropping the
        # shift by the page's first row (Chan's merge alone) already costs ~1e-4 at 1e4.
        assert rel <= 1e-5, f"std relative error {rel:.3g}"
        mean_err = ((got[:, :7].double() - ref[:, :7]).abs() / ref[:, :7].abs()).max()
        assert mean_err <= 1e-6, f"mean relative error {mean_err:.3g}"

    if dtype == torch.float32:
        # The test has teeth: the naive one-pass formula in fp32 misses by more than 1e-2.
        x = values[starts[-1]:starts[-1] + lengths[-1]]
        naive = ((x * x).mean(0) - x.mean(0) ** 2).clamp_min(0).sqrt().double()
        ref_std = x.double().std(0, correction=0)
        assert ((naive - ref_std).abs() / ref_std).max() > 1e-2


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_and_inf_stay_in_their_column_and_page(dtype, correction):
    D = 24
    lengths = [5, 70, 70, 70, 4, 0, 1, 3]
    values, starts, _ = random_pages(lengths, D, dtype, seed=11)
    inf, nan = float("inf"), float("nan")
    values[starts[1] + 66, 2] = nan  # page 1: NaN in the second row block
    values[starts[1] + 0, 3] = nan  # ...and in the first row (the shift row)
    values[starts[2] + 69, 0] = inf  # page 2: +inf, last row
    values[starts[2] + 0, 5] = -inf  # ...-inf as the shift row
    values[starts[2] + 1, 5] = 5.0
    values[starts[3] + 3, 1] = inf  # page 3: +inf and -inf in one column -> NaN mean
    values[starts[3] + 65, 1] = -inf
    values[starts[3] + 10, 4] = inf  # ...+inf and NaN in one column -> NaN
    values[starts[3] + 11, 4] = nan
    values[starts[6], 7] = nan  # page 6: a single row with NaN
    values[starts[7] + 1, 9] = inf  # page 7: 3 rows, one +inf
    got, ref = run(values, starts, lengths, correction)
    assert_close(got, ref)

    mean, mx, std = got[:, :D], got[:, D:2 * D], got[:, 2 * D:]
    # Columns with a NaN: mean, max and std are NaN.
    for p, c in ((1, 2), (1, 3), (3, 4)):
        assert bool(torch.isnan(mean[p, c]) & torch.isnan(mx[p, c]) & torch.isnan(std[p, c]))
    # Infinities: mean and max follow torch, std is NaN.
    assert mean[2, 0] == inf and mx[2, 0] == inf and torch.isnan(std[2, 0])
    assert mean[2, 5] == -inf and mx[2, 5] == 5.0 and torch.isnan(std[2, 5])
    assert torch.isnan(mean[3, 1]) and mx[3, 1] == inf and torch.isnan(std[3, 1])
    assert mean[7, 9] == inf and mx[7, 9] == inf and torch.isnan(std[7, 9])
    # Single NaN row: NaN throughout, even where count <= correction would give std 0, while
    # that page's finite columns get std 0 (one row: M2 = 0, or the count <= correction rule).
    assert torch.isnan(mean[6, 7]) and torch.isnan(mx[6, 7]) and torch.isnan(std[6, 7])
    assert bool((std[6, torch.arange(D) != 7] == 0).all())
    # Nothing else is touched: clean pages and the other columns of dirty pages stay finite.
    dirty = {(1, 2), (1, 3), (2, 0), (2, 5), (3, 1), (3, 4), (6, 7), (7, 9)}
    for p, L in enumerate(lengths):
        for c in range(D):
            if L > 0 and (p, c) not in dirty:
                assert bool(torch.isfinite(got[p, [c, D + c, 2 * D + c]]).all()), (p, c)


def test_subranges_in_any_order():
    # Pages need not be packed back to back: a sub-range of pages, overlapping pages, pages out of
    # order, a page ending at the last row, and empty pages starting at T (never read).
    D = 33
    g = torch.Generator().manual_seed(4)
    values = torch.randn(300, D, generator=g)
    T = values.shape[0]
    starts = [250, 7, 7, 100, T - 1, T, 0, 150]
    lengths = [50, 93, 20, 200, 1, 0, 0, 1]
    got, ref = run(values, starts, lengths, 1)
    assert_close(got, ref)
    sub, sub_ref = run(values, starts[2:5], lengths[2:5], 1)
    assert torch.equal(sub, got[2:5])
    assert_close(sub, sub_ref)


def test_empty_inputs_do_not_launch(monkeypatch):
    class NoLaunch:
        def __getitem__(self, grid):
            raise AssertionError("launched an empty grid")

    monkeypatch.setattr(K, "_patch_pool_fwd_kernel", NoLaunch())
    none = torch.zeros(0, dtype=torch.int64)
    for dtype in DTYPES:
        out = K.patch_pool_triton(torch.randn(5, 7).to(dtype), none, none, 1)
        assert out.shape == (0, 21) and out.dtype == torch.float32


def test_empty_corpus_with_empty_pages():
    zeros = torch.zeros(2, dtype=torch.int64)
    out = K.patch_pool_triton(torch.randn(0, 8), zeros, zeros, 0)
    assert out.shape == (2, 24) and bool(torch.isnan(out).all())


def test_large_correction_and_bad_correction():
    values, starts, lengths = random_pages([1, 5, 40], 7, torch.float32, seed=9)
    got, ref = run(values, starts, lengths, 5)
    assert_close(got, ref)
    assert bool((got[:2, 14:] == 0).all()) and bool((got[2, 14:] > 0).all())
    got, _ = run(values, starts, lengths, 2**40, cpu_op=False)  # clamped: std 0 everywhere
    assert bool((got[:, 14:] == 0).all())
    with pytest.raises(ValueError, match="correction"):
        run(values, starts, lengths, -1, cpu_op=False)


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation for real GPUs: the interpreter runs the kernel as numpy and cannot
# see lowering errors (layouts, reductions, register or shared-memory limits).


def test_aot_compile_sm80_sm90(tmp_path):
    outs = aot_compile(tmp_path, "patch_pool")
    for arch in ("sm_80", "sm_90"):
        assert outs[arch].count("_patch_pool_fwd_kernel") == 3 * len(DTYPES), outs[arch]
