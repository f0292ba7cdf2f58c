"""Top-k plumbing shared by the *_topk ops: CPU output buffers, fake outputs for torch.compile,
and the chunked top-k of the CUDA paths (whose Triton kernels only score)."""
from __future__ import annotations

from typing import Callable, Tuple

import torch
from torch import Tensor

# Documents scored per step of the chunked GPU top-k: bounds its memory to B * (chunk + k).
_GPU_TOPK_CHUNK = 1 << 16


def topk_outputs(B: int, N: int, k: int, op: str) -> Tuple[Tensor, Tensor]:
    """Checks k and allocates the CPU top-k outputs: [B, min(k, N)] float32 and int64."""
    if k < 1:
        raise ValueError(f"{op}: k must be >= 1, got {k}")
    keep = min(k, N)
    return torch.empty(B, keep, dtype=torch.float32), torch.empty(B, keep, dtype=torch.int64)


def fake_topk(Q: Tensor, starts: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """Fake (meta) top-k outputs, [B, min(k, N)] with a symbolic N."""
    keep = torch.sym_min(k, starts.shape[0])
    return (Q.new_empty((Q.shape[0], keep), dtype=torch.float32),
            Q.new_empty((Q.shape[0], keep), dtype=torch.int64))


def chunked_topk(score_chunk: Callable[[int, int], Tensor], n_docs: int, k: int,
                 chunk: int = _GPU_TOPK_CHUNK) -> Tuple[Tensor, Tensor]:
    """Top-k over documents scored `chunk` at a time: memory O(B * (chunk + k)), not O(B * N).

    score_chunk(lo, hi) -> [B, hi - lo] float32. Order matches the CPU kernel: NaN first, then
    higher score, then lower index (a stable sort over candidates kept in index order).
    """
    best_s = best_i = None
    for lo in range(0, n_docs, chunk):
        hi = min(lo + chunk, n_docs)
        s = score_chunk(lo, hi)
        i = torch.arange(lo, hi, device=s.device).expand(s.shape[0], -1)
        if best_s is not None:
            s, i = torch.cat([best_s, s], 1), torch.cat([best_i, i], 1)
        order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
        best_s, best_i = s.gather(1, order), i.gather(1, order)
    return best_s, best_i


def cuda_topk(score_chunk: Callable[[int, int], Tensor], Q: Tensor, N: int, k: int,
              op: str) -> Tuple[Tensor, Tensor]:
    """GPU top-k of N documents scored by score_chunk(lo, hi), via chunked_topk."""
    if k < 1:
        raise ValueError(f"{op}: k must be >= 1, got {k}")
    if N == 0:
        empty = Q.new_empty((Q.shape[0], 0), dtype=torch.float32)
        return empty, empty.to(torch.int64)
    return chunked_topk(score_chunk, N, k)
