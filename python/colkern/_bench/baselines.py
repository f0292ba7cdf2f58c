"""What a user runs today without colkern: the baselines every benchmark compares against.

These reproduce the algorithms, not the packages, so benchmarks need neither colpali-engine
nor its model stack installed.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


def colpali_engine_scores(qs: Sequence[Tensor], ps: Sequence[Tensor], batch_size: int = 128) -> Tensor:
    """colpali-engine's `score_multi_vector`: chunks of `batch_size`, zero padding with
    pad_sequence, einsum("bnd,csd->bcns").amax(3).sum(2) in the input dtype, fp32 output.

    Zero padding lets a padded token score 0, so each query token's max is floored at 0 for
    documents shorter than the longest one in their chunk.
    """
    scores: List[Tensor] = []
    for i in range(0, len(qs), batch_size):
        q_batch = pad_sequence(list(qs[i:i + batch_size]), batch_first=True, padding_value=0)
        row = []
        for j in range(0, len(ps), batch_size):
            p_batch = pad_sequence(list(ps[j:j + batch_size]), batch_first=True, padding_value=0)
            row.append(torch.einsum("bnd,csd->bcns", q_batch, p_batch).max(dim=3)[0].sum(dim=2))
        scores.append(torch.cat(row, dim=1))
    return torch.cat(scores, dim=0).to(torch.float32)


def padded_einsum_scores(Q: Tensor, docs: Tensor, batch_size: int = 128) -> Tensor:
    """colpali-engine's arithmetic without its padding copies: Q [B, Lq, D] against an already
    padded docs [N, Ld, D], einsum + amax + sum per chunk of `batch_size` documents. A stronger
    baseline than colpali_engine_scores, which re-pads the list on every call."""
    return torch.cat([torch.einsum("bnd,csd->bcns", Q, docs[j:j + batch_size]).amax(3).sum(2)
                      for j in range(0, docs.shape[0], batch_size)], dim=1).to(torch.float32)


def mm_segment_reduce_scores(Q: Tensor, values: Tensor, offsets: Tensor) -> Tensor:
    """Ragged MaxSim with one big matmul and torch.segment_reduce: Q [B, Lq, D] against packed
    values [T, D] + offsets [N+1] -> [B, N] (every document non-empty)."""
    B, Lq, D = Q.shape
    sim = values @ Q.reshape(B * Lq, D).T  # [T, B*Lq]
    lengths = offsets[1:] - offsets[:-1]
    per_doc = torch.segment_reduce(sim, "max", lengths=lengths, axis=0)  # [N, B*Lq]
    return per_doc.view(-1, B, Lq).sum(2).T.contiguous()


def masked_pool_torch(x: Tensor, mask: Tensor) -> Tensor:
    """The three-op torch pooling a user writes today: masked mean, amax and std (correction 1)
    over dim 1 of x [B, N, D] with bool mask [B, N] -> [B, 3*D] float32."""
    m = mask.unsqueeze(-1)
    count = mask.sum(1, keepdim=True).to(torch.float32)
    xf = x.float()
    mean = (xf * m).sum(1) / count
    amax = xf.masked_fill(~m, float("-inf")).amax(1)
    std = ((((xf - mean.unsqueeze(1)) ** 2) * m).sum(1) / (count - 1)).sqrt()
    return torch.cat([mean, amax, std], 1)
