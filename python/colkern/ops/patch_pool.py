"""Fused patch pooling: mean, max and std over each page's patch embeddings in one pass.

    out[n] = [ mean | max | std ]   (3 * D float32) over the page's valid patches

Conventions, identical on every backend:
  * fp32 accumulation with Chan's combination of row blocks: a constant page gives std exactly
    0, and a large common offset (x + 1e4) does not cancel the variance;
  * std = sqrt(M2 / (count - correction)); count <= correction gives std 0 (no observable spread);
  * a page with no valid patch gives NaN for mean, max and std (nothing observed);
  * NaN or inf in a column follows torch in that column only (mean = sum / count, max propagates
    NaN, std NaN); other columns and other pages are untouched.

Op: torch.ops.colkern.patch_pool(values [T, D], starts [N] int64, lengths [N] int64,
    row_mask [T] bool or None, correction) -> [N, 3*D] float32; page n is the rows of its range
    whose row_mask is True (all of them without a mask), so a padded batch with any mask is
    pooled in place, in one pass, without gathering. float64 values are computed by the
    reference in float64 (returning float64), so gradcheck can verify the backward.
    Differentiable in values.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._backend import _C, FLOAT_DTYPES, dtype_code
from ._checks import check_contiguous, check_dtype, check_ranges
from ._inputs import Docs, normalize_rows
from ._registry import define_op

# float64 runs the reference (in float64), so that gradcheck can verify the backward.
_POOL_DTYPES = (*FLOAT_DTYPES, torch.float64)


def _check_op_inputs(values: Tensor, starts: Tensor, lengths: Tensor, row_mask: Optional[Tensor],
                     correction: int) -> None:
    if values.dim() != 2:
        raise ValueError(f"patch_pool: values must be [T, D], got {tuple(values.shape)}")
    check_dtype(values, _POOL_DTYPES, "patch_pool", "values")
    check_ranges(starts, lengths, "patch_pool")
    if correction < 0:
        raise ValueError(f"patch_pool: correction must be >= 0, got {correction}")
    if row_mask is not None and (row_mask.dtype != torch.bool or tuple(row_mask.shape) != (values.shape[0],)):
        raise ValueError(f"patch_pool: row_mask must be bool [T] = [{values.shape[0]}], got "
                         f"{row_mask.dtype} {tuple(row_mask.shape)}")
    check_contiguous("patch_pool", values=values, starts=starts, lengths=lengths, row_mask=row_mask)


def _page_rows(starts: Tensor, lengths: Tensor, row_mask: Optional[Tensor] = None):
    """-> (page index of every pooled row, its row in values), int64, masked rows left out."""
    N = starts.shape[0]
    page = torch.repeat_interleave(torch.arange(N, device=starts.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths  # position of each page's first row in `page`
    within = torch.arange(page.shape[0], device=starts.device) - first[page]
    rows = starts[page] + within
    if row_mask is not None:
        keep = row_mask[rows]
        page, rows = page[keep], rows[keep]
    return page, rows


def pool_rows_ref(values: Tensor, starts: Tensor, lengths: Tensor, correction: int = 1,
                  dtype: torch.dtype = torch.float64, row_mask: Optional[Tensor] = None) -> Tensor:
    """Pure-torch reference on row ranges (rows with row_mask False left out), computed in
    `dtype`: -> [N, 3*D]."""
    N, D = starts.shape[0], values.shape[1]
    out = torch.full((N, 3 * D), float("nan"), dtype=dtype, device=values.device)
    for n, (s, l) in enumerate(zip(starts.tolist(), lengths.tolist())):
        x = values[s:s + l]
        if row_mask is not None:
            x = x[row_mask[s:s + l]]
        l = x.shape[0]
        if l == 0:
            continue
        x = x.to(dtype)
        mean = x.mean(0)
        std = x.std(0, correction=correction) if l > correction else torch.zeros_like(mean)
        # torch gives NaN std for a column with NaN/inf; keep that even when l <= correction.
        std = torch.where(torch.isfinite(x).all(0), std, float("nan"))
        out[n] = torch.cat([mean, x.amax(0), std])
    return out


def _patch_pool_cpu(values: Tensor, starts: Tensor, lengths: Tensor, row_mask: Optional[Tensor],
                    correction: int) -> Tensor:
    _check_op_inputs(values, starts, lengths, row_mask, correction)
    if values.dtype == torch.float64:
        return pool_rows_ref(values, starts, lengths, correction, row_mask=row_mask)
    out = torch.empty(starts.shape[0], 3 * values.shape[1], dtype=torch.float32)
    _C.patch_pool(values_ptr=values.data_ptr(), dtype=dtype_code(values.dtype), T=values.shape[0],
                  D=values.shape[1], starts_ptr=starts.data_ptr(), lengths_ptr=lengths.data_ptr(),
                  N=starts.shape[0], row_mask_ptr=row_mask.data_ptr() if row_mask is not None else 0,
                  correction=correction, out_ptr=out.data_ptr(), num_threads=torch.get_num_threads())
    return out


def _patch_pool_cuda(values, starts, lengths, row_mask, correction):
    _check_op_inputs(values, starts, lengths, row_mask, correction)
    if values.dtype == torch.float64:
        return pool_rows_ref(values, starts, lengths, correction, row_mask=row_mask)
    from ..triton_kernels.patch_pool import patch_pool_triton  # Triton only for CUDA work

    if row_mask is not None:  # the Triton kernel takes ranges: gather the valid rows first
        page, rows = _page_rows(starts, lengths, row_mask)
        counts = torch.bincount(page, minlength=starts.shape[0])
        starts, lengths, values = torch.cumsum(counts, 0) - counts, counts, values[rows].contiguous()
    return patch_pool_triton(values, starts, lengths, correction)


def _patch_pool_fake(values, starts, lengths, row_mask, correction):
    dtype = torch.float64 if values.dtype == torch.float64 else torch.float32
    return values.new_empty((starts.shape[0], 3 * values.shape[1]), dtype=dtype)


def _setup_context(ctx, inputs, output):
    values, starts, lengths, row_mask, correction = inputs
    ctx.save_for_backward(values, starts, lengths, row_mask, output)
    ctx.correction = correction


def _backward(ctx, grad: Tensor):
    """d mean/dx = 1/n; d max/dx shared evenly among tied maxima (as torch.amax);
    d std/dx = (x - mean) / ((n - correction) * std), 0 where std is 0 or n <= correction."""
    values, starts, lengths, row_mask, out = ctx.saved_tensors
    D = values.shape[1]
    mean, mx, std = out[:, :D], out[:, D:2 * D], out[:, 2 * D:]
    g_mean, g_max, g_std = grad[:, :D], grad[:, D:2 * D], grad[:, 2 * D:]
    page, rows = _page_rows(starts, lengths, row_mask)
    x = values[rows].to(out.dtype)
    count = torch.bincount(page, minlength=starts.shape[0]).to(out.dtype)[:, None]
    is_max = (x == mx[page]).to(out.dtype)
    ties = torch.zeros_like(mx).index_add_(0, page, is_max)
    denom = (count - ctx.correction) * std
    std_coef = torch.where(denom > 0, g_std / denom, torch.zeros_like(denom))
    gx = (g_mean / count.clamp_min(1))[page] + is_max * (g_max / ties.clamp_min(1))[page] \
        + std_coef[page] * (x - mean[page])
    grad_values = torch.zeros(values.shape, dtype=out.dtype, device=values.device)
    grad_values.index_add_(0, rows, gx)
    return grad_values.to(values.dtype), None, None, None, None


define_op("patch_pool(Tensor values, Tensor starts, Tensor lengths, Tensor? row_mask, SymInt correction) -> Tensor",
          cpu=_patch_pool_cpu, cuda=_patch_pool_cuda, fake=_patch_pool_fake, backward=_backward,
          setup_context=_setup_context)


def patch_pool(x: Docs, *, mask: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
               offsets: Optional[Tensor] = None, correction: int = 1) -> Tensor:
    """Pooled page features [mean | max | std] in one pass over the patches.

    x: [B, N, D] patch embeddings with optional bool `mask` [B, N] or `lengths` [B] (neither:
      all patches valid); or packed [T, D] with int64 `offsets` [B+1]; or a list of [N_i, D]
      tensors; or a PackedDocs. float32 / float16 / bfloat16 (float64: reference path).
    correction: as torch.std (1 = Bessel's correction, 0 = population std).
    -> [B, 3*D] float32. Differentiable with respect to x.
    """
    if isinstance(correction, bool) or not isinstance(correction, int) or correction < 0:
        raise ValueError(f"patch_pool: correction must be an int >= 0, got {correction!r}")
    # The CPU kernel lists each page's valid rows itself, so a mask costs it nothing; the CUDA
    # path would gather the rows of a holey mask, so there a prefix mask becomes lengths.
    keep_mask = isinstance(x, Tensor) and x.device.type == "cpu"
    values, starts, lens, row_mask = normalize_rows(x, lengths=lengths, mask=mask, offsets=offsets,
                                                    op="patch_pool", arg="x", dtypes=_POOL_DTYPES,
                                                    keep_mask=keep_mask)
    return torch.ops.colkern.patch_pool(values, starts, lens, row_mask, correction)


def patch_pool_ref(x: Docs, *, mask: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
                   offsets: Optional[Tensor] = None, correction: int = 1,
                   dtype: torch.dtype = torch.float64) -> Tensor:
    """Pure-torch reference with the same inputs and conventions, computed in `dtype`."""
    values, starts, lens, row_mask = normalize_rows(x, lengths=lengths, mask=mask, offsets=offsets,
                                                    op="patch_pool_ref", arg="x", dtypes=_POOL_DTYPES)
    return pool_rows_ref(values, starts, lens, correction, dtype, row_mask=row_mask)
