"""Patch pooling on CUDA (Triton): per page, the column-wise mean, max and standard deviation.

    out[n] = concat([mean, max, std]) over rows values[starts[n] : starts[n] + lengths[n]]

The corpus stays packed (`values [T, D]` + per-page `starts` / `lengths`; pages may be any valid
sub-ranges, in any order, with gaps or overlaps): a program reads its page's rows straight from
`values` with masked loads. Conventions, shared with the CPU kernel:
  * accumulation and output are float32 whatever the input dtype;
  * std = sqrt(M2 / (count - correction)) with `correction` as in torch.std;
  * an empty page gives NaN for mean, max and std; a page with 1 <= count <= correction gives
    std = 0 (mean and max as usual);
  * each column with a NaN or inf behaves as torch in fp64 on the same values, and that column
    only: a NaN makes its mean, max and std NaN; an infinity makes the mean +-inf (NaN if both
    signs occur), the max follows, and the std is NaN, even where count <= correction.
The reference is colkern.ops.patch_pool.pool_rows_ref.
"""
from __future__ import annotations

import itertools
from typing import List, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._aot import TL_DTYPES, compile_all, main
from ._common import _doc_range

# Tiling. The grid is (pages, D blocks): a program owns BLOCK_D columns of one page and walks the
# page's rows in BLOCK_N chunks (runtime trip count: pages are ragged). Splitting D keeps one large
# page busy on many SMs (D = 2048 -> 32 programs) and makes each row chunk a coalesced
# BLOCK_N x BLOCK_D load. The tile is kept at ~_TILE = 4096 fp32 elements (32 registers per
# thread at 4 warps, plus a few tile-sized temporaries): narrow D gets taller tiles, so a D = 1
# page still moves a useful amount of data per iteration. Columns are padded to >= 16 so that a
# row segment is never narrower than a load vector of the smallest dtype.
_MAX_BLOCK_D = 64
_MIN_BLOCK_D = 16
_TILE = 4096
_MAX_BLOCK_N = 256
_NUM_WARPS = 4
# correction travels as an int32; any larger value means "std = 0 for every non-empty page" for
# all realistic page sizes, so it is clamped rather than rejected.
_MAX_CORRECTION = 2**31 - 1


@triton.jit
def _patch_pool_fwd_kernel(v_ptr, starts_ptr, lengths_ptr, out_ptr, D, correction,
                           BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    n, start, length = _doc_range(starts_ptr, lengths_ptr)  # pages on axis 0
    pid_d = tl.program_id(1)
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    col_ok = cols < D
    offs_n = tl.arange(0, BLOCK_N)

    # Numerics. Every row is shifted by the page's first row (`shift`) before anything is summed,
    # so a common offset (x + 1e4) cancels exactly (Sterbenz) instead of swamping the variance in
    # fp32, and a constant page yields exact zeros everywhere: mean == shift and std == 0 exactly.
    # Each BLOCK_N-row chunk then gets its own mean and M2 computed two-pass from registers (the
    # tile is already loaded, so the data is still read from memory once), and the chunks are
    # merged with Chan's parallel formula, which stays stable where E[x^2] - E[x]^2 would not.
    # The running mean lives in the shifted frame, near 0, so the merge's delta is accurate too.
    # (An empty page may start at T: its first row must not be read.)
    shift = tl.load(v_ptr + start * D + cols, mask=cols < tl.where(length > 0, D, 0), other=0.0)
    shift = shift.to(tl.float32)
    mean_s = tl.zeros([BLOCK_D], dtype=tl.float32)  # running mean of (x - shift)
    m2 = tl.zeros([BLOCK_D], dtype=tl.float32)  # running sum of squared deviations
    # Non-finite values are tracked on the side and imposed at the end, so the Chan state only has
    # to be right for finite columns: tl.max / tl.maximum may drop NaN (they lower to max-num),
    # and inf - inf inside the merge would turn an infinite mean into NaN.
    nans = tl.zeros([BLOCK_D], dtype=tl.int32)
    hi = tl.full([BLOCK_D], float("-inf"), dtype=tl.float32)
    lo = tl.full([BLOCK_D], float("inf"), dtype=tl.float32)
    n_a = tl.full([], 0.0, dtype=tl.float32)  # rows merged so far (exact in fp32 up to 2**24)
    for j0 in range(0, length, BLOCK_N):
        rows = j0 + offs_n
        ok = (rows < length)[:, None] & col_ok[None, :]
        # Converted to fp32 at once, compiled or interpreted: all arithmetic and comparisons
        # below are fp32. (This is why the kernel needs no UPCAST flag like MaxSim's: the
        # interpreter's bf16 bug is in tl.dot, and its bf16 -> fp32 conversion is exact.)
        x = tl.load(v_ptr + (start + rows)[:, None] * D + cols[None, :], mask=ok, other=0.0)
        x = x.to(tl.float32)
        nans += tl.sum((x != x).to(tl.int32), axis=0)
        hi = tl.maximum(hi, tl.max(tl.where(ok, x, float("-inf")), axis=0))
        lo = tl.minimum(lo, tl.min(tl.where(ok, x, float("inf")), axis=0))

        n_b = tl.minimum(length - j0, BLOCK_N).to(tl.float32)
        n_ab = n_a + n_b
        # tl.where, not a multiply by the mask: padding rows must add exact zeros, never NaN.
        d = tl.where(ok, x - shift[None, :], 0.0)
        mean_b = tl.div_rn(tl.sum(d, axis=0), n_b)
        e = tl.where(ok, d - mean_b[None, :], 0.0)
        m2_b = tl.sum(e * e, axis=0)
        delta = mean_b - mean_s
        w_b = tl.div_rn(n_b, n_ab)
        mean_s += delta * w_b
        m2 += m2_b + delta * delta * (n_a * w_b)
        n_a = n_ab

    inf = float("inf")
    nan = float("nan")
    has_nan = nans > 0
    pinf = hi == inf
    ninf = lo == -inf
    mean = shift + mean_s
    mean = tl.where(pinf, inf, tl.where(ninf, -inf, mean))
    mean = tl.where(has_nan | (pinf & ninf), nan, mean)
    mx = tl.where(has_nan, nan, hi)
    # For length <= correction the divisor is <= 0; that lane is replaced just below.
    # div_rn / sqrt_rn: IEEE round-to-nearest, as on CPU. Plain `/` and tl.sqrt lower to
    # div.full.f32 and sqrt.approx.ftz.f32 (a few ulp off, and tiny results flushed to 0); they
    # run once per column and row block, so the exact forms cost nothing measurable.
    std = tl.sqrt_rn(tl.div_rn(m2, (length - correction).to(tl.float32)))
    std = tl.where(length <= correction, 0.0, std)
    # After the rule above, on purpose: a NaN / inf column has NaN std even when count <=
    # correction (colkern.ops.patch_pool.pool_rows_ref, the CPU kernel): bad data stays visible.
    std = tl.where(has_nan | pinf | ninf, nan, std)
    # An empty page has no statistic at all: NaN everywhere (hi/lo are still +-inf there).
    empty = length == 0
    mean = tl.where(empty, nan, mean)
    mx = tl.where(empty, nan, mx)
    std = tl.where(empty, nan, std)

    out = out_ptr + n.to(tl.int64) * 3 * D + cols  # int64: N * 3D can exceed int32
    tl.store(out, mean, mask=col_ok)
    tl.store(out + D, mx, mask=col_ok)
    tl.store(out + 2 * D, std, mask=col_ok)


def _config(D: int) -> dict:
    block_d = min(_MAX_BLOCK_D, max(_MIN_BLOCK_D, triton.next_power_of_2(D)))
    return dict(BLOCK_N=min(_MAX_BLOCK_N, _TILE // block_d), BLOCK_D=block_d)


def _grid(N: int, D: int, block_d: int) -> Tuple[int, int]:
    return (N, triton.cdiv(D, block_d))


def patch_pool_triton(values: Tensor, starts: Tensor, lengths: Tensor, correction: int) -> Tensor:
    """Mean, max and std pooling of N packed pages.

    values: [T, D] contiguous, float32 / float16 / bfloat16; page n is
        values[starts[n]:starts[n]+lengths[n]] (any valid sub-range).
    starts, lengths: int64 [N], contiguous, on the device of values.
    correction: int >= 0, as in torch.std (0: population std, 1: Bessel's correction).
    -> float32 [N, 3 * D]: [mean | max | std] per page. Inputs are otherwise assumed validated.
    """
    if correction < 0:
        raise ValueError(f"patch_pool: correction must be >= 0, got {correction}")
    D = values.shape[1]
    N = starts.shape[0]
    out = torch.empty(N, 3 * D, dtype=torch.float32, device=values.device)
    if N == 0 or D == 0:
        return out  # an empty grid cannot be launched, and there is nothing to compute
    cfg = _config(D)
    _patch_pool_fwd_kernel[_grid(N, D, cfg["BLOCK_D"])](
        values, starts, lengths, out, D, min(int(correction), _MAX_CORRECTION),
        num_warps=_NUM_WARPS, **cfg)
    return out


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation (see _aot.py)


def aot_compile_all(arch: int) -> List[str]:
    """Compiles _patch_pool_fwd_kernel for CUDA sm_`arch`: every dtype with each tile shape
    _config produces (D is a runtime argument, so BLOCK_D in {16, 32, 64} with its BLOCK_N covers
    every D). Raises on any lowering error; returns one line per compiled variant."""
    variants = []
    for dtype, D in itertools.product(TL_DTYPES, (7, 32, 2048)):
        tl_name = TL_DTYPES[dtype]
        constexprs = _config(D)
        signature = {"v_ptr": f"*{tl_name}", "starts_ptr": "*i64", "lengths_ptr": "*i64",
                     "out_ptr": "*fp32", "D": "i32", "correction": "i32"}
        variants.append((_patch_pool_fwd_kernel,
                         f"_patch_pool_fwd_kernel sm_{arch} {tl_name} D={D} "
                         f"BLOCK_N={constexprs['BLOCK_N']} BLOCK_D={constexprs['BLOCK_D']}",
                         signature, constexprs))
    return compile_all(arch, variants, _NUM_WARPS)


if __name__ == "__main__":  # python -m colkern.triton_kernels.patch_pool 80 90
    main(aot_compile_all)
