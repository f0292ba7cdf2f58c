"""MaxSim forward on CUDA (Triton): one program per (document, query) pair.

    score[b, n] = sum over valid query tokens i of max over rows j of document n of <Q[b, i], d_j>

One kernel serves float documents (maxsim_triton) and packed sign-bit documents
(maxsim_bits_triton, BITS=True): only the document tile's load differs, the bits being expanded to
+-1 ("pm1") or {0, 1} ("01") in registers, so only 1/16 (fp16/bf16) or 1/32 (fp32) of the bytes
of a float corpus are read. Bits follow colkern/ops/bits.py (numpy.packbits order): bit = x > 0,
MSB first within each byte, ceil(dim / 8) bytes per vector, padding bits 0.

The corpus stays packed (`values [T, D]` + per-document `starts` / `lengths`): a program reads
its document's rows straight from `values` with masked loads, so ragged corpora need no padding
copy. Conventions are those of the CPU kernel (see colkern/ops/maxsim.py): fp32 accumulation and
output, masked query tokens contribute nothing, an empty document scores 0, and a NaN product
makes its query token's max (hence the score) NaN.
"""
from __future__ import annotations

import os
from typing import List, Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._aot import TL_DTYPES, compile_all, main
from ._common import _doc_range, _query_rows

# Tiling. A program owns one (document, query) pair and walks the query tokens in BLOCK_Q rows,
# the document in BLOCK_N rows and the embedding in BLOCK_D columns, so the live tile is
# BLOCK_Q x BLOCK_N fp32 (64 x 64 = 16 KiB of registers over 4 warps): large enough for
# tensor-core tl.dot, small enough not to spill. tl.dot needs every dimension >= 16, hence the
# floors; smaller Lq / D are padded by masked loads (other=0), which adds exact zeros.
_BLOCK_N = 64
_MAX_BLOCK_Q = 64
_MAX_BLOCK_D = 128
_NUM_WARPS = 4

_MODES = ("pm1", "01")


@triton.jit
def _expand_bits(bits_ptr, row_off, col_ok, dd, dk, PM1: tl.constexpr):
    """[BLOCK_N, BLOCK_D] int32 document tile from packed rows: +-1 (PM1) or {0, 1} per bit.
    Each byte is loaded once per bit it holds; the 8 loads of a byte hit the same cache line, so
    memory traffic stays one byte per 8 dimensions."""
    byte = tl.load(bits_ptr + row_off[:, None] + (dd // 8)[None, :],
                   mask=col_ok[:, None] & dk[None, :], other=0)
    b = (byte.to(tl.int32) >> (7 - dd % 8)[None, :]) & 1
    if PM1:
        b = 2 * b - 1
    return b


@triton.jit
def _doc_tile(v_ptr, doc_rows, col_ok, dd, dk, ROW, BITS: tl.constexpr, PM1: tl.constexpr,
              UPCAST: tl.constexpr):
    """[BLOCK_N, BLOCK_D] tile of documents rows `doc_rows`, dims `dd`; ROW elements per row
    (D floats, or ceil(D / 8) bytes of bits). Out-of-range rows and dims read as 0 (bits: as the
    expansion of a 0 byte); the caller masks the rows before the max."""
    if BITS:
        v = _expand_bits(v_ptr, doc_rows * ROW, col_ok, dd, dk, PM1)
    else:
        v = tl.load(v_ptr + doc_rows[:, None] * ROW + dd[None, :], mask=col_ok[:, None] & dk[None, :], other=0.0)
        if UPCAST:
            v = v.to(tl.float32)
    return v


@triton.jit
def _maxsim_fwd_kernel(q_ptr, qmask_ptr, v_ptr, starts_ptr, lengths_ptr, out_ptr, Lq, D, ROW, N,
                       HAS_MASK: tl.constexpr, BITS: tl.constexpr, PM1: tl.constexpr,
                       IEEE: tl.constexpr, UPCAST: tl.constexpr, ONE_D_CHUNK: tl.constexpr,
                       BLOCK_Q: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    n, start, length = _doc_range(starts_ptr, lengths_ptr)
    b = tl.program_id(1).to(tl.int64)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q_base = q_ptr + b * Lq * D

    # Per-lane partial sums over the query blocks, reduced once at the end.
    total = tl.zeros([BLOCK_Q], dtype=tl.float32)
    for q0 in range(0, Lq, BLOCK_Q):
        rows, _, row_ok = _query_rows(qmask_ptr, b, Lq, q0, BLOCK_Q, HAS_MASK)
        if ONE_D_CHUNK:
            # D <= BLOCK_D (the common case): the query tile is loaded once, not once per
            # document block.
            d_ok = offs_d < D
            q_tile = tl.load(q_base + rows[:, None] * D + offs_d[None, :],
                             mask=row_ok[:, None] & d_ok[None, :], other=0.0)
            if UPCAST:
                q_tile = q_tile.to(tl.float32)

        best = tl.full([BLOCK_Q], float("-inf"), dtype=tl.float32)
        # tl.max / tl.maximum may drop NaN (they lower to max-num), so NaN products are counted
        # separately and re-imposed after the document loop.
        nans = tl.zeros([BLOCK_Q], dtype=tl.int32)
        for j0 in range(0, length, BLOCK_N):
            cols = j0 + offs_n
            col_ok = cols < length
            acc = tl.zeros([BLOCK_Q, BLOCK_N], dtype=tl.float32)
            if ONE_D_CHUNK:
                # Bits expand to small integers in the dot's dtype (Q's, or fp32 when upcast):
                # exact in fp16 / bf16 / fp32, so the tensor-core products are exact too. A bit
                # past D expands to -1 in pm1 mode, but the query's padding there is exactly 0.
                v = _doc_tile(v_ptr, start + cols, col_ok, offs_d, d_ok, ROW, BITS, PM1, UPCAST).to(q_tile.dtype)
                if IEEE:
                    acc = tl.dot(q_tile, tl.trans(v), acc, input_precision="ieee")
                else:
                    acc = tl.dot(q_tile, tl.trans(v), acc)
            else:
                for d0 in range(0, D, BLOCK_D):
                    dd = d0 + offs_d
                    dk = dd < D
                    q = tl.load(q_base + rows[:, None] * D + dd[None, :],
                                mask=row_ok[:, None] & dk[None, :], other=0.0)
                    if UPCAST:
                        q = q.to(tl.float32)
                    v = _doc_tile(v_ptr, start + cols, col_ok, dd, dk, ROW, BITS, PM1, UPCAST).to(q.dtype)
                    if IEEE:
                        acc = tl.dot(q, tl.trans(v), acc, input_precision="ieee")
                    else:
                        acc = tl.dot(q, tl.trans(v), acc)
            # Rows past the document's end were loaded as zeros (bits: -1 / 0), so their products
            # are 0 or +-sum(q) (or NaN for an infinite query value): they must be -inf before
            # the max, never a value that could beat the real rows or inject a spurious NaN.
            s = tl.where(col_ok[None, :], acc, float("-inf"))
            nans += tl.sum((s != s).to(tl.int32), axis=1)
            best = tl.maximum(best, tl.max(s, axis=1))
        tok = tl.where(nans > 0, float("nan"), best)
        # tl.where, not a multiply by the mask: a masked token's -inf or NaN must not leak.
        total += tl.where(row_ok, tok, 0.0)

    # An empty document leaves every max at -inf; it scores 0 (the empty sum), as on CPU.
    score = tl.where(length > 0, tl.sum(total, axis=0), 0.0)
    tl.store(out_ptr + b * N + n, score)


def _config(Lq: int, D: int, dtype: torch.dtype, interpret: bool, mode: Optional[str] = None) -> dict:
    """Constexprs for Q [B, Lq, D] of `dtype`; mode None: float documents, "pm1" / "01": bits."""
    block_q = min(_MAX_BLOCK_Q, max(16, triton.next_power_of_2(Lq)))
    block_d = min(_MAX_BLOCK_D, max(16, triton.next_power_of_2(D)))
    # The Triton interpreter computes tl.dot on bf16 tiles wrongly (numpy has no bfloat16, so
    # the raw bit patterns get multiplied); there, bf16 tiles are upcast to fp32 first (bits are
    # expanded in fp32), which is exact and matches the fp32 accumulation of a real GPU.
    # Compiled kernels never upcast.
    upcast = interpret and dtype == torch.bfloat16
    return dict(
        BITS=mode is not None, PM1=mode == "pm1",
        # fp32 inputs: IEEE fp32 products, not TF32 (10-bit mantissa), since users who keep
        # fp32 embeddings expect fp32 accuracy. fp16/bf16 products (also with {+-1, 0, 1}) are
        # exact in fp32 anyway.
        IEEE=dtype == torch.float32 or upcast,
        UPCAST=upcast, ONE_D_CHUNK=D <= block_d,
        BLOCK_Q=block_q, BLOCK_N=_BLOCK_N, BLOCK_D=block_d,
    )


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _launch_fwd(Q: Tensor, q_mask: Optional[Tensor], docs: Tensor, starts: Tensor, lengths: Tensor,
                D: int, row: int, mode: Optional[str]) -> Tensor:
    """_maxsim_fwd_kernel on one program per (document, query): docs holds `row` elements per
    document row (D floats, or ceil(D / 8) bytes of bits in `mode`). -> float32 [B, N]."""
    B, Lq, _ = Q.shape
    N = starts.shape[0]
    out = torch.empty(B, N, dtype=torch.float32, device=Q.device)
    if B == 0 or N == 0:
        return out  # an empty grid cannot be launched, and there is nothing to compute
    mask = q_mask if q_mask is not None else Q  # placeholder pointer, never read
    _maxsim_fwd_kernel[(N, B)](Q, mask, docs, starts, lengths, out, Lq, D, row, N,
                               HAS_MASK=q_mask is not None, num_warps=_NUM_WARPS,
                               **_config(Lq, D, Q.dtype, _interpreting(), mode))
    return out


def maxsim_triton(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                  lengths: Tensor) -> Tensor:
    """MaxSim scores of B queries against N packed documents.

    Q: [B, Lq, D] contiguous, float32 / float16 / bfloat16.
    q_mask: bool [B, Lq] contiguous, or None (every token valid).
    values: [T, D] contiguous, same dtype as Q; document n is values[starts[n]:starts[n]+lengths[n]].
    starts, lengths: int64 [N].
    -> float32 [B, N]. Inputs are assumed validated (torch.ops.colkern.maxsim checks them).
    """
    D = Q.shape[2]
    return _launch_fwd(Q, q_mask, values, starts, lengths, D, D, None)


def maxsim_bits_triton(Q: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                       lengths: Tensor, dim: int, mode: str) -> Tensor:
    """MaxSim of float queries against packed-bit documents.

    Q: [B, Lq, dim] contiguous, float32 / float16 / bfloat16.
    q_mask: bool [B, Lq] contiguous, or None (every token valid).
    bits: uint8 [T, ceil(dim/8)] contiguous; document n is bits[starts[n]:starts[n]+lengths[n]].
    starts, lengths: int64 [N].
    mode: "pm1" (bits read as +-1) or "01" (read as {0, 1}).
    -> float32 [B, N]. Inputs are otherwise assumed validated (the op checks them).
    """
    if mode not in _MODES:
        raise ValueError(f"maxsim_bits: mode must be 'pm1' or '01', got {mode!r}")
    return _launch_fwd(Q, q_mask, bits, starts, lengths, dim, (dim + 7) // 8, mode)


# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation (see _aot.py)


def aot_compile_all(arch: int) -> List[str]:
    """Compiles _maxsim_fwd_kernel for CUDA sm_`arch` over representative configs: float
    documents per dtype with and without q_mask, one and several D chunks; bits documents per
    dtype x mode likewise. Raises on any lowering error; returns one line per compiled variant."""
    variants = []
    # (Q dtype, bits mode or None for float documents, q_mask, Lq, D)
    configs = [(torch.float32, None, True, 32, 128), (torch.float32, None, False, 3, 130),
                (torch.float16, None, False, 32, 128), (torch.float16, None, True, 1, 8),
                (torch.float16, None, True, 3, 130), (torch.bfloat16, None, True, 32, 96),
                (torch.bfloat16, None, False, 17, 130),
                (torch.float32, "pm1", True, 32, 128), (torch.float32, "01", False, 3, 130),
                (torch.float16, "pm1", False, 32, 128), (torch.float16, "01", True, 1, 130),
                (torch.bfloat16, "01", True, 32, 96), (torch.bfloat16, "pm1", False, 33, 130)]
    for dtype, mode, has_mask, Lq, D in configs:
        tl_name = TL_DTYPES[dtype]
        constexprs = dict(HAS_MASK=has_mask, **_config(Lq, D, dtype, interpret=False, mode=mode))
        signature = {"q_ptr": f"*{tl_name}", "qmask_ptr": "*i1",
                     "v_ptr": "*u8" if mode else f"*{tl_name}",
                     "starts_ptr": "*i64", "lengths_ptr": "*i64", "out_ptr": "*fp32",
                     "Lq": "i32", "D": "i32", "ROW": "i32", "N": "i32"}
        kind = f"(bits) sm_{arch} {tl_name} {mode}" if mode else f"sm_{arch} {tl_name}"
        variants.append((_maxsim_fwd_kernel, f"_maxsim_fwd_kernel {kind} mask={has_mask} Lq={Lq} D={D}",
                         signature, constexprs))
    return compile_all(arch, variants, _NUM_WARPS)


if __name__ == "__main__":  # python -m colkern.triton_kernels.maxsim 80 90
    main(aot_compile_all)
