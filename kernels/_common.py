"""@triton.jit helpers shared by the kernels of this package, inlined where they are called.

Every kernel here walks ragged documents (rows starts[n] .. starts[n] + lengths[n] of one packed
matrix) with one program per document on grid axis 0, and the MaxSim-family kernels walk their
query's tokens in blocks of BLOCK_Q rows with an optional token mask.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _doc_range(starts_ptr, lengths_ptr):
    """(n, start, length) of this program's document: documents are on grid axis 0, because N
    may exceed the 65535 limit of axes 1 and 2; start is int64, because row offsets into a large
    corpus overflow int32."""
    n = tl.program_id(0)
    start = tl.load(starts_ptr + n)
    length = tl.load(lengths_ptr + n)
    return n, start, length


@triton.jit
def _query_rows(qmask_ptr, b, Lq, q0, BLOCK_Q: tl.constexpr, HAS_MASK: tl.constexpr):
    """(rows, in_q, row_ok) of the BLOCK_Q query tokens from row q0 of query b: their indices,
    which of them are < Lq, and which are valid tokens (< Lq and, with HAS_MASK, not masked out
    by the bool mask [B, Lq] at qmask_ptr)."""
    rows = q0 + tl.arange(0, BLOCK_Q)
    in_q = rows < Lq
    row_ok = in_q
    if HAS_MASK:
        keep = tl.load(qmask_ptr + b * Lq + rows, mask=in_q, other=0)
        row_ok = row_ok & (keep != 0)
    return rows, in_q, row_ok
