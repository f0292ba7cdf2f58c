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

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from .. import _C
from .._backend import dtype_code
from ._docs import Docs, normalize_docs, normalize_queries

# Documents scored per step of the chunked GPU top-k: bounds its memory to B * (chunk + k).
_GPU_TOPK_CHUNK = 1 << 16


def _cpu_args(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor, lengths: Tensor):
    B, Lq, D = Q.shape
    mask_ptr = q_mask.data_ptr() if q_mask is not None else 0
    return (Q.data_ptr(), dtype_code(Q.dtype), B, Lq, D, mask_ptr, values.data_ptr(),
            dtype_code(values.dtype), values.shape[0], starts.data_ptr(), lengths.data_ptr(),
            starts.shape[0])


def _check_op_inputs(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                     lengths: Tensor) -> None:
    # The op is public (torch.ops.colkern.maxsim), so it checks what the kernels rely on even
    # though the Python wrappers already produce conforming tensors.
    if Q.dim() != 3 or values.dim() != 2 or Q.shape[2] != values.shape[1]:
        raise ValueError(f"maxsim: Q must be [B, Lq, D] and values [T, D] with the same D, got "
                         f"{tuple(Q.shape)} and {tuple(values.shape)}")
    if Q.dtype != values.dtype:
        raise ValueError(f"maxsim: Q dtype {Q.dtype} differs from values dtype {values.dtype}")
    if starts.dtype != torch.int64 or lengths.dtype != torch.int64 or starts.shape != lengths.shape \
            or starts.dim() != 1:
        raise ValueError("maxsim: starts and lengths must be int64 [N] tensors of the same shape")
    if q_mask is not None and (q_mask.dtype != torch.bool or q_mask.shape != Q.shape[:2]):
        raise ValueError(f"maxsim: q_mask must be bool {list(Q.shape[:2])}")
    for name, t in (("Q", Q), ("values", values), ("starts", starts), ("lengths", lengths),
                    ("q_mask", q_mask)):
        if t is not None and not t.is_contiguous():
            raise ValueError(f"maxsim: {name} must be contiguous")


@torch.library.custom_op("colkern::maxsim", mutates_args=(), device_types="cpu")
def _maxsim_op(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
               lengths: Tensor) -> Tensor:
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    out = torch.empty(Q.shape[0], starts.shape[0], dtype=torch.float32)
    _C.maxsim_scores(*_cpu_args(Q, q_mask, values, starts, lengths), out.data_ptr(),
                     torch.get_num_threads())
    return out


@_maxsim_op.register_fake
def _(Q, q_mask, values, starts, lengths):
    return Q.new_empty((Q.shape[0], starts.shape[0]), dtype=torch.float32)


@_maxsim_op.register_kernel("cuda")
def _(Q, q_mask, values, starts, lengths):
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    from ..triton_kernels.maxsim import maxsim_triton  # Triton is imported only for CUDA work

    return maxsim_triton(Q, q_mask, values, starts, lengths)


@torch.library.custom_op("colkern::maxsim_topk", mutates_args=(), device_types="cpu")
def _maxsim_topk_op(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                    lengths: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    scores, indices = topk_outputs(Q.shape[0], starts.shape[0], k, "maxsim_topk")
    _C.maxsim_topk(*_cpu_args(Q, q_mask, values, starts, lengths), k, scores.data_ptr(),
                   indices.data_ptr(), torch.get_num_threads())
    return scores, indices


@_maxsim_topk_op.register_fake
def _(Q, q_mask, values, starts, lengths, k):
    return fake_topk(Q, starts, k)


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


def cuda_topk(score_chunk: Callable[[int, int], Tensor], Q: Tensor, N: int, k: int,
              op: str) -> Tuple[Tensor, Tensor]:
    """GPU top-k of N documents scored by score_chunk(lo, hi), via chunked_topk."""
    if k < 1:
        raise ValueError(f"{op}: k must be >= 1, got {k}")
    if N == 0:
        empty = Q.new_empty((Q.shape[0], 0), dtype=torch.float32)
        return empty, empty.to(torch.int64)
    return chunked_topk(score_chunk, N, k)


@_maxsim_topk_op.register_kernel("cuda")
def _(Q, q_mask, values, starts, lengths, k):
    _check_op_inputs(Q, q_mask, values, starts, lengths)
    from ..triton_kernels.maxsim import maxsim_triton

    return cuda_topk(lambda lo, hi: maxsim_triton(Q, q_mask, values, starts[lo:hi], lengths[lo:hi]),
                     Q, starts.shape[0], k, "maxsim_topk")


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
    """
    Qn, qm, values, starts, lens, squeeze = _prepare(Q, docs, q_mask, lengths, mask, offsets, "maxsim")
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
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"maxsim_topk: k must be a positive int, got {k!r}")
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
