"""Normalises what users hold (lists, padded batches, packed corpora) into the kernels' form.

Every MaxSim-like op works on one row matrix `values [T, D]` and per-document row ranges
`starts [N]`, `lengths [N]` (int64). Packed corpora and padded batches with prefix lengths map
onto that without copying; only lists and non-prefix masks are gathered.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ._backend import FLOAT_DTYPES
from ._checks import check_dtype


@dataclass(frozen=True)
class PackedDocs:
    """A corpus packed once: `values [T, D]` rows, document n = rows offsets[n]:offsets[n+1]."""

    values: Tensor
    offsets: Tensor  # [N+1] int64

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    @property
    def lengths(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def to(self, device=None, dtype=None) -> "PackedDocs":
        """Moves the corpus to `device` and/or casts its values to `dtype`."""
        return PackedDocs(self.values.to(device=device, dtype=dtype), self.offsets.to(device=device))


Docs = Union[Sequence[Tensor], Tensor, PackedDocs]


def pack(docs: Sequence[Tensor]) -> PackedDocs:
    """Packs a list of `[L_i, D]` tensors into `values [sum L_i, D]` + `offsets [N+1]` int64.

    Do this once per corpus: scoring a list re-packs it on every call.
    """
    if isinstance(docs, Tensor):
        raise TypeError("pack: docs must be a list of [L_i, D] tensors, got a single tensor")
    docs = list(docs)
    if not docs:
        raise ValueError("pack: docs is empty; cannot infer the embedding dimension")
    first = docs[0]
    for i, d in enumerate(docs):
        if not isinstance(d, Tensor) or d.dim() != 2:
            raise ValueError(f"pack: docs[{i}] must be a 2-D [L, D] tensor, got "
                             f"{type(d).__name__ if not isinstance(d, Tensor) else tuple(d.shape)}")
        if d.shape[1] != first.shape[1]:
            raise ValueError(f"pack: docs[{i}] has dim {d.shape[1]} but docs[0] has dim {first.shape[1]}")
        if d.dtype != first.dtype:
            raise ValueError(f"pack: docs[{i}] has dtype {d.dtype} but docs[0] has {first.dtype}")
        if d.device != first.device:
            raise ValueError(f"pack: docs[{i}] is on {d.device} but docs[0] is on {first.device}")
    lengths = torch.tensor([d.shape[0] for d in docs], dtype=torch.int64)
    offsets = torch.zeros(len(docs) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    return PackedDocs(torch.cat(docs, 0).contiguous(), offsets.to(first.device))


def _check_offsets(offsets: Tensor, n_rows: int, op: str) -> None:
    if not isinstance(offsets, Tensor) or offsets.dtype != torch.int64 or offsets.dim() != 1:
        raise ValueError(f"{op}: offsets must be a 1-D int64 tensor [N+1], got "
                         f"{getattr(offsets, 'dtype', type(offsets).__name__)} "
                         f"{tuple(getattr(offsets, 'shape', ()))}")
    if offsets.numel() < 1:
        raise ValueError(f"{op}: offsets must have N+1 >= 1 entries")
    o = offsets.cpu()
    if o[0] < 0 or o[-1] > n_rows:
        raise ValueError(f"{op}: offsets must lie in [0, {n_rows}] (rows of values), got "
                         f"first {int(o[0])}, last {int(o[-1])}")
    if o.numel() > 1 and bool((o[1:] < o[:-1]).any()):
        bad = int(torch.nonzero(o[1:] < o[:-1])[0])
        raise ValueError(f"{op}: offsets must be non-decreasing, but offsets[{bad + 1}] = "
                         f"{int(o[bad + 1])} < offsets[{bad}] = {int(o[bad])}")


def normalize_docs(docs: Docs, *, lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                   offsets: Optional[Tensor] = None, op: str = "maxsim", arg: str = "docs",
                   dtypes=FLOAT_DTYPES):
    """-> (values [T, D] contiguous, starts [N] int64, lengths [N] int64), same device as docs.

    A padded batch whose mask has holes is gathered into packed rows (ops that can skip masked
    rows in place use normalize_rows instead). `arg` names the argument in error messages;
    `dtypes` lists the accepted element types."""
    values, starts, lens, row_mask = normalize_rows(docs, lengths=lengths, mask=mask, offsets=offsets,
                                                    op=op, arg=arg, dtypes=dtypes)
    if row_mask is None:
        return values, starts, lens
    # Every range is a full padded row of the batch here: count the valid rows per document.
    counts = row_mask.view(starts.shape[0], -1).sum(1)
    packed_offsets = torch.zeros(counts.shape[0] + 1, dtype=torch.int64, device=values.device)
    torch.cumsum(counts, 0, out=packed_offsets[1:])
    return values[row_mask].contiguous(), packed_offsets[:-1], counts.to(torch.int64)


def normalize_rows(docs: Docs, *, lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                   offsets: Optional[Tensor] = None, op: str = "maxsim", arg: str = "docs",
                   dtypes=FLOAT_DTYPES, keep_mask: bool = False):
    """-> (values [T, D], starts [N], lengths [N], row_mask [T] bool or None): like
    normalize_docs, but a padded batch whose mask has holes stays in place, with the mask
    flattened to one flag per row of values (None when every row of every range is valid).
    keep_mask=True passes any mask on as row_mask without looking for a prefix mask (saves
    three small torch ops per call, for kernels that take a row mask at no extra cost)."""
    if isinstance(docs, PackedDocs):
        if offsets is not None or lengths is not None or mask is not None:
            raise ValueError(f"{op}: PackedDocs carries its own offsets; do not pass offsets, lengths or mask")
        docs, offsets = docs.values, docs.offsets
    if isinstance(docs, (list, tuple)):
        if offsets is not None or lengths is not None or mask is not None:
            raise ValueError(f"{op}: a list of {arg} takes no offsets, lengths or mask")
        if len(docs) == 0:
            raise ValueError(f"{op}: {arg} is an empty list; pass an empty [0, D] tensor with offsets [0] instead")
        docs = pack(docs)
        docs, offsets = docs.values, docs.offsets
    if not isinstance(docs, Tensor):
        raise TypeError(f"{op}: {arg} must be a list of tensors, a padded [N, Ld, D] tensor, "
                        f"packed values [T, D] with offsets, or PackedDocs; got {type(docs).__name__}")
    check_dtype(docs, dtypes, op, arg)
    if docs.dim() == 2:
        if offsets is None:
            raise ValueError(f"{op}: 2-D {arg} are packed values [T, D] and need offsets [N+1]; "
                             f"for a single one pass {arg}.unsqueeze(0)")
        if lengths is not None or mask is not None:
            raise ValueError(f"{op}: packed {arg} take offsets only, not lengths or mask")
        if isinstance(offsets, Tensor) and offsets.device != docs.device:
            raise ValueError(f"{op}: offsets is on {offsets.device} but {arg} is on {docs.device}")
        _check_offsets(offsets, docs.shape[0], op)
        return docs.contiguous(), offsets[:-1].contiguous(), (offsets[1:] - offsets[:-1]).contiguous(), None
    if docs.dim() != 3:
        raise ValueError(f"{op}: {arg} must be [N, Ld, D] (padded) or [T, D] (packed), got shape {tuple(docs.shape)}")
    if offsets is not None:
        raise ValueError(f"{op}: offsets are for packed [T, D] {arg}, but {arg} is padded {tuple(docs.shape)}")
    if lengths is not None and mask is not None:
        raise ValueError(f"{op}: pass either lengths or mask for padded {arg}, not both")
    N, Ld, D = docs.shape
    if mask is not None:
        if mask.dtype != torch.bool or tuple(mask.shape) != (N, Ld):
            raise ValueError(f"{op}: mask must be bool [N, Ld] = [{N}, {Ld}], got {mask.dtype} {tuple(mask.shape)}")
        if mask.device != docs.device:
            raise ValueError(f"{op}: mask is on {mask.device} but {arg} is on {docs.device}")
        if keep_mask:
            starts = torch.arange(N, dtype=torch.int64, device=docs.device) * Ld
            full = torch.full((N,), Ld, dtype=torch.int64, device=docs.device)
            return docs.contiguous().view(N * Ld, D), starts, full, mask.reshape(-1).contiguous()
        counts = mask.sum(1)
        prefix = torch.arange(Ld, device=mask.device)[None, :] < counts[:, None]
        if bool(torch.equal(prefix, mask)):
            lengths = counts.to(torch.int64)
        else:  # holes in the mask: whole padded rows as ranges, the mask marks the valid rows
            starts = torch.arange(N, dtype=torch.int64, device=docs.device) * Ld
            full = torch.full((N,), Ld, dtype=torch.int64, device=docs.device)
            return docs.contiguous().view(N * Ld, D), starts, full, mask.reshape(-1).contiguous()
    if lengths is None:
        lengths = torch.full((N,), Ld, dtype=torch.int64, device=docs.device)
    else:
        if not isinstance(lengths, Tensor) or lengths.dim() != 1 or lengths.shape[0] != N or \
                lengths.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"{op}: lengths must be an int [N] = [{N}] tensor, got "
                             f"{getattr(lengths, 'dtype', type(lengths).__name__)} {tuple(getattr(lengths, 'shape', ()))}")
        if lengths.device != docs.device:
            raise ValueError(f"{op}: lengths is on {lengths.device} but {arg} is on {docs.device}")
        lengths = lengths.to(torch.int64)
        if N and (bool((lengths < 0).any()) or bool((lengths > Ld).any())):
            raise ValueError(f"{op}: lengths must lie in [0, {Ld}] (the padded length)")
    starts = torch.arange(N, dtype=torch.int64, device=docs.device) * Ld
    return docs.contiguous().view(N * Ld, D), starts, lengths.contiguous(), None


def normalize_q_mask(q_mask: Optional[Tensor], shape, squeeze: bool, device, op: str,
                     docs_name: str = "docs") -> Optional[Tensor]:
    """Checks a bool query mask against the [B, Lq] query shape; a 1-D mask goes with a single
    query (squeeze). -> contiguous [B, Lq] or None."""
    if q_mask is None:
        return None
    if squeeze and isinstance(q_mask, Tensor) and q_mask.dim() == 1:
        q_mask = q_mask.unsqueeze(0)
    if not isinstance(q_mask, Tensor) or q_mask.dtype != torch.bool or tuple(q_mask.shape) != tuple(shape):
        raise ValueError(f"{op}: q_mask must be bool [B, Lq] = {list(shape)}, got "
                         f"{getattr(q_mask, 'dtype', type(q_mask).__name__)} {tuple(getattr(q_mask, 'shape', ()))}")
    if q_mask.device != device:
        raise ValueError(f"{op}: q_mask is on {q_mask.device} but {docs_name} is on {device}")
    return q_mask.contiguous()


def normalize_queries(Q: Tensor, q_mask: Optional[Tensor], dim: int, dtype: torch.dtype,
                      device: torch.device, op: str = "maxsim"):
    """-> (Q [B, Lq, D] contiguous in `dtype`, q_mask [B, Lq] bool or None, squeeze)."""
    if not isinstance(Q, Tensor):
        raise TypeError(f"{op}: Q must be a tensor [Lq, D] or [B, Lq, D], got {type(Q).__name__}")
    check_dtype(Q, FLOAT_DTYPES, op, "Q")
    squeeze = Q.dim() == 2
    if squeeze:
        Q = Q.unsqueeze(0)
    if Q.dim() != 3:
        raise ValueError(f"{op}: Q must be [Lq, D] or [B, Lq, D], got shape {tuple(Q.shape)}")
    if Q.shape[2] != dim:
        raise ValueError(f"{op}: docs has dim {dim} but Q has dim {Q.shape[2]}")
    if Q.device != device:
        raise ValueError(f"{op}: Q is on {Q.device} but docs is on {device}")
    q_mask = normalize_q_mask(q_mask, Q.shape[:2], squeeze, device, op)
    # Queries follow the corpus dtype: the corpus is the large operand and is never converted.
    return Q.to(dtype).contiguous(), q_mask, squeeze
