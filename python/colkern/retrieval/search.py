"""Two-stage late-interaction search over a MultiVectorIndex.

Stage 1 scores every document with a cheap op and keeps the top k * oversample candidates per
query (fused top-k: memory O(B * k * oversample), never O(B * N)):
  "hamming"  queries binarised with colkern.pack_bits, then maxsim_hamming (dim - 2 * hamming
             per token pair): the cheapest, reads only the packed bits;
  "bits"     float queries against the packed bits read as +-1 (maxsim_bits, mode "pm1");
  "float"    exact MaxSim on the index's float vectors (needs keep_float); no stage 2 follows.
Stage 2 rescores only the candidates (their row ranges are passed to the ops, nothing is copied)
and returns the top k:
  "float"    exact MaxSim on the float vectors (needs an index built with keep_float=True);
  "bits"     maxsim_bits pm1 (useful after a hamming stage 1 on a bits-only index);
  None       no rescoring: the stage-1 order and scores are the result.
Candidates are rescored in increasing document order, so ties in stage 2 go to the lower
document index, as in colkern.maxsim_topk over the whole corpus: with oversample large enough to
keep every document, search(..., rescore="float") equals exact float top-k.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from ..ops import FLOAT_DTYPES, normalize_queries, pack_bits
from .index import MultiVectorIndex

STAGES = ("hamming", "bits", "float")
RESCORES = ("float", "bits", None)


@dataclass(frozen=True)
class SearchResult:
    """What search() returns. B queries (shapes lose the B axis for a single [Lq, dim] query);
    k' = min(k, N) results and c' = min(ceil(k * oversample), N) candidates per query.

    ids:        [B][k'] lists of document ids (str), best first ([k'] for a single query).
    indices:    int64 [B, k'] document positions in the index (index.ids[i] is the id).
    scores:     float32 [B, k'] the final scores, of the kind named by `score_kind`.
    score_kind: "float" (exact MaxSim on the float vectors), "bits" (maxsim_bits pm1) or
                "hamming" (maxsim_hamming): the last stage that ran.
    stage1, rescore: the stages used (rescore None when no stage 2 ran).
    candidate_indices / candidate_scores: int64 / float32 [B, c'], stage 1's candidates best
                first with their stage-1 scores, when return_candidates=True; else None.
    """

    ids: Union[List[List[str]], List[str]]
    indices: Tensor
    scores: Tensor
    score_kind: str
    stage1: str
    rescore: Optional[str]
    candidate_indices: Optional[Tensor] = None
    candidate_scores: Optional[Tensor] = None


def check_query_tensor(Q, dim: int, op: str) -> None:
    """Q must be a float [Lq, dim] or [B, Lq, dim] tensor of the index's dim; errors name `op`."""
    if not isinstance(Q, Tensor):
        raise TypeError(f"{op}: Q must be a tensor [Lq, dim] or [B, Lq, dim], got {type(Q).__name__}")
    if Q.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: Q must be float32, float16 or bfloat16, got {Q.dtype}")
    if Q.dim() not in (2, 3):
        raise ValueError(f"{op}: Q must be [Lq, dim] or [B, Lq, dim], got shape {tuple(Q.shape)}")
    if Q.shape[-1] != dim:
        raise ValueError(f"{op}: Q has dim {Q.shape[-1]} but the index has dim {dim}")

def search(Q: Tensor, index: MultiVectorIndex, k: int, *, stage1: str = "hamming", oversample: float = 10,
           rescore: Optional[str] = "float", q_mask: Optional[Tensor] = None,
           return_candidates: bool = False) -> SearchResult:
    """Top-k documents of `index` for each query, by a cheap stage 1 and an exact(er) stage 2.

    Q: float [Lq, dim] or [B, Lq, dim] (float32/float16/bfloat16); q_mask: optional bool
    [Lq] / [B, Lq], False tokens are ignored. k >= 1. stage1: "hamming" | "bits" | "float";
    oversample >= 1: stage 1 keeps ceil(k * oversample) candidates; rescore: "float" | "bits" |
    None (see the module docs). With stage1="float" the float scores are already exact, so
    rescore "float" and None both mean "no stage 2" ("bits" is refused).
    -> SearchResult (ids, indices, scores, optionally the stage-1 candidates).
    """
    op = "search"
    if not isinstance(index, MultiVectorIndex):
        raise TypeError(f"{op}: index must be a colkern MultiVectorIndex, got {type(index).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{op}: k must be a positive int, got {k!r}")
    if stage1 not in STAGES:
        raise ValueError(f"{op}: unknown stage1 {stage1!r}; choose one of {', '.join(map(repr, STAGES))}")
    if rescore not in RESCORES:
        raise ValueError(f"{op}: unknown rescore {rescore!r}; choose one of {', '.join(map(repr, RESCORES))}")
    if isinstance(oversample, bool) or not isinstance(oversample, (int, float)) or not oversample >= 1 \
            or not math.isfinite(oversample):
        raise ValueError(f"{op}: oversample must be a number >= 1, got {oversample!r}")
    if stage1 == "float" and rescore == "bits":
        raise ValueError(f"{op}: rescore='bits' after stage1='float' would replace exact scores by "
                         f"approximate ones; use rescore='float' or None")
    if (stage1 == "float" or rescore == "float") and index.floats is None:
        which = "stage1='float'" if stage1 == "float" else "rescore='float'"
        raise ValueError(f"{op}: {which} needs float vectors, but this index holds bits only (built with "
                         f"keep_float=False); use stage1='hamming'/'bits' with rescore='bits' or None")
    check_query_tensor(Q, index.dim, op)
    Qn, qm, squeeze = normalize_queries(Q, q_mask, index.dim, Q.dtype, index.bits.device, op=op)

    starts, lengths = index.ranges()
    n_cand = max(k, math.ceil(k * oversample))
    scores, indices, cand_s, cand_i, kind, used = _search_ranges(
        Qn, qm, index.dim, k, n_cand, stage1, rescore, index.bits, starts, lengths, index.floats, starts, lengths)
    rows = indices.tolist()
    ids = [[index.ids[i] for i in row] for row in rows]
    if squeeze:
        ids, scores, indices = ids[0], scores[0], indices[0]
        cand_s, cand_i = cand_s[0], cand_i[0]
    return SearchResult(ids=ids, indices=indices, scores=scores, score_kind=kind, stage1=stage1, rescore=used,
                        candidate_indices=cand_i if return_candidates else None,
                        candidate_scores=cand_s if return_candidates else None)


def _search_ranges(Q: Tensor, q_mask: Optional[Tensor], dim: int, k: int, n_cand: int, stage1: str,
                   rescore: Optional[str], bits: Tensor, bit_starts: Tensor, bit_lengths: Tensor,
                   floats: Optional[Tensor], float_starts: Tensor, float_lengths: Tensor
                   ) -> Tuple[Tensor, Tensor, Tensor, Tensor, str, Optional[str]]:
    """search() on raw row ranges: document n = bits[bit_starts[n] : + bit_lengths[n]] and
    floats[float_starts[n] : + float_lengths[n]] (any ranges, e.g. pages sharing one pool of
    vectors in benchmarks). Q [B, Lq, dim] contiguous, q_mask [B, Lq] or None, inputs checked.
    -> (scores [B, k'], indices [B, k'], candidate scores, candidate indices, score kind, rescore used)."""
    ops = torch.ops.colkern
    if stage1 == "hamming":
        cand_s, cand_i = ops.maxsim_hamming_topk(pack_bits(Q), q_mask, bits, bit_starts, bit_lengths, dim, n_cand)
    elif stage1 == "bits":
        cand_s, cand_i = ops.maxsim_bits_topk(Q, q_mask, bits, bit_starts, bit_lengths, dim, "pm1", n_cand)
    else:
        cand_s, cand_i = ops.maxsim_topk(Q.to(floats.dtype).contiguous(), q_mask, floats, float_starts,
                                         float_lengths, n_cand)
    if rescore is None or rescore == stage1:  # stage 1's own scores: nothing to rescore
        return cand_s[:, :k], cand_i[:, :k], cand_s, cand_i, stage1, None
    B = Q.shape[0]
    keep = min(k, cand_i.shape[1])
    scores = torch.empty(B, keep, dtype=torch.float32, device=Q.device)
    indices = torch.empty(B, keep, dtype=torch.int64, device=Q.device)
    if rescore == "float":
        Qr, values, st_all, ln_all = Q.to(floats.dtype).contiguous(), floats, float_starts, float_lengths
    else:
        Qr, values, st_all, ln_all = Q, bits, bit_starts, bit_lengths
    for b in range(B):
        if keep == 0:
            break
        cand = torch.sort(cand_i[b]).values  # document order: stage-2 ties go to the lower index
        st, ln = st_all[cand].contiguous(), ln_all[cand].contiguous()
        qb = Qr[b:b + 1]
        mb = q_mask[b:b + 1] if q_mask is not None else None
        if rescore == "float":
            s, j = ops.maxsim_topk(qb, mb, values, st, ln, keep)
        else:
            s, j = ops.maxsim_bits_topk(qb, mb, values, st, ln, dim, "pm1", keep)
        scores[b] = s[0]
        indices[b] = cand[j[0]]
    return scores, indices, cand_s, cand_i, rescore, rescore
