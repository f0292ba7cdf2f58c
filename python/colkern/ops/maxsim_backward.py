"""MaxSim for training: the forward that records each query token's winning document row, and
the backward that scatters gradients through those rows (no [B, Lq, N, L] tensor is stored).

    scores[b, n]    = sum over valid i of max_j <Q[b, i], doc_n[j]>          (as colkern.maxsim)
    argmax[b, i, n] = that j, a row of document n (int32; -1: masked token or empty document)
    dQ[b, i]        = sum over n of grad[b, n] * doc_n[argmax[b, i, n]]
    dvalues[starts[n] + argmax[b, i, n]] += grad[b, n] * Q[b, i]

Rules, identical on every backend and ISA level:
  * ties: the lowest row index wins, so one row per (query token, document) gets the gradient
    (torch.amax would split it evenly among tied rows; the sum over the tied rows is the same);
  * NaN: the first row whose product is NaN wins (NaN is sticky), so the NaN reaches that row's
    gradient and that query token's, and nothing else;
  * masked query tokens and empty documents get and pass zero gradient (a query whose every
    token is masked scores 0 everywhere, with zero gradient: the losses reject it);
  * accumulation is fp32; gradients come back in the input dtype.

Ops:
  torch.ops.colkern.maxsim_argmax(Q, q_mask, values, starts, lengths) -> (scores [B, N] float32,
      argmax [B, Lq, N] int32); differentiable in Q and values (its backward is the op below).
  torch.ops.colkern.maxsim_backward(grad, Q, q_mask, values, starts, lengths, argmax)
      -> (dQ [B, Lq, D] in Q's dtype, dvalues [T, D] in values' dtype).
float64 inputs run the pure-torch reference in float64 (returning float64 scores), so that
gradcheck can verify the backward, as ops/patch_pool.py does. colkern.maxsim uses these ops only
when a gradient is needed; inference keeps the plain maxsim op.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ._backend import _C, dtype_code
from ._checks import check_contiguous, check_q_mask, check_ranges
from ._registry import define_op

_GRAD_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# Elements of the [B, Lq, chunk, D] gather in the reference backward: bounds its memory.
_REF_CHUNK_ELEMENTS = 1 << 24


def _check_inputs(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                  lengths: Tensor, op: str) -> None:
    if Q.dim() != 3 or values.dim() != 2 or Q.shape[2] != values.shape[1]:
        raise ValueError(f"{op}: Q must be [B, Lq, D] and values [T, D] with the same D, got "
                         f"{tuple(Q.shape)} and {tuple(values.shape)}")
    if Q.dtype != values.dtype or Q.dtype not in _GRAD_DTYPES:
        raise ValueError(f"{op}: Q and values must have the same float dtype, got {Q.dtype} and {values.dtype}")
    check_ranges(starts, lengths, op)
    check_q_mask(q_mask, Q, op)
    check_contiguous(op, Q=Q, values=values, starts=starts, lengths=lengths, q_mask=q_mask)


def _check_argmax(argmax: Tensor, Q: Tensor, starts: Tensor, op: str) -> None:
    shape = (Q.shape[0], Q.shape[1], starts.shape[0])
    if argmax.dtype != torch.int32 or tuple(argmax.shape) != shape or not argmax.is_contiguous():
        raise ValueError(f"{op}: argmax must be contiguous int32 {list(shape)}, got {argmax.dtype} "
                         f"{tuple(argmax.shape)}")


def argmax_rows_ref(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                    lengths: Tensor, dtype: torch.dtype = torch.float64) -> Tuple[Tensor, Tensor]:
    """Pure-torch forward with the rules above, one matmul per document in `dtype`.
    -> (scores [B, N] in `dtype`, argmax [B, Lq, N] int32)."""
    B, Lq, _ = Q.shape
    N = starts.shape[0]
    q = Q.to(dtype)
    valid = q_mask if q_mask is not None else torch.ones(B, Lq, dtype=torch.bool, device=Q.device)
    scores = torch.zeros(B, N, dtype=dtype, device=Q.device)
    argmax = torch.full((B, Lq, N), -1, dtype=torch.int32, device=Q.device)
    for n, (s, l) in enumerate(zip(starts.tolist(), lengths.tolist())):
        if not l:
            continue
        sim = q @ values[s:s + l].to(dtype).T  # [B, Lq, l]
        best = sim.amax(2)  # NaN where any product is NaN
        nan = sim.isnan()
        # argmax returns the first maximal index: the lowest tied row, or the first NaN.
        first = (sim == best[..., None]).to(torch.int8).argmax(2)
        first = torch.where(nan.any(2), nan.to(torch.int8).argmax(2), first)
        scores[:, n] = torch.where(valid, best, 0).sum(1)
        argmax[:, :, n] = torch.where(valid, first, -1).to(torch.int32)
    return scores, argmax


def backward_rows_ref(grad: Tensor, Q: Tensor, q_mask: Optional[Tensor], values: Tensor,
                      starts: Tensor, lengths: Tensor, argmax: Tensor,
                      dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
    """Pure-torch backward: the scatter above, accumulated in `dtype`, in chunks of documents.
    -> (dQ [B, Lq, D], dvalues [T, D]) in `dtype`."""
    B, Lq, D = Q.shape
    N = starts.shape[0]
    q = Q.to(dtype)
    v = values.to(dtype)
    dq = torch.zeros(B, Lq, D, dtype=dtype, device=Q.device)
    dv = torch.zeros(values.shape, dtype=dtype, device=Q.device)
    if values.shape[0] == 0:  # only empty documents: nothing to scatter (and no row to gather)
        return dq, dv
    chunk = max(1, _REF_CHUNK_ELEMENTS // max(1, B * Lq * D))
    for n0 in range(0, N, chunk):
        a = argmax[:, :, n0:n0 + chunk].long()
        ok = a >= 0
        # [B, Lq, c]; row 0 where there is no argmax (an empty document may start at T), g is 0 there
        rows = torch.where(ok, starts[n0:n0 + chunk][None, None, :] + a.clamp_min(0), 0)
        g = torch.where(ok, grad[:, None, n0:n0 + chunk].to(dtype), 0)  # [B, Lq, c]
        dq += (g[..., None] * v[rows]).sum(2)
        dv.index_add_(0, rows[ok], (g[..., None] * q[:, :, None, :])[ok])
    return dq, dv


def _argmax_cpu(Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                lengths: Tensor) -> Tuple[Tensor, Tensor]:
    _check_inputs(Q, q_mask, values, starts, lengths, "maxsim_argmax")
    if Q.dtype == torch.float64:
        return argmax_rows_ref(Q, q_mask, values, starts, lengths)
    B, Lq, D = Q.shape
    N = starts.shape[0]
    scores = torch.empty(B, N, dtype=torch.float32)
    argmax = torch.empty(B, Lq, N, dtype=torch.int32)
    _C.maxsim_argmax(q_ptr=Q.data_ptr(), q_dtype=dtype_code(Q.dtype), B=B, Lq=Lq, D=D,
                     q_mask_ptr=q_mask.data_ptr() if q_mask is not None else 0,
                     values_ptr=values.data_ptr(), values_dtype=dtype_code(values.dtype),
                     T=values.shape[0], starts_ptr=starts.data_ptr(), lengths_ptr=lengths.data_ptr(),
                     N=N, out_ptr=scores.data_ptr(), argmax_ptr=argmax.data_ptr(),
                     num_threads=torch.get_num_threads())
    return scores, argmax


def _argmax_cuda(Q, q_mask, values, starts, lengths):
    _check_inputs(Q, q_mask, values, starts, lengths, "maxsim_argmax")
    if Q.dtype == torch.float64:
        return argmax_rows_ref(Q, q_mask, values, starts, lengths)
    from ..triton_kernels.maxsim_backward import maxsim_argmax_triton  # Triton only for CUDA work

    return maxsim_argmax_triton(Q, q_mask, values, starts, lengths)


def _argmax_fake(Q, q_mask, values, starts, lengths):
    dtype = torch.float64 if Q.dtype == torch.float64 else torch.float32
    return (Q.new_empty((Q.shape[0], starts.shape[0]), dtype=dtype),
            Q.new_empty((Q.shape[0], Q.shape[1], starts.shape[0]), dtype=torch.int32))


def _backward_cpu(grad: Tensor, Q: Tensor, q_mask: Optional[Tensor], values: Tensor, starts: Tensor,
                  lengths: Tensor, argmax: Tensor) -> Tuple[Tensor, Tensor]:
    _check_inputs(Q, q_mask, values, starts, lengths, "maxsim_backward")
    _check_argmax(argmax, Q, starts, "maxsim_backward")
    if Q.dtype == torch.float64:
        return backward_rows_ref(grad, Q, q_mask, values, starts, lengths, argmax, torch.float64)
    B, Lq, D = Q.shape
    grad = grad.to(torch.float32).contiguous()
    if tuple(grad.shape) != (B, starts.shape[0]):
        raise ValueError(f"maxsim_backward: grad must be [B, N] = [{B}, {starts.shape[0]}], got {tuple(grad.shape)}")
    dq = torch.empty(B, Lq, D, dtype=torch.float32)
    dv = torch.empty(values.shape, dtype=torch.float32)
    _C.maxsim_backward(q_ptr=Q.data_ptr(), q_dtype=dtype_code(Q.dtype), B=B, Lq=Lq, D=D,
                       q_mask_ptr=q_mask.data_ptr() if q_mask is not None else 0,
                       values_ptr=values.data_ptr(), values_dtype=dtype_code(values.dtype),
                       T=values.shape[0], starts_ptr=starts.data_ptr(), lengths_ptr=lengths.data_ptr(),
                       N=starts.shape[0], grad_ptr=grad.data_ptr(), argmax_ptr=argmax.data_ptr(),
                       dq_ptr=dq.data_ptr(), dvalues_ptr=dv.data_ptr(), num_threads=torch.get_num_threads())
    return dq.to(Q.dtype), dv.to(values.dtype)


def _backward_cuda(grad, Q, q_mask, values, starts, lengths, argmax):
    _check_inputs(Q, q_mask, values, starts, lengths, "maxsim_backward")
    _check_argmax(argmax, Q, starts, "maxsim_backward")
    if Q.dtype == torch.float64:
        return backward_rows_ref(grad, Q, q_mask, values, starts, lengths, argmax, torch.float64)
    from ..triton_kernels.maxsim_backward import maxsim_backward_triton

    dq, dv = maxsim_backward_triton(grad.to(torch.float32).contiguous(), Q, values, starts, argmax)
    return dq.to(Q.dtype), dv.to(values.dtype)


def _backward_fake(grad, Q, q_mask, values, starts, lengths, argmax):
    return torch.empty_like(Q), torch.empty_like(values)


def _setup_context(ctx, inputs, output):
    Q, q_mask, values, starts, lengths = inputs
    _, argmax = output
    ctx.mark_non_differentiable(argmax)
    ctx.save_for_backward(Q, q_mask, values, starts, lengths, argmax)


def _autograd_backward(ctx, grad_scores: Optional[Tensor], _grad_argmax):
    Q, q_mask, values, starts, lengths, argmax = ctx.saved_tensors
    if grad_scores is None:
        return None, None, None, None, None
    dq, dv = torch.ops.colkern.maxsim_backward(grad_scores.contiguous(), Q, q_mask, values, starts,
                                               lengths, argmax)
    return (dq if ctx.needs_input_grad[0] else None, None,
            dv if ctx.needs_input_grad[2] else None, None, None)


define_op("maxsim_backward(Tensor grad, Tensor Q, Tensor? q_mask, Tensor values, Tensor starts, "
          "Tensor lengths, Tensor argmax) -> (Tensor, Tensor)",
          cpu=_backward_cpu, cuda=_backward_cuda, fake=_backward_fake)
define_op("maxsim_argmax(Tensor Q, Tensor? q_mask, Tensor values, Tensor starts, Tensor lengths)"
          " -> (Tensor, Tensor)", cpu=_argmax_cpu, cuda=_argmax_cuda, fake=_argmax_fake,
          backward=_autograd_backward, setup_context=_setup_context)
