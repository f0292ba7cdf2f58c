"""Batched MaxSim (late interaction) as torch ops, with fused top-k.

    score[b, n] = sum over valid query tokens i of max over tokens j of doc n of <Q[b, i], d_j>

Conventions, identical on every backend:
  * accumulation and output are float32 whatever the input dtype;
  * Q is cast to the corpus dtype (the corpus, the large operand, is never converted);
  * padding and masked query tokens take no part; an empty document scores 0 for every query
    (the empty sum; colpali-engine's zero padding also gives 0 there);
  * a NaN product makes that query token's max NaN, hence the score NaN.

Ops: torch.ops.colkern.maxsim(Q, q_mask, values, starts, lengths) -> [B, N] float32
     torch.ops.colkern.maxsim_topk(Q, q_mask, values, starts, lengths, k) -> ([B, k'], [B, k'])
with Q [B, Lq, D], q_mask [B, Lq] bool or None, values [T, D], starts/lengths [N] int64 and
k' = min(k, N). The public functions below accept lists, padded batches and packed corpora.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ._backend import _C, dtype_code
from ._checks import check_contiguous, check_k, check_q_mask, check_ranges
from ._inputs import Docs, normalize_docs, normalize_queries
from ._registry import define_op
from ._topk import cuda_topk, fake_topk, topk_outputs


def _cpu_call(kernel, Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
              lengths: Tensor, **outputs) -> None:
    """Runs _C.maxsim_scores or _C.maxsim_topk on the op's checked tensors; `outputs` gives k
    and the output pointers."""
    B, Lq, D = Q.shape
    kernel(q_ptr=Q.data_ptr(), q_dtype=dtype_code(Q.dtype), B=B, Lq=Lq, D=D,
           q_mask_ptr=q_mask.data_ptr() if q_mask is not None else 0, values_ptr=values.data_ptr(),
           values_dtype=dtype_code(values.dtype), T=values.shape[0], starts_ptr=starts.data_ptr(),
           lengths_ptr=lengths.data_ptr(), N=starts.shape[0], num_threads=torch.get_num_threads(),
           **outputs)


def _check_op_inputs(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                     lengths: Tensor) -> None:
    if Q.dim() != 3 or values.dim() != 2 or Q.shape[2] != values.shape[1]:
        raise ValueError(f"maxsim: Q must be [B, Lq, D] and values [T, D] with the same D, got "
                         f"{tuple(Q.shape)} and {tuple(values.shape)}")
    if Q.dtype != values.dtype:
        raise ValueError(f"maxsim: Q dtype {Q.dtype} differs from values dtype {values.dtype}")
    check_ranges(starts, lengths, "maxsim")
    check_q_mask(q_mask, Q, "maxsim")
    check_contiguous("maxsim", Q=Q, values=values, starts=starts, lengths=lengths, q_mask=q_mask)


def _maxsim_cpu(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                lengths: Tensor) -> Tensor:
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    out = torch.empty(Q.shape[0], starts.shape[0], dtype=torch.float32)
    _cpu_call(_C.maxsim_scores, Q, q_mask, values, starts, lengths, out_ptr=out.data_ptr())
    return out


def _maxsim_cuda(Q, q_mask, values, starts, lengths):
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    from ..triton_kernels.maxsim import maxsim_triton  # Triton is imported only for CUDA work

    return maxsim_triton(Q, q_mask, values, starts, lengths)


def _maxsim_fake(Q, q_mask, values, starts, lengths):
    return Q.new_empty((Q.shape[0], starts.shape[0]), dtype=torch.float32)


def _maxsim_topk_cpu(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                     lengths: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    scores, indices = topk_outputs(Q.shape[0], starts.shape[0], k, "maxsim_topk")
    _cpu_call(_C.maxsim_topk, Q, q_mask, values, starts, lengths, k=k,
              out_scores_ptr=scores.data_ptr(), out_indices_ptr=indices.data_ptr())
    return scores, indices


def _maxsim_topk_cuda(Q, q_mask, values, starts, lengths, k):
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    from ..triton_kernels.maxsim import maxsim_triton

    return cuda_topk(lambda lo, hi: maxsim_triton(Q, q_mask, values, starts[lo:hi], lengths[lo:hi]),
                     Q, starts.shape[0], k, "maxsim_topk")


def _maxsim_topk_fake(Q, q_mask, values, starts, lengths, k):
    return fake_topk(Q, starts, k)


define_op("maxsim(Tensor Q, Tensor? q_mask, Tensor values, Tensor starts, Tensor lengths) -> Tensor",
          cpu=_maxsim_cpu, cuda=_maxsim_cuda, fake=_maxsim_fake)
define_op("maxsim_topk(Tensor Q, Tensor? q_mask, Tensor values, Tensor starts, Tensor lengths, SymInt k)"
          " -> (Tensor, Tensor)", cpu=_maxsim_topk_cpu, cuda=_maxsim_topk_cuda, fake=_maxsim_topk_fake)


# ---------------------------------------------------------------------------------------------
# Public API


def _prepare(Q, docs, q_mask, lengths, mask, offsets, op):
    values, starts, lens = normalize_docs(docs, lengths=lengths, mask=mask, offsets=offsets, op=op)
    Qn, qm, squeeze = normalize_queries(Q, q_mask, values.shape[1], values.dtype, values.device, op=op)
    return Qn, qm, values, starts, lens, squeeze


def maxsim(Q: Tensor, docs: Docs, *, q_mask: Optional[Tensor] = None,
           lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
           offsets: Optional[Tensor] = None) -> Tensor:
    """Late-interaction scores of queries against documents.

    Q: [Lq, D] (returns [N]) or [B, Lq, D] (returns [B, N]); float32/float16/bfloat16.
    q_mask: optional bool [B, Lq] ([Lq] for a single query); False tokens contribute nothing.
    docs: a list of [L_i, D] tensors; a padded [N, Ld, D] tensor with `lengths` [N] or bool
      `mask` [N, Ld] (or neither: all rows valid); packed values [T, D] with int64 `offsets`
      [N+1]; or a PackedDocs from colkern.pack(list) (pack once per corpus).
    -> float32 scores, fp32 accumulation. Empty documents score 0.

    Differentiable with respect to Q and the document values (every input form): the gradient
    of each query token's max goes to one row, the lowest-index row on ties; masked tokens and
    empty documents get zero gradient (rules: colkern/ops/maxsim_backward.py).
    """
    Qn, qm, values, starts, lens, squeeze = _prepare(Q, docs, q_mask, lengths, mask, offsets, "maxsim")
    if torch.is_grad_enabled() and (Qn.requires_grad or values.requires_grad):
        # Training: the forward also records each token's winning row (int32 [B, Lq, N]), and
        # the backward scatters through it (ops/maxsim_backward.py). Inference never pays for it.
        out, _ = torch.ops.colkern.maxsim_argmax(Qn, qm, values, starts, lens)
    else:
        out = torch.ops.colkern.maxsim(Qn, qm, values, starts, lens)
    return out[0] if squeeze else out


def maxsim_topk(Q: Tensor, docs: Docs, k: int, *, q_mask: Optional[Tensor] = None,
                lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                offsets: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """The k best documents per query, found during the scan (memory O(B*k), not O(B*N)).

    Same inputs as maxsim. -> (scores [B, k'] float32, indices [B, k'] int64), best first, with
    k' = min(k, N); ties go to the lower index and NaN ranks first (as torch.topk). A 2-D Q gives
    [k'] results.
    """
    check_k(k, "maxsim_topk")
    Qn, qm, values, starts, lens, squeeze = _prepare(Q, docs, q_mask, lengths, mask, offsets, "maxsim_topk")
    s, i = torch.ops.colkern.maxsim_topk(Qn, qm, values, starts, lens, k)
    return (s[0], i[0]) if squeeze else (s, i)


def maxsim_rows_ref(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                    lengths: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """The reference on the ops' own form: Q [B, Lq, D], q_mask [B, Lq] or None, document n =
    values[starts[n] : starts[n] + lengths[n]]; one matmul per document in `dtype`.
    -> float32 [B, N] (empty documents 0, masked tokens ignored)."""
    B, Lq, _ = Q.shape
    q = Q.to(dtype)
    valid = q_mask if q_mask is not None else torch.ones(B, Lq, dtype=torch.bool, device=Q.device)
    out = torch.zeros(B, starts.shape[0], dtype=dtype, device=Q.device)
    for n, (s, l) in enumerate(zip(starts.tolist(), lengths.tolist())):
        if l:
            sim = q @ values[s:s + l].to(dtype).T  # [B, Lq, l]
            out[:, n] = torch.where(valid, sim.amax(2), 0).sum(1)
    return out.float()


def maxsim_ref(Q: Tensor, docs: Docs, *, q_mask: Optional[Tensor] = None,
               lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
               offsets: Optional[Tensor] = None, dtype: torch.dtype = torch.float64) -> Tensor:
    """Pure-torch reference: one matmul per document in `dtype` (after casting Q to the corpus
    dtype, as the kernels do). Same inputs, conventions and output shape as maxsim."""
    Qn, qm, values, starts, lens, squeeze = _prepare(Q, docs, q_mask, lengths, mask, offsets, "maxsim_ref")
    out = maxsim_rows_ref(Qn, qm, values, starts, lens, dtype)
    return out[0] if squeeze else out
