"""The in-batch contrastive losses of ColBERT / ColPali training on colkern's MaxSim, forward and
backward without the [Nq, Nd, Lq, Ld] similarity tensor that einsum materialises.

They compute what colpali-engine 0.3.18's losses compute on the same embeddings (same values and
gradients, tested): ColbertLoss, ColbertNegativeCELoss, ColbertPairwiseCELoss and
ColbertPairwiseNegativeCELoss, with use_smooth_max=False (hard max, the default there).

colpali-engine's conventions, kept here: embeddings are zero-padded (a padding query token adds
0; a zero document row takes part in the max with similarity 0, exactly as einsum gives), and
normalize_scores divides each query's scores by its number of non-zero tokens
(`Q[:, :, 0] != 0`). With q_mask / document masks or lengths given, the masks are honoured
instead (masked rows never score) and the token count is q_mask.sum(1).

One difference, by construction: where several document rows tie for a query token's max (an
all-zero padding query token ties with every row at 0), torch.amax splits the gradient evenly
over the tied rows and colkern gives it to the lowest one (colkern/ops/maxsim_backward.py). The
loss and the gradients of real tokens are the same; a padding token's dQ is multiplied by the
model's zero attention mask anyway.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops import PackedDocs, maxsim

_OP = "colbert_loss"


def _as_docs(docs, name: str, op: str):
    """A padded [N, Ld, D] tensor, a list of [L_i, D] tensors or PackedDocs -> what maxsim takes,
    and the number of documents."""
    if isinstance(docs, Tensor):
        if docs.dim() != 3:
            raise ValueError(f"{op}: {name} must be a padded [N, Ld, D] tensor, a list of [L, D] tensors "
                             f"or PackedDocs, got shape {tuple(docs.shape)}")
        return docs, docs.shape[0]
    if isinstance(docs, PackedDocs):
        return docs, len(docs)
    docs = list(docs)
    return docs, len(docs)


def _token_counts(Q: Tensor, q_mask: Optional[Tensor], op: str) -> Tensor:
    """Valid query tokens per query (float); raises when a query has none."""
    counts = q_mask.sum(1) if q_mask is not None else (Q[:, :, 0] != 0).sum(1)
    if bool((counts == 0).any()):
        bad = int(torch.nonzero(counts == 0)[0])
        raise ValueError(f"{op}: query {bad} has no valid token (its q_mask, or its embedding rows, "
                         f"remove every token); its scores would all be 0 and its loss meaningless")
    return counts.to(torch.float32)


def _scores(Q: Tensor, docs, q_mask, doc_lengths, doc_mask, normalize_scores: bool, op: str) -> Tensor:
    if not isinstance(Q, Tensor) or Q.dim() != 3:
        raise ValueError(f"{op}: Q must be a [B, Lq, D] tensor, got "
                         f"{tuple(Q.shape) if isinstance(Q, Tensor) else type(Q).__name__}")
    counts = _token_counts(Q, q_mask, op)
    scores = maxsim(Q, docs, q_mask=q_mask, lengths=doc_lengths, mask=doc_mask)
    return scores / counts[:, None] if normalize_scores else scores


def _neg_scores(Q: Tensor, neg_docs, q_mask, neg_lengths, neg_mask, normalize_scores: bool, op: str) -> Tensor:
    """[B, n_neg]: each query against its own negatives neg_docs [B, n_neg, Ld, D]."""
    if not isinstance(neg_docs, Tensor) or neg_docs.dim() != 4 or neg_docs.shape[0] != Q.shape[0]:
        raise ValueError(f"{op}: neg_docs must be [B, n_neg, Ld, D] with B = {Q.shape[0]}, got "
                         f"{tuple(neg_docs.shape) if isinstance(neg_docs, Tensor) else type(neg_docs).__name__}")
    B, K, Ld, D = neg_docs.shape
    flat = neg_docs.reshape(B * K, Ld, D)
    lengths = neg_lengths.reshape(B * K) if neg_lengths is not None else None
    mask = neg_mask.reshape(B * K, Ld) if neg_mask is not None else None
    # One call scores every query against every negative ([B, B*K]); the diagonal blocks are
    # kept. Per-query calls would do B x less arithmetic but pay B x the call overhead, and at
    # training batch sizes the kernel is cheap next to the model.
    scores = _scores(Q, flat, q_mask, lengths, mask, normalize_scores, op)
    rows = torch.arange(B, device=scores.device)
    return scores.view(B, B, K)[rows, rows]


def _filter_high_negatives(scores: Tensor, pos_idx: Tensor, threshold: float, factor: float) -> Tensor:
    """colpali-engine's pos-aware filtering: negatives above threshold x the positive score are
    multiplied by factor (out of place, so autograd sees it)."""
    rows = torch.arange(scores.shape[0], device=scores.device)
    high = scores > threshold * scores[rows, pos_idx][:, None]
    high[rows, pos_idx] = False
    return torch.where(high, scores * factor, scores)


def _check_positives(B: int, N: int, offset: int, op: str) -> None:
    if offset < 0 or offset + B > N:
        raise ValueError(f"{op}: the positive of query b is docs[offset + b]: needs offset + B <= N, got "
                         f"offset {offset}, B {B}, N {N}")


def colbert_loss(Q: Tensor, docs, *, neg_docs: Optional[Tensor] = None, temperature: float = 0.02,
                 normalize_scores: bool = True, in_batch_term_weight: float = 0.5, offset: int = 0,
                 q_mask: Optional[Tensor] = None, doc_lengths: Optional[Tensor] = None,
                 doc_mask: Optional[Tensor] = None, neg_lengths: Optional[Tensor] = None,
                 neg_mask: Optional[Tensor] = None, pos_aware_negative_filtering: bool = False,
                 filter_threshold: float = 0.95, filter_factor: float = 0.5) -> Tensor:
    """In-batch InfoNCE loss of late interaction: query b's positive is docs[offset + b], every
    other document of the batch is a negative.

    Q: [B, Lq, D] (zero-padded, or with bool q_mask [B, Lq]); docs: [N, Ld, D] zero-padded (or
      with doc_lengths [N] / bool doc_mask [N, Ld]), a list of [L_i, D] tensors or PackedDocs,
      N >= offset + B; float32 / float16 / bfloat16 (scores accumulate in fp32).
    neg_docs: optional hard negatives [B, n_neg, Ld', D] (with neg_lengths [B, n_neg] or
      neg_mask [B, n_neg, Ld']): then the loss is colpali-engine's ColbertNegativeCELoss,
      mean(softplus((neg - pos) / temperature)) mixed with this in-batch loss by
      in_batch_term_weight.
    Without neg_docs: colpali-engine's ColbertLoss, cross_entropy(scores / temperature, positives).
    -> scalar float32 loss, differentiable in Q, docs and neg_docs.
    """
    scores = _scores(Q, _as_docs(docs, "docs", _OP)[0], q_mask, doc_lengths, doc_mask, normalize_scores, _OP)
    B, N = scores.shape
    _check_positives(B, N, offset, _OP)
    pos_idx = torch.arange(B, device=scores.device) + offset
    if pos_aware_negative_filtering:
        scores = _filter_high_negatives(scores, pos_idx, filter_threshold, filter_factor)
    in_batch = F.cross_entropy(scores / temperature, pos_idx)
    if neg_docs is None:
        return in_batch
    if not 0 <= in_batch_term_weight <= 1:
        raise ValueError(f"{_OP}: in_batch_term_weight must lie in [0, 1], got {in_batch_term_weight}")
    neg = _neg_scores(Q, neg_docs, q_mask, neg_lengths, neg_mask, normalize_scores, _OP)
    pos = scores[torch.arange(B, device=scores.device), pos_idx]
    loss = F.softplus((neg - pos[:, None]) / temperature).mean()
    if in_batch_term_weight > 0:
        loss = loss * (1 - in_batch_term_weight) + in_batch * in_batch_term_weight
    return loss


def colbert_pairwise_loss(Q: Tensor, docs, *, neg_docs: Optional[Tensor] = None,
                          temperature: Optional[float] = None, normalize_scores: bool = True,
                          in_batch_term_weight: float = 0.5, offset: int = 0,
                          q_mask: Optional[Tensor] = None, doc_lengths: Optional[Tensor] = None,
                          doc_mask: Optional[Tensor] = None, neg_lengths: Optional[Tensor] = None,
                          neg_mask: Optional[Tensor] = None, pos_aware_negative_filtering: bool = False,
                          filter_threshold: float = 0.95, filter_factor: float = 0.5) -> Tensor:
    """Pairwise softplus loss: each query's positive against its hardest in-batch negative,
    mean(softplus((hardest_negative - positive) / temperature)) (colpali-engine's
    ColbertPairwiseCELoss; its rule kept: the hardest negative is the best-scoring document, or
    the second best when the best equals the positive's score).

    Inputs as colbert_loss. neg_docs [B, n_neg, Ld', D]: colpali-engine's
    ColbertPairwiseNegativeCELoss, mean(softplus((neg - pos) / temperature)) over the explicit
    negatives, mixed with the in-batch pairwise loss by in_batch_term_weight.
    temperature: None takes colpali-engine's default of the variant (1.0 in-batch, 0.02 with
    neg_docs; the in-batch term then uses the same temperature, as there).
    -> scalar float32 loss.
    """
    op = "colbert_pairwise_loss"
    if temperature is None:
        temperature = 1.0 if neg_docs is None else 0.02
    scores = _scores(Q, _as_docs(docs, "docs", op)[0], q_mask, doc_lengths, doc_mask, normalize_scores, op)
    B, N = scores.shape
    _check_positives(B, N, offset, op)
    if N < 2:
        raise ValueError(f"{op}: needs at least 2 documents for an in-batch negative, got {N}")
    rows = torch.arange(B, device=scores.device)
    pos_idx = rows + offset
    if pos_aware_negative_filtering:
        scores = _filter_high_negatives(scores, pos_idx, filter_threshold, filter_factor)
    pos = scores[rows, pos_idx]
    top2 = scores.topk(2, dim=1).values
    hardest = torch.where(top2[:, 0] == pos, top2[:, 1], top2[:, 0])
    in_batch = F.softplus((hardest - pos) / temperature).mean()
    if neg_docs is None:
        return in_batch
    if not 0 <= in_batch_term_weight <= 1:
        raise ValueError(f"{op}: in_batch_term_weight must lie in [0, 1], got {in_batch_term_weight}")
    neg = _neg_scores(Q, neg_docs, q_mask, neg_lengths, neg_mask, normalize_scores, op)
    loss = F.softplus((neg - pos[:, None]) / temperature).mean()
    if in_batch_term_weight > 0:
        loss = loss * (1 - in_batch_term_weight) + in_batch * in_batch_term_weight
    return loss
