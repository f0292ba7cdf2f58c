"""Read-ahead of the row ranges a search stage is about to score (madvise MADV_WILLNEED).

An index larger than RAM keeps its fp16 vectors on disk; the rescoring stage then reads a few
hundred candidates' rows, 64 KB each for a page of 250 vectors. Faulted in one page at a time
while the kernel runs, those reads are serial; announced together before the kernel starts, the
kernel queues them all at once and the disk serves them in parallel. On memory that is already
resident (or not a file mapping) the advice costs a system call and changes nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys
from typing import Optional

import torch
from torch import Tensor

_MADV_WILLNEED = 3
_PAGE = mmap.PAGESIZE


def _load_madvise() -> Optional[object]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


_madvise = _load_madvise()


def prefetch_rows(values: Tensor, starts: Tensor, lengths: Tensor) -> int:
    """Advises the kernel to read rows [starts[i], starts[i] + lengths[i]) of the 2-D CPU tensor
    `values` ahead. Ranges whose pages touch or overlap are merged first, so neighbouring
    documents (the bits stage's candidates are often a few KB apart) cost one system call.
    Advice only: failures are ignored. -> the number of madvise calls made."""
    if _madvise is None or values.dim() != 2 or values.device.type != "cpu" or values.numel() == 0:
        return 0
    row_bytes = values.stride(0) * values.element_size()
    base = values.data_ptr()
    keep = lengths > 0
    lo = base + starts[keep].to(torch.int64) * row_bytes
    hi = lo + lengths[keep].to(torch.int64) * row_bytes
    lo = lo - lo % _PAGE
    order = torch.argsort(lo)
    n = 0
    cur_lo = cur_hi = None
    for a, b in zip(lo[order].tolist(), hi[order].tolist()):
        if cur_hi is not None and a <= cur_hi + (-cur_hi % _PAGE):  # same or next page: extend
            cur_hi = max(cur_hi, b)
            continue
        if cur_hi is not None:
            _madvise(cur_lo, cur_hi - cur_lo, _MADV_WILLNEED)
            n += 1
        cur_lo, cur_hi = a, b
    if cur_hi is not None:
        _madvise(cur_lo, cur_hi - cur_lo, _MADV_WILLNEED)
        n += 1
    return n


def prefetch_whole(t: Tensor) -> int:
    """Advises the kernel to read all of the contiguous CPU tensor `t` ahead (one call, none for
    an empty or non-contiguous tensor). -> the number of madvise calls made."""
    if t.numel() == 0 or not t.is_contiguous():
        return 0
    return prefetch_rows(t.view(-1, 1), torch.zeros(1, dtype=torch.int64), torch.tensor([t.numel()]))
