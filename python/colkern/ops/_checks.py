"""Argument checks shared by the op modules. torch.ops.colkern.* are public, so each op checks
what its kernels rely on even though the Python wrappers already produce conforming tensors.
Messages name the op and the argument: `maxsim: q_mask must be bool [2, 5]`."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor


def check_dtype(t: Tensor, dtypes: Sequence[torch.dtype], op: str, arg: str) -> None:
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise ValueError(f"{op}: {arg} must be {names}, got {t.dtype}")


def check_ranges(starts: Tensor, lengths: Tensor, op: str) -> None:
    """Row ranges of the documents (pages): int64 [N] each. Their bounds are checked by the
    kernels' callers in C++, which know the number of rows."""
    if starts.dtype != torch.int64 or lengths.dtype != torch.int64 or starts.dim() != 1 \
            or starts.shape != lengths.shape:
        raise ValueError(f"{op}: starts and lengths must be int64 [N] tensors of the same shape")


def check_q_mask(q_mask: Optional[Tensor], Q: Tensor, op: str) -> None:
    if q_mask is not None and (q_mask.dtype != torch.bool or q_mask.shape != Q.shape[:2]):
        raise ValueError(f"{op}: q_mask must be bool {list(Q.shape[:2])}")


def check_contiguous(op: str, **tensors: Optional[Tensor]) -> None:
    """The kernels index raw storage: every tensor given (None skipped) must be contiguous."""
    for name, t in tensors.items():
        if t is not None and not t.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous")


def check_k(k, op: str) -> None:
    """k of the public *_topk functions: a positive int (a bool is not one)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{op}: k must be a positive int, got {k!r}")
