"""Binary quantisation: sign bits packed 8 per byte, float x bits MaxSim and hamming MaxSim.

Bits (the convention of numpy.packbits, Vespa and Elasticsearch): bit = x > 0, packed MSB-first
along the last dim, ceil(dim / 8) bytes per vector, padding bits 0. Corpora stay ragged by
offsets (never zero padded: a zero vector would binarise to all-negative).

Scores, all float32 [B, N], with the MaxSim conventions of colkern.maxsim (empty document 0,
masked query tokens ignored):
  maxsim_bits(Q, bits, mode="pm1"): float queries against docs read as +-1 per dimension
      (q . (2b - 1)); mode="01" reads them as {0, 1} (q . b, Vespa's unpack_bits). Per token,
      pm1 = 2 * (01) - sum(q), so both modes rank documents identically for one query token.
  maxsim_hamming(Q_bits, bits): binary queries against binary docs, the +-1 dot
      dim - 2 * hamming per token pair, max over doc vectors, summed: integers, exact in fp32.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from ._backend import _C, BITS_MODES, FLOAT_DTYPES, dtype_code
from ._checks import check_contiguous, check_k, check_q_mask, check_ranges
from ._inputs import Docs, PackedDocs, normalize_docs, normalize_q_mask, normalize_queries
from ._registry import define_op
from ._topk import cuda_topk, fake_topk, topk_outputs
from .maxsim import maxsim_rows_ref

_MODES = ("pm1", "01")


def n_bytes(dim: int) -> int:
    """Bytes per packed vector of `dim` dimensions."""
    return (dim + 7) // 8


def _bit_weights(device) -> Tensor:
    return torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=device)


def pack_bits_ref(x: Tensor) -> Tensor:
    """Pure-torch pack_bits: x [..., D] float -> uint8 [..., ceil(D/8)], bit = x > 0, MSB first."""
    D = x.shape[-1]
    pad = n_bytes(D) * 8 - D
    b = (x > 0).to(torch.uint8)
    if pad:
        b = torch.nn.functional.pad(b, (0, pad))
    b = b.reshape(*x.shape[:-1], n_bytes(D), 8)
    return (b * _bit_weights(x.device)).sum(-1, dtype=torch.uint8)


def unpack_bits(bits: Tensor, dim: int, *, mode: str = "pm1", dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 [..., ceil(dim/8)] -> [..., dim] in `dtype`: +-1 per bit (mode "pm1") or {0, 1} ("01")."""
    _check_bits(bits, dim, "unpack_bits", "bits")
    _check_mode(mode, "unpack_bits")
    b = (bits.unsqueeze(-1) & _bit_weights(bits.device)) != 0
    b = b.reshape(*bits.shape[:-1], bits.shape[-1] * 8)[..., :dim].to(dtype)
    return 2 * b - 1 if mode == "pm1" else b


def _check_mode(mode: str, op: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be 'pm1' or '01', got {mode!r}")


def _check_bits(bits: Tensor, dim: int, op: str, arg: str) -> None:
    if not isinstance(bits, Tensor) or bits.dtype != torch.uint8:
        raise ValueError(f"{op}: {arg} must be a uint8 tensor of packed bits, got "
                         f"{getattr(bits, 'dtype', type(bits).__name__)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"{op}: dim must be a positive int, got {dim!r}")
    if bits.dim() < 1 or bits.shape[-1] != n_bytes(dim):
        raise ValueError(f"{op}: {arg} has {bits.shape[-1] if bits.dim() else 0} bytes per vector "
                         f"but dim={dim} needs ceil({dim}/8) = {n_bytes(dim)}")


def normalize_bit_docs(docs: Docs, dim: int, *, lengths=None, mask=None, offsets=None, op: str):
    """Like normalize_docs for uint8 packed-bit corpora: -> (bits [T, nbytes], starts, lengths)."""
    values, starts, lens = normalize_docs(docs, lengths=lengths, mask=mask, offsets=offsets, op=op,
                                          arg="docs_bits", dtypes=(torch.uint8,))
    _check_bits(values, dim, op, "docs_bits")
    return values, starts, lens


def maxsim_bits_ref(Q: Tensor, docs_bits: Docs, *, dim: int, q_mask: Optional[Tensor] = None,
                    mode: str = "pm1", lengths=None, mask=None, offsets=None,
                    dtype: torch.dtype = torch.float64) -> Tensor:
    """Pure-torch reference for maxsim_bits: unpack, then MaxSim in `dtype`."""
    _check_mode(mode, "maxsim_bits_ref")
    bits, starts, lens = normalize_bit_docs(docs_bits, dim, lengths=lengths, mask=mask,
                                            offsets=offsets, op="maxsim_bits_ref")
    Qn, qm, squeeze = normalize_queries(Q, q_mask, dim, Q.dtype if Q.dtype in FLOAT_DTYPES else torch.float32,
                                        bits.device, op="maxsim_bits_ref")
    docs = unpack_bits(bits, dim, mode=mode, dtype=dtype)
    out = maxsim_rows_ref(Qn, qm, docs, starts, lens, dtype)
    return out[0] if squeeze else out


def maxsim_hamming_ref(Q_bits: Tensor, docs_bits: Docs, *, dim: int, q_mask: Optional[Tensor] = None,
                       lengths=None, mask=None, offsets=None) -> Tensor:
    """Pure-torch reference for maxsim_hamming: per token pair dim - 2 * popcount(q ^ d)."""
    bits, starts, lens = normalize_bit_docs(docs_bits, dim, lengths=lengths, mask=mask,
                                            offsets=offsets, op="maxsim_hamming_ref")
    Qb, qm, squeeze = _normalize_bit_queries(Q_bits, q_mask, dim, bits.device, "maxsim_hamming_ref")
    B, Lq, nb = Qb.shape
    popcount = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64, device=bits.device)
    valid = qm if qm is not None else torch.ones(B, Lq, dtype=torch.bool, device=bits.device)
    out = torch.zeros(B, starts.shape[0], dtype=torch.float64, device=bits.device)
    for n, (s, l) in enumerate(zip(starts.tolist(), lens.tolist())):
        if l == 0:
            continue
        ham = popcount[(Qb[:, :, None, :] ^ bits[None, None, s:s + l, :]).long()].sum(-1)  # [B, Lq, l]
        best = (dim - 2 * ham).amax(2).to(torch.float64)
        out[:, n] = torch.where(valid, best, 0).sum(1)
    out = out.float()
    return out[0] if squeeze else out


def _normalize_bit_queries(Q_bits: Tensor, q_mask: Optional[Tensor], dim: int, device, op: str):
    _check_bits(Q_bits, dim, op, "Q_bits")
    squeeze = Q_bits.dim() == 2
    if squeeze:
        Q_bits = Q_bits.unsqueeze(0)
    if Q_bits.dim() != 3:
        raise ValueError(f"{op}: Q_bits must be [Lq, nbytes] or [B, Lq, nbytes], got {tuple(Q_bits.shape)}")
    if Q_bits.device != device:
        raise ValueError(f"{op}: Q_bits is on {Q_bits.device} but docs_bits is on {device}")
    q_mask = normalize_q_mask(q_mask, Q_bits.shape[:2], squeeze, device, op, "docs_bits")
    return Q_bits.contiguous(), q_mask, squeeze



# ---------------------------------------------------------------------------------------------
# Ops


def _check_bits_op(Q: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                   lengths: Tensor, dim: int, op: str, float_queries: bool) -> None:
    _check_bits(bits, dim, op, "docs_bits")
    if bits.dim() != 2:
        raise ValueError(f"{op}: docs_bits must be [T, nbytes], got {tuple(bits.shape)}")
    if float_queries:
        if Q.dim() != 3 or Q.shape[2] != dim or Q.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{op}: Q must be float [B, Lq, {dim}], got {Q.dtype} {tuple(Q.shape)}")
    else:
        _check_bits(Q, dim, op, "Q_bits")
        if Q.dim() != 3:
            raise ValueError(f"{op}: Q_bits must be [B, Lq, nbytes], got {tuple(Q.shape)}")
    check_ranges(starts, lengths, op)
    check_q_mask(q_mask, Q, op)
    check_contiguous(op, Q=Q, docs_bits=bits, starts=starts, lengths=lengths, q_mask=q_mask)


def _cpu_call(kernel, Q: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
              lengths: Tensor, dim: int, **extra) -> None:
    """Runs _C.maxsim_bits_* or _C.hamming_* on the op's checked tensors (Q: float queries or
    packed query bits); `extra` gives q_dtype and mode for float queries, k and the output
    pointers."""
    kernel(q_ptr=Q.data_ptr(), B=Q.shape[0], Lq=Q.shape[1], D=dim,
           q_mask_ptr=q_mask.data_ptr() if q_mask is not None else 0, bits_ptr=bits.data_ptr(),
           T=bits.shape[0], starts_ptr=starts.data_ptr(), lengths_ptr=lengths.data_ptr(),
           N=starts.shape[0], num_threads=torch.get_num_threads(), **extra)


def _pack_bits_cpu(x: Tensor) -> Tensor:
    if x.dim() != 2 or x.dtype not in FLOAT_DTYPES or not x.is_contiguous() or x.shape[1] < 1:
        raise ValueError(f"pack_bits: x must be a contiguous float [R, D>=1] tensor, got {x.dtype} {tuple(x.shape)}")
    out = torch.empty(x.shape[0], n_bytes(x.shape[1]), dtype=torch.uint8)
    _C.pack_bits(x_ptr=x.data_ptr(), dtype=dtype_code(x.dtype), rows=x.shape[0], D=x.shape[1],
                 out_ptr=out.data_ptr(), num_threads=torch.get_num_threads())
    return out


def _pack_bits_cuda(x):
    from ..triton_kernels.pack_bits import pack_bits_triton  # Triton only for CUDA work

    return pack_bits_triton(x.contiguous())


def _pack_bits_fake(x):
    return x.new_empty((x.shape[0], (x.shape[1] + 7) // 8), dtype=torch.uint8)


def _maxsim_bits_cpu(Q: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                     lengths: Tensor, dim: int, mode: str) -> Tensor:
    _check_bits_op(Q, q_mask, bits, starts, lengths, dim, "maxsim_bits", True)
    _check_mode(mode, "maxsim_bits")
    out = torch.empty(Q.shape[0], starts.shape[0], dtype=torch.float32)
    _cpu_call(_C.maxsim_bits_scores, Q, q_mask, bits, starts, lengths, dim, q_dtype=dtype_code(Q.dtype),
              mode=BITS_MODES[mode], out_ptr=out.data_ptr())
    return out


def _maxsim_bits_cuda(Q, q_mask, bits, starts, lengths, dim, mode):
    _check_bits_op(Q, q_mask, bits, starts, lengths, dim, "maxsim_bits", True)
    _check_mode(mode, "maxsim_bits")
    from ..triton_kernels.maxsim import maxsim_bits_triton

    return maxsim_bits_triton(Q, q_mask, bits, starts, lengths, dim, mode)


def _maxsim_bits_fake(Q, q_mask, bits, starts, lengths, dim, mode):
    return Q.new_empty((Q.shape[0], starts.shape[0]), dtype=torch.float32)


def _maxsim_bits_topk_cpu(Q: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                          lengths: Tensor, dim: int, mode: str, k: int) -> Tuple[Tensor, Tensor]:
    _check_bits_op(Q, q_mask, bits, starts, lengths, dim, "maxsim_bits_topk", True)
    _check_mode(mode, "maxsim_bits_topk")
    scores, indices = topk_outputs(Q.shape[0], starts.shape[0], k, "maxsim_bits_topk")
    _cpu_call(_C.maxsim_bits_topk, Q, q_mask, bits, starts, lengths, dim, q_dtype=dtype_code(Q.dtype),
              mode=BITS_MODES[mode], k=k, out_scores_ptr=scores.data_ptr(), out_indices_ptr=indices.data_ptr())
    return scores, indices


def _maxsim_bits_topk_cuda(Q, q_mask, bits, starts, lengths, dim, mode, k):
    _check_bits_op(Q, q_mask, bits, starts, lengths, dim, "maxsim_bits_topk", True)
    _check_mode(mode, "maxsim_bits_topk")
    from ..triton_kernels.maxsim import maxsim_bits_triton

    return cuda_topk(lambda lo, hi: maxsim_bits_triton(Q, q_mask, bits, starts[lo:hi], lengths[lo:hi], dim, mode),
                     Q, starts.shape[0], k, "maxsim_bits_topk")


def _maxsim_bits_topk_fake(Q, q_mask, bits, starts, lengths, dim, mode, k):
    return fake_topk(Q, starts, k)


def _maxsim_hamming_cpu(Q_bits: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                        lengths: Tensor, dim: int) -> Tensor:
    _check_bits_op(Q_bits, q_mask, bits, starts, lengths, dim, "maxsim_hamming", False)
    out = torch.empty(Q_bits.shape[0], starts.shape[0], dtype=torch.float32)
    _cpu_call(_C.hamming_scores, Q_bits, q_mask, bits, starts, lengths, dim, out_ptr=out.data_ptr())
    return out


def _maxsim_hamming_cuda(Q_bits, q_mask, bits, starts, lengths, dim):
    _check_bits_op(Q_bits, q_mask, bits, starts, lengths, dim, "maxsim_hamming", False)
    from ..triton_kernels.hamming import maxsim_hamming_triton

    return maxsim_hamming_triton(Q_bits, q_mask, bits, starts, lengths, dim)


def _maxsim_hamming_fake(Q_bits, q_mask, bits, starts, lengths, dim):
    return Q_bits.new_empty((Q_bits.shape[0], starts.shape[0]), dtype=torch.float32)


def _maxsim_hamming_topk_cpu(Q_bits: Tensor, q_mask: Optional[Tensor], bits: Tensor, starts: Tensor,
                             lengths: Tensor, dim: int, k: int) -> Tuple[Tensor, Tensor]:
    _check_bits_op(Q_bits, q_mask, bits, starts, lengths, dim, "maxsim_hamming_topk", False)
    scores, indices = topk_outputs(Q_bits.shape[0], starts.shape[0], k, "maxsim_hamming_topk")
    _cpu_call(_C.hamming_topk, Q_bits, q_mask, bits, starts, lengths, dim, k=k,
              out_scores_ptr=scores.data_ptr(), out_indices_ptr=indices.data_ptr())
    return scores, indices


def _maxsim_hamming_topk_cuda(Q_bits, q_mask, bits, starts, lengths, dim, k):
    _check_bits_op(Q_bits, q_mask, bits, starts, lengths, dim, "maxsim_hamming_topk", False)
    from ..triton_kernels.hamming import maxsim_hamming_triton

    return cuda_topk(lambda lo, hi: maxsim_hamming_triton(Q_bits, q_mask, bits, starts[lo:hi], lengths[lo:hi], dim),
                     Q_bits, starts.shape[0], k, "maxsim_hamming_topk")


def _maxsim_hamming_topk_fake(Q_bits, q_mask, bits, starts, lengths, dim, k):
    return fake_topk(Q_bits, starts, k)


define_op("pack_bits(Tensor x) -> Tensor", cpu=_pack_bits_cpu, cuda=_pack_bits_cuda, fake=_pack_bits_fake)
define_op("maxsim_bits(Tensor Q, Tensor? q_mask, Tensor bits, Tensor starts, Tensor lengths, SymInt dim, str mode)"
          " -> Tensor", cpu=_maxsim_bits_cpu, cuda=_maxsim_bits_cuda, fake=_maxsim_bits_fake)
define_op("maxsim_bits_topk(Tensor Q, Tensor? q_mask, Tensor bits, Tensor starts, Tensor lengths, SymInt dim,"
          " str mode, SymInt k) -> (Tensor, Tensor)",
          cpu=_maxsim_bits_topk_cpu, cuda=_maxsim_bits_topk_cuda, fake=_maxsim_bits_topk_fake)
define_op("maxsim_hamming(Tensor Q_bits, Tensor? q_mask, Tensor bits, Tensor starts, Tensor lengths, SymInt dim)"
          " -> Tensor", cpu=_maxsim_hamming_cpu, cuda=_maxsim_hamming_cuda, fake=_maxsim_hamming_fake)
define_op("maxsim_hamming_topk(Tensor Q_bits, Tensor? q_mask, Tensor bits, Tensor starts, Tensor lengths,"
          " SymInt dim, SymInt k) -> (Tensor, Tensor)",
          cpu=_maxsim_hamming_topk_cpu, cuda=_maxsim_hamming_topk_cuda, fake=_maxsim_hamming_topk_fake)


# ---------------------------------------------------------------------------------------------
# Public API


def pack_bits(x, *, mask: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
              offsets: Optional[Tensor] = None):
    """Sign bits packed MSB-first: bit = x > 0, ceil(D/8) bytes per vector, padding bits 0.

    x: a float tensor [..., D] -> uint8 [..., ceil(D/8)]; a list of [L_i, D] tensors -> a list;
    a PackedDocs, packed [T, D] with `offsets`, or padded [N, Ld, D] with `mask`/`lengths` ->
    a PackedDocs of bits with the same ragged structure (never zero padded).
    """
    if isinstance(x, (list, tuple)):
        return [pack_bits(t) for t in x]
    if isinstance(x, PackedDocs) or offsets is not None or mask is not None or lengths is not None:
        values, starts, lens = normalize_docs(x, lengths=lengths, mask=mask, offsets=offsets,
                                              op="pack_bits", arg="x", dtypes=FLOAT_DTYPES)
        rows = torch.repeat_interleave(starts, lens) + _arange_within(lens)
        new_offsets = torch.zeros(lens.shape[0] + 1, dtype=torch.int64, device=values.device)
        torch.cumsum(lens, 0, out=new_offsets[1:])
        contiguous = bool(torch.equal(rows, torch.arange(rows.shape[0], device=rows.device)))
        src = values[: rows.shape[0]] if contiguous else values[rows]
        return PackedDocs(torch.ops.colkern.pack_bits(src.contiguous()), new_offsets)
    if not isinstance(x, Tensor) or x.dtype not in FLOAT_DTYPES or x.dim() < 1:
        raise ValueError(f"pack_bits: x must be a float32/float16/bfloat16 tensor [..., D], got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.shape[-1] < 1:
        raise ValueError("pack_bits: the last dim D must be >= 1")
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    return torch.ops.colkern.pack_bits(flat).reshape(*x.shape[:-1], n_bytes(x.shape[-1]))


def _arange_within(lens: Tensor) -> Tensor:
    first = torch.cumsum(lens, 0) - lens
    return torch.arange(int(lens.sum()), device=lens.device) - torch.repeat_interleave(first, lens)


def _prepare_float(Q, docs_bits, dim, q_mask, lengths, mask, offsets, op):
    bits, starts, lens = normalize_bit_docs(docs_bits, dim, lengths=lengths, mask=mask, offsets=offsets, op=op)
    if not isinstance(Q, Tensor) or Q.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: Q must be a float32/float16/bfloat16 tensor, got {getattr(Q, 'dtype', type(Q).__name__)}")
    Qn, qm, squeeze = normalize_queries(Q, q_mask, dim, Q.dtype, bits.device, op=op)
    return Qn, qm, bits, starts, lens, squeeze


def maxsim_bits(Q: Tensor, docs_bits: Docs, *, dim: int, q_mask: Optional[Tensor] = None,
                mode: str = "pm1", lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                offsets: Optional[Tensor] = None) -> Tensor:
    """Float queries against packed sign-bit documents.

    Q: [Lq, dim] or [B, Lq, dim] float32/float16/bfloat16 (kept in its dtype; fp32 accumulation).
    docs_bits: uint8 [.., ceil(dim/8)] in any colkern corpus form (list, PackedDocs, packed + offsets).
    mode: "pm1" scores bits as +-1, "01" as {0, 1}. -> [B, N] float32 ([N] for a 2-D Q).
    """
    _check_mode(mode, "maxsim_bits")
    Qn, qm, bits, starts, lens, squeeze = _prepare_float(Q, docs_bits, dim, q_mask, lengths, mask, offsets, "maxsim_bits")
    out = torch.ops.colkern.maxsim_bits(Qn, qm, bits, starts, lens, dim, mode)
    return out[0] if squeeze else out


def maxsim_bits_topk(Q: Tensor, docs_bits: Docs, k: int, *, dim: int, q_mask: Optional[Tensor] = None,
                     mode: str = "pm1", lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                     offsets: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """maxsim_bits with the fused top-k of maxsim_topk: (scores [B, k'], indices [B, k'])."""
    check_k(k, "maxsim_bits_topk")
    _check_mode(mode, "maxsim_bits_topk")
    Qn, qm, bits, starts, lens, squeeze = _prepare_float(Q, docs_bits, dim, q_mask, lengths, mask, offsets, "maxsim_bits_topk")
    s, i = torch.ops.colkern.maxsim_bits_topk(Qn, qm, bits, starts, lens, dim, mode, k)
    return (s[0], i[0]) if squeeze else (s, i)


def maxsim_hamming(Q_bits: Tensor, docs_bits: Docs, *, dim: int, q_mask: Optional[Tensor] = None,
                   lengths: Optional[Tensor] = None, mask: Optional[Tensor] = None,
                   offsets: Optional[Tensor] = None) -> Tensor:
    """Binary queries against binary documents: per token max of dim - 2 * hamming, summed.

    Q_bits: uint8 [Lq, ceil(dim/8)] or [B, Lq, ceil(dim/8)] (colkern.pack_bits of the queries).
    -> [B, N] float32 holding exact integers.
    """
    bits, starts, lens = normalize_bit_docs(docs_bits, dim, lengths=lengths, mask=mask, offsets=offsets, op="maxsim_hamming")
    Qb, qm, squeeze = _normalize_bit_queries(Q_bits, q_mask, dim, bits.device, "maxsim_hamming")
    out = torch.ops.colkern.maxsim_hamming(Qb, qm, bits, starts, lens, dim)
    return out[0] if squeeze else out


def maxsim_hamming_topk(Q_bits: Tensor, docs_bits: Docs, k: int, *, dim: int,
                        q_mask: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
                        mask: Optional[Tensor] = None, offsets: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """maxsim_hamming with the fused top-k: (scores [B, k'], indices [B, k'])."""
    check_k(k, "maxsim_hamming_topk")
    bits, starts, lens = normalize_bit_docs(docs_bits, dim, lengths=lengths, mask=mask, offsets=offsets, op="maxsim_hamming_topk")
    Qb, qm, squeeze = _normalize_bit_queries(Q_bits, q_mask, dim, bits.device, "maxsim_hamming_topk")
    s, i = torch.ops.colkern.maxsim_hamming_topk(Qb, qm, bits, starts, lens, dim, k)
    return (s[0], i[0]) if squeeze else (s, i)
