"""The candidate stage's reduction in C++ (csrc/cpu/centroid_scores/): approximate document scores
of one shard from the inverted lists its query tokens probe. Used by colkern.retrieval.centroids;
CPU only (the index lives in host memory, memory-mapped).

    docs, scores = centroid_scores(list_offsets, list_docs, n_docs, cent, delta, allowed=None)

Per document of a probed list: the sum over query tokens t = 0 .. Lq - 1, in that order and in
float32 starting from 0, of the largest delta[t] among token t's probed lists holding it. A
document's score depends only on its own entries (unlike a matrix reduction, whose float sums
round with the layout), so shards and Ray actors score their documents independently and equal
the single process bit for bit.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ._backend import _C


def _check(t, name: str, dtype: torch.dtype, dim: int) -> Tensor:
    if not isinstance(t, Tensor) or t.dtype != dtype or t.dim() != dim or t.device.type != "cpu":
        what = f"{t.dtype} {tuple(t.shape)} on {t.device}" if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"centroid_scores: {name} must be a {dim}-D {dtype} CPU tensor, got {what}")
    return t.contiguous()


def centroid_scores(list_offsets: Tensor, list_docs: Tensor, n_docs: int, cent: Tensor, delta: Tensor,
                    allowed: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """list_offsets int64 [K + 1], list_docs int32 [P] (local ids < n_docs), cent int64 [Lq, p],
    delta float32 [Lq, p] (rows descending, as centroids.probe returns them), allowed bool
    [n_docs] or None. -> (local document ids int64 [U] ascending, scores float32 [U])."""
    list_offsets = _check(list_offsets, "list_offsets", torch.int64, 1)
    list_docs = _check(list_docs, "list_docs", torch.int32, 1)
    cent = _check(cent, "cent", torch.int64, 2)
    delta = _check(delta, "delta", torch.float32, 2)
    if cent.shape != delta.shape:
        raise ValueError(f"centroid_scores: cent {tuple(cent.shape)} and delta {tuple(delta.shape)} differ in shape")
    if isinstance(n_docs, bool) or not isinstance(n_docs, int) or n_docs < 0:
        raise ValueError(f"centroid_scores: n_docs must be a non-negative int, got {n_docs!r}")
    if list_offsets.numel() < 1:
        raise ValueError("centroid_scores: list_offsets must hold K + 1 >= 1 offsets")
    if allowed is not None:
        allowed = _check(allowed, "allowed", torch.bool, 1)
        if allowed.numel() != n_docs:
            raise ValueError(f"centroid_scores: allowed has {allowed.numel()} entries for {n_docs} documents")
    out_docs = torch.empty(n_docs, dtype=torch.int64)
    out_scores = torch.empty(n_docs, dtype=torch.float32)
    n = _C.centroid_scores(list_offsets_ptr=list_offsets.data_ptr(), K=list_offsets.numel() - 1,
                           list_docs_ptr=list_docs.data_ptr(), P=list_docs.numel(), n_docs=n_docs,
                           cent_ptr=cent.data_ptr(), delta_ptr=delta.data_ptr(), Lq=cent.shape[0], p=cent.shape[1],
                           allowed_ptr=allowed.data_ptr() if allowed is not None else 0,
                           out_docs_ptr=out_docs.data_ptr(), out_scores_ptr=out_scores.data_ptr())
    return out_docs[:n], out_scores[:n]
