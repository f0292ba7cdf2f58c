"""MaxSim for training on CUDA (Triton): the forward that also records each query token's
winning document row, and the backward that scatters gradients through those rows.

    scores[b, n] = sum over valid i of max_j <Q[b, i], doc_n[j]>, argmax[b, i, n] = that j
    dQ[b, i] += grad[b, n] * doc_n[argmax[b, i, n]];  dvalues[start_n + argmax[b, i, n]] += grad[b, n] * Q[b, i]

Rules as on CPU (colkern/ops/maxsim_backward.py): the lowest row wins a tie (tl.argmax breaks ties
to the left, and a later document block replaces the running max only when strictly greater), the
first NaN row wins and sticks, masked tokens and empty documents record -1. The forward has the
tiling of kernels/maxsim.py (one program per (document, query), tl.dot tiles of BLOCK_Q x
BLOCK_N); the backward is one program per (document, query) too, adding its rows with fp32
atomics (documents of a subset may share rows, and every document adds to the same dQ rows).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._aot import TL_DTYPES, compile_all, main
from ._common import _doc_range, _query_rows
from .maxsim import _config, _interpreting

_NUM_WARPS = 4
_BW_BLOCK_Q = 32
_BW_BLOCK_D = 64


@triton.jit
def _maxsim_argmax_kernel(q_ptr, qmask_ptr, v_ptr, starts_ptr, lengths_ptr, out_ptr, amax_ptr, Lq, D, N,
                          HAS_MASK: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr,
                          BLOCK_Q: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    n, start, length = _doc_range(starts_ptr, lengths_ptr)
    b = tl.program_id(1).to(tl.int64)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_base = q_ptr + b * Lq * D
    total = tl.zeros([BLOCK_Q], dtype=tl.float32)
    for q0 in range(0, Lq, BLOCK_Q):
        rows, in_q, row_ok = _query_rows(qmask_ptr, b, Lq, q0, BLOCK_Q, HAS_MASK)
        best = tl.full([BLOCK_Q], float("-inf"), dtype=tl.float32)
        best_idx = tl.zeros([BLOCK_Q], dtype=tl.int32)
        nan_seen = tl.zeros([BLOCK_Q], dtype=tl.int32)
        nan_idx = tl.zeros([BLOCK_Q], dtype=tl.int32)
        for j0 in range(0, length, BLOCK_N):
            cols = j0 + offs_n
            col_ok = cols < length
            acc = tl.zeros([BLOCK_Q, BLOCK_N], dtype=tl.float32)
            for d0 in range(0, D, BLOCK_D):
                dd = d0 + offs_d
                dk = dd < D
                q = tl.load(q_base + rows[:, None] * D + dd[None, :], mask=row_ok[:, None] & dk[None, :], other=0.0)
                v = tl.load(v_ptr + (start + cols)[:, None] * D + dd[None, :], mask=col_ok[:, None] & dk[None, :],
                            other=0.0)
                if UPCAST:
                    q = q.to(tl.float32)
                    v = v.to(tl.float32)
                if IEEE:
                    acc = tl.dot(q, tl.trans(v), acc, input_precision="ieee")
                else:
                    acc = tl.dot(q, tl.trans(v), acc)
            s = tl.where(col_ok[None, :], acc, float("-inf"))
            # tl.max may drop NaN (max-num): NaN rows are found separately, the first one wins.
            isn = (s != s).to(tl.int32)
            tile_nan = tl.max(isn, axis=1)
            tile_nan_pos = tl.argmax(isn, axis=1, tie_break_left=True)
            clean = tl.where(s != s, float("-inf"), s)
            tile_max = tl.max(clean, axis=1)
            tile_pos = tl.argmax(clean, axis=1, tie_break_left=True)
            take = tile_max > best  # strict: an earlier block keeps a tie
            best = tl.where(take, tile_max, best)
            best_idx = tl.where(take, (j0 + tile_pos).to(tl.int32), best_idx)
            first_nan = (tile_nan > 0) & (nan_seen == 0)
            nan_idx = tl.where(first_nan, (j0 + tile_nan_pos).to(tl.int32), nan_idx)
            nan_seen = tl.maximum(nan_seen, tile_nan)
        tok = tl.where(nan_seen > 0, float("nan"), best)
        idx = tl.where(nan_seen > 0, nan_idx, best_idx)
        idx = tl.where(row_ok & (length > 0), idx, -1)
        tl.store(amax_ptr + (b * Lq + rows) * N + n, idx, mask=in_q)
        total += tl.where(row_ok, tok, 0.0)
    score = tl.where(length > 0, tl.sum(total, axis=0), 0.0)
    tl.store(out_ptr + b * N + n, score)


@triton.jit
def _maxsim_backward_kernel(grad_ptr, q_ptr, v_ptr, starts_ptr, amax_ptr, dq_ptr, dv_ptr, Lq, D, N,
                            BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr):
    n = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    start = tl.load(starts_ptr + n)
    g = tl.load(grad_ptr + b * N + n)
    offs_q = tl.arange(0, BLOCK_Q)
    offs_d = tl.arange(0, BLOCK_D)
    for q0 in range(0, Lq, BLOCK_Q):
        rows = q0 + offs_q
        tok = b * Lq + rows
        idx = tl.load(amax_ptr + tok * N + n, mask=rows < Lq, other=-1)
        ok = idx >= 0
        vrow = start + idx.to(tl.int64)
        for d0 in range(0, D, BLOCK_D):
            dd = d0 + offs_d
            m = ok[:, None] & (dd < D)[None, :]
            v = tl.load(v_ptr + vrow[:, None] * D + dd[None, :], mask=m, other=0.0).to(tl.float32)
            q = tl.load(q_ptr + tok[:, None] * D + dd[None, :], mask=m, other=0.0).to(tl.float32)
            tl.atomic_add(dq_ptr + tok[:, None] * D + dd[None, :], g * v, mask=m)
            tl.atomic_add(dv_ptr + vrow[:, None] * D + dd[None, :], g * q, mask=m)


def _argmax_config(Lq: int, D: int, dtype: torch.dtype, interpret: bool) -> dict:
    c = _config(Lq, D, dtype, interpret)
    return dict(IEEE=c["IEEE"], UPCAST=c["UPCAST"], BLOCK_Q=c["BLOCK_Q"], BLOCK_N=c["BLOCK_N"],
                BLOCK_D=c["BLOCK_D"])


def maxsim_argmax_triton(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                         lengths: Tensor) -> Tuple[Tensor, Tensor]:
    """Q [B, Lq, D], q_mask bool [B, Lq] or None, values [T, D] (same dtype), starts / lengths
    int64 [N], all contiguous and validated by the op. -> (scores [B, N] float32,
    argmax [B, Lq, N] int32)."""
    B, Lq, D = Q.shape
    N = starts.shape[0]
    out = torch.empty(B, N, dtype=torch.float32, device=Q.device)
    amax = torch.full((B, Lq, N), -1, dtype=torch.int32, device=Q.device)
    if B == 0 or N == 0 or Lq == 0:
        return out.zero_(), amax
    mask = q_mask if q_mask is not None else Q  # placeholder pointer, never read
    _maxsim_argmax_kernel[(N, B)](Q, mask, values, starts, lengths, out, amax, Lq, D, N,
                                  HAS_MASK=q_mask is not None, num_warps=_NUM_WARPS,
                                  **_argmax_config(Lq, D, Q.dtype, _interpreting()))
    return out, amax


def maxsim_backward_triton(grad: Tensor, Q: Tensor, values: Tensor, starts: Tensor,
                           argmax: Tensor) -> Tuple[Tensor, Tensor]:
    """grad [B, N] float32, Q [B, Lq, D], values [T, D], starts [N] int64, argmax [B, Lq, N]
    int32 from maxsim_argmax_triton. -> (dQ [B, Lq, D], dvalues [T, D]) float32."""
    B, Lq, D = Q.shape
    N = starts.shape[0]
    dq = torch.zeros(B, Lq, D, dtype=torch.float32, device=Q.device)
    dv = torch.zeros(values.shape, dtype=torch.float32, device=Q.device)
    if B == 0 or N == 0 or Lq == 0:
        return dq, dv
    _maxsim_backward_kernel[(N, B)](grad, Q, values, starts, argmax, dq, dv, Lq, D, N,
                                    BLOCK_Q=_BW_BLOCK_Q, BLOCK_D=_BW_BLOCK_D, num_warps=_NUM_WARPS)
    return dq, dv


def aot_compile_all(arch: int) -> List[str]:
    """Compiles both kernels for CUDA sm_`arch` per dtype, with and without q_mask, one and
    several D chunks. Raises on any lowering error; returns one line per compiled variant."""
    variants = []
    for dtype, has_mask, Lq, D in [(torch.float32, True, 32, 128), (torch.float16, False, 3, 130),
                                   (torch.bfloat16, True, 17, 96), (torch.bfloat16, False, 32, 128)]:
        tl_name = TL_DTYPES[dtype]
        signature = {"q_ptr": f"*{tl_name}", "qmask_ptr": "*i1", "v_ptr": f"*{tl_name}", "starts_ptr": "*i64",
                     "lengths_ptr": "*i64", "out_ptr": "*fp32", "amax_ptr": "*i32", "Lq": "i32", "D": "i32",
                     "N": "i32"}
        constexprs = dict(HAS_MASK=has_mask, **_argmax_config(Lq, D, dtype, interpret=False))
        variants.append((_maxsim_argmax_kernel,
                         f"_maxsim_argmax_kernel sm_{arch} {tl_name} mask={has_mask} Lq={Lq} D={D}",
                         signature, constexprs))
        signature = {"grad_ptr": "*fp32", "q_ptr": f"*{tl_name}", "v_ptr": f"*{tl_name}", "starts_ptr": "*i64",
                     "amax_ptr": "*i32", "dq_ptr": "*fp32", "dv_ptr": "*fp32", "Lq": "i32", "D": "i32", "N": "i32"}
        variants.append((_maxsim_backward_kernel, f"_maxsim_backward_kernel sm_{arch} {tl_name}", signature,
                         dict(BLOCK_Q=_BW_BLOCK_Q, BLOCK_D=_BW_BLOCK_D)))
    return compile_all(arch, variants, _NUM_WARPS)


if __name__ == "__main__":  # python -m colkern.triton_kernels.maxsim_backward 80 90
    main(aot_compile_all)
