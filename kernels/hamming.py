"""Hamming MaxSim on CUDA (Triton): binary queries against binary documents.

    maxsim_hamming_triton(Q_bits [B, Lq, nbytes], ...) -> float32 [B, N]
        sum over valid query tokens of max over doc rows of dim - 2 * popcount(q XOR d)

That is the +-1 dot product of the two sign vectors, in exact integers. Bits follow
colkern/ops/bits.py (numpy.packbits order, ceil(dim / 8) bytes per vector, padding bits 0). A
corpus is a uint8 matrix `bits [T, nbytes]` plus per-document `starts` / `lengths` (int64 [N]);
programs read their document's rows straight from it with masked loads, so ragged corpora need no
padding copy. MaxSim conventions are those of kernels/maxsim.py (masked query tokens contribute
nothing, an empty document scores 0). The reference is colkern.ops.bits.maxsim_hamming_ref.
"""
from __future__ import annotations

from typing import List, Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from ._aot import compile_all, main
from ._common import _doc_range, _query_rows

# Tiling: a program XORs a [BLOCK_Q, BLOCK_N, BLOCK_W] tile of 32-bit words (every query token
# against every document row, BLOCK_W words of each) and popcounts it; ~_TILE words keeps that
# and its SWAR temporaries in registers. No tensor cores, so no >= 16 floors.
_TILE = 4096
_MAX_BLOCK_Q = 32
_MAX_BLOCK_W = 8
_MIN_BLOCK_N = 16
_MAX_BLOCK_N = 64
_NUM_WARPS = 4


@triton.jit
def _popcount32(x):
    """Set bits per element of a uint32 tensor (SWAR: 2-, 4-, 8-bit partial sums, then the bytes
    added by shifts, with no multiply that could wrap). Portable, unlike libdevice's popc, which
    the interpreter lacks."""
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F
    x = x + (x >> 8)
    x = x + (x >> 16)
    return (x & 0x3F).to(tl.int32)


@triton.jit
def _load_words(ptr, row_off, row_ok, w, NB, WORDS: tl.constexpr):
    """[R, BLOCK_W] uint32 words (w: word indices) of packed rows starting at `row_off` (elements
    of ptr). WORDS: ptr is int32 over rows of NB // 4 words. Otherwise ptr is uint8 and each word
    is assembled from up to 4 bytes (the last word of a row is zero padded, as are missing rows):
    any nbytes works. The byte order inside a word is irrelevant to a popcount of a XOR."""
    if WORDS:
        x = tl.load(ptr + row_off[:, None] + w[None, :],
                    mask=row_ok[:, None] & (w < NB // 4)[None, :], other=0)
        x = x.to(tl.uint32, bitcast=True)
    else:
        k = tl.arange(0, 4)
        byte_idx = w[None, :, None] * 4 + k[None, None, :]  # [1, BLOCK_W, 4]
        by = tl.load(ptr + row_off[:, None, None] + byte_idx,
                     mask=row_ok[:, None, None] & (byte_idx < NB), other=0)
        # Distinct byte lanes: the sum is an OR.
        x = tl.sum(by.to(tl.uint32) << (8 * k).to(tl.uint32)[None, None, :], axis=2)
    return x


@triton.jit
def _maxsim_hamming_kernel(q_ptr, qmask_ptr, bits_ptr, starts_ptr, lengths_ptr, out_ptr, Lq, D, NB,
                           N, HAS_MASK: tl.constexpr, WORDS: tl.constexpr,
                           ONE_W_CHUNK: tl.constexpr, BLOCK_Q: tl.constexpr,
                           BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
    n, start, length = _doc_range(starts_ptr, lengths_ptr)
    b = tl.program_id(1).to(tl.int64)
    offs_n = tl.arange(0, BLOCK_N)
    offs_w = tl.arange(0, BLOCK_W)
    # Row stride in elements of the pointers: words when WORDS, bytes otherwise.
    if WORDS:
        RS = NB // 4
    else:
        RS = NB
    NW = (NB + 3) // 4  # 32-bit words per vector

    # Integer state throughout: every score is exact. Per-token maxima are in [-D, D], so -D - 1
    # marks "no row yet"; the sum over tokens is int64 (Lq * D could pass int32).
    total = tl.zeros([BLOCK_Q], dtype=tl.int64)
    for q0 in range(0, Lq, BLOCK_Q):
        rows, _, row_ok = _query_rows(qmask_ptr, b, Lq, q0, BLOCK_Q, HAS_MASK)
        q_off = (b * Lq + rows) * RS
        if ONE_W_CHUNK:
            # The whole query tile fits: loaded once per query block, not once per doc block.
            q_words = _load_words(q_ptr, q_off, row_ok, offs_w, NB, WORDS)

        best = tl.zeros([BLOCK_Q], dtype=tl.int32) - D - 1
        for j0 in range(0, length, BLOCK_N):
            cols = j0 + offs_n
            col_ok = cols < length
            d_off = (start + cols) * RS
            if ONE_W_CHUNK:
                d_words = _load_words(bits_ptr, d_off, col_ok, offs_w, NB, WORDS)
                ham = tl.sum(_popcount32(q_words[:, None, :] ^ d_words[None, :, :]), axis=2)
            else:
                ham = tl.zeros([BLOCK_Q, BLOCK_N], dtype=tl.int32)
                for w0 in range(0, NW, BLOCK_W):
                    w = w0 + offs_w
                    qw = _load_words(q_ptr, q_off, row_ok, w, NB, WORDS)
                    dw = _load_words(bits_ptr, d_off, col_ok, w, NB, WORDS)
                    ham += tl.sum(_popcount32(qw[:, None, :] ^ dw[None, :, :]), axis=2)
            # Padding bits are 0 in both vectors (and missing words are zero-filled), so they
            # never count. Rows past the document's end must not take part in the max.
            s = tl.where(col_ok[None, :], D - 2 * ham, -D - 1)
            best = tl.maximum(best, tl.max(s, axis=1))
        total += tl.where(row_ok, best, 0).to(tl.int64)

    # An empty document scores 0 (the empty sum); one rounding to fp32, as the reference does.
    score = tl.where(length > 0, tl.sum(total, axis=0), 0)
    tl.store(out_ptr + b * N + n, score.to(tl.float32))


def _hamming_config(Lq: int, dim: int, words: bool) -> dict:
    nw = ((dim + 7) // 8 + 3) // 4
    block_w = min(_MAX_BLOCK_W, triton.next_power_of_2(nw))
    block_q = min(_MAX_BLOCK_Q, triton.next_power_of_2(Lq))
    block_n = min(_MAX_BLOCK_N, max(_MIN_BLOCK_N, _TILE // (block_q * block_w)))
    return dict(WORDS=words, ONE_W_CHUNK=nw <= block_w, BLOCK_Q=block_q, BLOCK_N=block_n,
                BLOCK_W=block_w)


def _as_words(t: Tensor) -> Optional[Tensor]:
    """t (uint8, last dim a multiple of 4 bytes, contiguous) viewed as int32 words, or None where
    the storage offset is not 4-byte aligned (the kernel then assembles words from bytes)."""
    if t.shape[-1] % 4 or t.storage_offset() % 4:
        return None
    try:
        return t.view(torch.int32)
    except RuntimeError:
        return None


def maxsim_hamming_triton(Q_bits: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                          lengths: Tensor, dim: int) -> Tensor:
    """Hamming MaxSim of packed-bit queries against packed-bit documents.

    Q_bits: uint8 [B, Lq, ceil(dim/8)] contiguous.
    q_mask: bool [B, Lq] contiguous, or None (every token valid).
    bits: uint8 [T, ceil(dim/8)] contiguous; document n is bits[starts[n]:starts[n]+lengths[n]].
    starts, lengths: int64 [N].
    -> float32 [B, N]: per valid query token max over the document's rows of
       dim - 2 * popcount(q XOR d), summed (integers, exact up to 2^24).
    """
    B, Lq, NB = Q_bits.shape
    N = starts.shape[0]
    out = torch.empty(B, N, dtype=torch.float32, device=Q_bits.device)
    if B == 0 or N == 0:
        return out  # an empty grid cannot be launched, and there is nothing to compute
    # nbytes % 4 == 0 (dim 32, 64, 96, 128, ...): read whole int32 words, 4x fewer loads.
    qw, dw = _as_words(Q_bits), _as_words(bits)
    words = qw is not None and dw is not None
    q_arg, d_arg = (qw, dw) if words else (Q_bits, bits)
    mask = q_mask if q_mask is not None else Q_bits  # placeholder pointer, never read
    _maxsim_hamming_kernel[(N, B)](q_arg, mask, d_arg, starts, lengths, out, Lq, dim, NB, N,
                                   HAS_MASK=q_mask is not None, num_warps=_NUM_WARPS,
                                   **_hamming_config(Lq, dim, words))
    return out



# ---------------------------------------------------------------------------------------------
# Ahead-of-time compilation (see _aot.py)


def aot_compile_all(arch: int) -> List[str]:
    """Compiles _maxsim_hamming_kernel for CUDA sm_`arch` with word and byte loads, with and
    without q_mask, one and several word chunks. Raises on any lowering error; returns one line
    per compiled variant."""
    variants = []
    # Word loads (nbytes % 4 == 0) and byte loads, one word chunk and several, tiny Lq and dim.
    for words, has_mask, Lq, D in [(True, True, 32, 128), (True, False, 32, 1024),
                                   (False, False, 32, 130), (False, True, 1, 2000)]:
        cfg = dict(HAS_MASK=has_mask, **_hamming_config(Lq, D, words))
        ptr = "*i32" if words else "*u8"
        sig = {"q_ptr": ptr, "qmask_ptr": "*i1", "bits_ptr": ptr, "starts_ptr": "*i64",
               "lengths_ptr": "*i64", "out_ptr": "*fp32", "Lq": "i32", "D": "i32", "NB": "i32",
               "N": "i32"}
        variants.append((_maxsim_hamming_kernel,
                         f"_maxsim_hamming_kernel sm_{arch} words={words} mask={has_mask} Lq={Lq} D={D}",
                         sig, cfg))
    return compile_all(arch, variants, _NUM_WARPS)


if __name__ == "__main__":  # python -m colkern.triton_kernels.hamming 80 90
    main(aot_compile_all)
