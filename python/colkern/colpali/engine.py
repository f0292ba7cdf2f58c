"""A drop-in for colpali-engine's `score_multi_vector`, on colkern's MaxSim kernels.

    scores = colkern.compat.score_multi_vector(qs, ps)     # [len(qs), len(ps)] float32, CPU

    with colkern.compat.patch_colpali_engine():            # or patch_... / unpatch_colpali_engine()
        scores = processor.score(qs, ps)                    # every colpali-engine processor

What colpali-engine 0.3.18 computes (`BaseVisualRetrieverProcessor.score_multi_vector`): it walks
queries and passages in chunks of `batch_size`, zero-pads each chunk with `pad_sequence`, moves it
to `device` (default: CUDA, else MPS, else CPU), scores it with
`einsum("bnd,csd->bcns").amax(3).sum(2)` in the input dtype and returns float32 on the CPU. The
chunk kernel is picked by the environment variable COLPALI_SCORES_BACKEND (`auto`: the
late-interaction-kernels Triton/MPS kernel when installed and on CUDA/MPS, else the einsum;
`torch`; `lik`); both kernels rely on the zero padding, so both give the same numbers up to
rounding. Empty `qs` or `ps` raise ValueError("No queries provided" / "No passages provided").

Zero padding lets a padding vector take part in the max: its similarity is 0, so a query token's
max over a passage is floored at 0 whenever that passage is shorter than the longest passage in
its chunk of `batch_size` (and whenever the passage itself carries zero rows, as the per-item
tensors of `list(torch.unbind(model(**batch)))` do: ColPali zeroes padding positions). A
passage's score then depends on which other passages share its chunk.

colkern's version, two modes:
  * default, exact MaxSim: a padding vector never scores. Rows that are exactly zero are padding
    (the convention colpali-engine itself relies on; a real ColPali embedding is unit-norm) and
    are dropped from passages and masked out of queries; then colkern.maxsim scores every query
    against every passage in one call, accumulating in fp32.
  * colpali_padding=True: colpali-engine's numbers. Every row is kept as given and a passage
    shorter than the longest one in its chunk of `batch_size` gets one zero row appended (one
    zero row floors each query token's max at 0 exactly as any number of them would); colkern
    then scores that. Equal to colpali-engine's torch path up to fp32 rounding (it sums in the
    input dtype, colkern in fp32; for float32 inputs the difference is a few ulps).
Both return [len(qs), len(ps)] float32 on the CPU and raise the same ValueErrors on empty input.
COLPALI_SCORES_BACKEND is ignored: it chooses between colpali-engine's two kernels, which colkern
replaces. `device=None` scores where the passages are (colkern's CPU kernel runs near the
compute ceiling; copying a CPU corpus to a GPU on every call, as colpali-engine does, costs about
as much as scoring it); pass device="cuda" to score on a GPU (colkern's Triton kernel).
"""
from __future__ import annotations

import threading
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from .._model_loading import check_positive_int
from ..ops import FLOAT_DTYPES, maxsim

Embeddings = Union[Tensor, Sequence[Tensor]]
_OP = "score_multi_vector"


# ---------------------------------------------------------------------------------------------
# Input checks


def _rows_list(x: Embeddings, name: str) -> Optional[List[Tensor]]:
    """A list of [L_i, D] tensors -> the list (checked); a padded [N, L, D] tensor -> None."""
    if isinstance(x, Tensor):
        if x.dim() != 3:
            raise ValueError(f"{_OP}: {name} must be a list of [L, D] tensors or a padded [N, L, D] tensor, "
                             f"got a tensor of shape {tuple(x.shape)}")
        if x.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{_OP}: {name} must be float32, float16 or bfloat16, got {x.dtype}")
        return None
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{_OP}: {name} must be a list of [L, D] tensors or a padded [N, L, D] tensor, "
                        f"got {type(x).__name__}")
    items = list(x)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor) or t.dim() != 2:
            what = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{_OP}: {name}[{i}] must be a 2-D [L, D] tensor, got {what}")
        if t.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{_OP}: {name}[{i}] must be float32, float16 or bfloat16, got {t.dtype}")
        if t.shape[1] != items[0].shape[1]:
            raise ValueError(f"{_OP}: {name}[{i}] has dim {t.shape[1]} but {name}[0] has dim {items[0].shape[1]}")
        if t.dtype != items[0].dtype:
            raise ValueError(f"{_OP}: {name}[{i}] has dtype {t.dtype} but {name}[0] has {items[0].dtype}")
    return items


def _compute_device(ps: Embeddings, ps_list: Optional[List[Tensor]], device) -> torch.device:
    if device is not None:
        dev = torch.device(device)
    else:
        dev = (ps_list[0] if ps_list is not None else ps).device
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{_OP}: colkern scores on CPU or CUDA, got device {dev}")
    return dev


# ---------------------------------------------------------------------------------------------
# Queries and passages in colkern's form


def _queries(qs: Embeddings, qs_list: Optional[List[Tensor]], device: torch.device) -> Tuple[Tensor, Tensor]:
    """-> Q [B, Lq, D] zero-padded on `device`, q_mask [B, Lq] (False for all-zero rows)."""
    if qs_list is not None:
        Q = pad_sequence([q.to(device) for q in qs_list], batch_first=True, padding_value=0)
    else:
        Q = qs.to(device)
    # A zero query row adds max_j 0 = 0 in colpali-engine as well: masking it changes nothing
    # but the work.
    return Q, Q.ne(0).any(-1)


def _cat_with_offsets(parts: List[Tensor], lengths: List[int], device: torch.device):
    values = torch.cat([p.to(device) for p in parts], 0)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0, out=offsets[1:])
    return values, offsets.to(device)


def _exact_passages(ps: Embeddings, ps_list: Optional[List[Tensor]], device: torch.device) -> dict:
    """maxsim keyword arguments for the passages with their all-zero (padding) rows removed."""
    if ps_list is None:
        P = ps.to(device)
        return {"docs": P, "mask": P.ne(0).any(-1)}
    values, offsets = _cat_with_offsets(ps_list, [p.shape[0] for p in ps_list], device)
    keep = values.ne(0).any(1)
    if bool(keep.all()):
        return {"docs": values, "offsets": offsets}
    # Rows kept before each offset: a prefix sum of `keep` read at the old offsets.
    kept_before = torch.zeros(values.shape[0] + 1, dtype=torch.int64, device=device)
    torch.cumsum(keep, 0, out=kept_before[1:])
    return {"docs": values[keep].contiguous(), "offsets": kept_before[offsets]}


def _padded_passages(ps: Embeddings, ps_list: Optional[List[Tensor]], batch_size: int,
                     device: torch.device) -> dict:
    """maxsim keyword arguments for the passages as colpali-engine scores them: rows as given, plus
    one zero row for each passage shorter than the longest in its chunk of batch_size."""
    if ps_list is None:  # one padded tensor: every chunk is as long as the tensor, nothing to add
        return {"docs": ps.to(device)}
    zero = ps_list[0].new_zeros(1, ps_list[0].shape[1])
    parts: List[Tensor] = []
    lengths: List[int] = []
    for j in range(0, len(ps_list), batch_size):
        chunk = ps_list[j:j + batch_size]
        longest = max(p.shape[0] for p in chunk)
        for p in chunk:
            parts.append(p)
            if p.shape[0] < longest:
                parts.append(zero)
            lengths.append(min(p.shape[0] + 1, longest))
    values, offsets = _cat_with_offsets(parts, lengths, device)
    return {"docs": values, "offsets": offsets}


# ---------------------------------------------------------------------------------------------
# Public API


def score_multi_vector(qs: Embeddings, ps: Embeddings, batch_size: int = 128,
                       device: Optional[Union[str, torch.device]] = None, *,
                       colpali_padding: bool = False) -> Tensor:
    """MaxSim scores of multi-vector queries against passages, colpali-engine's signature.

    qs: a list of [Lq_i, D] tensors or a padded [B, Lq, D] tensor; ps: a list of [Ld_j, D]
    tensors or a padded [N, Ld, D] tensor (float32/float16/bfloat16; queries are cast to the
    passages' dtype). Rows that are exactly zero are padding: by default they never score; with
    colpali_padding=True they score 0, as in colpali-engine.
    batch_size: colpali-engine's chunk of passages; it matters only with colpali_padding=True,
      where it decides which passages are padded (colkern itself needs no chunking).
    device: where to score ("cpu" or "cuda"); None: where the passages are.
    colpali_padding: False: exact MaxSim, padding never scores. True: colpali-engine's zero-
      padding floor (see the module docstring), equal to its scores up to fp32 rounding.
    -> [len(qs), len(ps)] float32 on the CPU, fp32 accumulation.
    Raises ValueError("No queries provided" / "No passages provided") on empty input, as
    colpali-engine does, and ValueError naming the argument for malformed input.
    """
    if len(qs) == 0:
        raise ValueError("No queries provided")
    if len(ps) == 0:
        raise ValueError("No passages provided")
    batch_size = check_positive_int(batch_size, _OP, "batch_size")
    qs_list, ps_list = _rows_list(qs, "qs"), _rows_list(ps, "ps")
    q_dim = (qs_list[0] if qs_list is not None else qs).shape[-1]
    p_dim = (ps_list[0] if ps_list is not None else ps).shape[-1]
    if q_dim != p_dim:
        raise ValueError(f"{_OP}: qs have dim {q_dim} but ps have dim {p_dim}")
    dev = _compute_device(ps, ps_list, device)
    Q, q_mask = _queries(qs, qs_list, dev)
    docs = (_padded_passages(ps, ps_list, batch_size, dev) if colpali_padding
            else _exact_passages(ps, ps_list, dev))
    return maxsim(Q, q_mask=q_mask, **docs).to(device="cpu", dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# Patching colpali-engine


_patch_lock = threading.Lock()
_original: Optional[staticmethod] = None  # colpali-engine's own score_multi_vector while patched
_patched_padding: Optional[bool] = None


class ColPaliEnginePatch:
    """Handle returned by patch_colpali_engine(). As a context manager it restores colpali-engine
    on exit if this call installed the patch (so nested `with` blocks are safe)."""

    def __init__(self, colpali_padding: bool, installed: bool):
        self.colpali_padding = colpali_padding
        self.installed = installed  # False: the patch was already in place when this was made

    @property
    def active(self) -> bool:
        return is_colpali_engine_patched()

    def unpatch(self) -> bool:
        """Restores colpali-engine's own scoring. -> True if something was restored."""
        return unpatch_colpali_engine()

    def __enter__(self) -> "ColPaliEnginePatch":
        return self

    def __exit__(self, *exc) -> None:
        if self.installed:
            unpatch_colpali_engine()


def _base_processor():
    from ._torchvision_compat import import_colpali_engine

    import_colpali_engine()
    from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor

    return BaseVisualRetrieverProcessor


def maxsim_inbatch_colkern(query: Tensor, doc: Tensor) -> Tensor:
    """colpali-engine's `maxsim_inbatch` on colkern: zero-padded query [Bq, Lq, d] x doc
    [Bd, Ld, d] -> [Bq, Bd] float32, every row kept (zero rows score 0, as there);
    differentiable."""
    return maxsim(query, doc)


def maxsim_kd_colkern(query: Tensor, doc: Tensor) -> Tensor:
    """colpali-engine's `maxsim_kd` on colkern: query [B, Lq, d] x its own candidates
    doc [B, N, Ld, d] -> [B, N] float32; differentiable."""
    return torch.stack([maxsim(query[b], doc[b]) for b in range(query.shape[0])])


_loss_undo: List[Tuple[object, str, object]] = []


def _patch_losses() -> None:
    """Points colpali-engine's loss module (and the module it imports from) at colkern's
    in-batch and per-query MaxSim; _loss_undo records what to restore."""
    import importlib

    # Import every module before replacing anything: the loss module binds `from ..utils.maxsim
    # import maxsim_inbatch` when first imported, and importing it after utils.maxsim was patched
    # would record colkern's function as its "original", leaving it patched after unpatch.
    modules = []
    for name in ("colpali_engine.utils.maxsim", "colpali_engine.loss.late_interaction_losses"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:  # an older colpali-engine without that module: nothing to patch there
            continue
    for module in modules:
        for attr, replacement in (("maxsim_inbatch", maxsim_inbatch_colkern), ("maxsim_kd", maxsim_kd_colkern)):
            if hasattr(module, attr):
                _loss_undo.append((module, attr, getattr(module, attr)))
                setattr(module, attr, replacement)


def _make_replacement(colpali_padding: bool) -> Callable[..., Tensor]:
    def score_multi_vector_colkern(qs, ps, batch_size: int = 128, device=None) -> Tensor:
        return score_multi_vector(qs, ps, batch_size, device, colpali_padding=colpali_padding)

    score_multi_vector_colkern.__doc__ = (f"colkern.compat.score_multi_vector (colpali_padding={colpali_padding}), "
                                          f"installed by colkern.compat.patch_colpali_engine().")
    return score_multi_vector_colkern


def patch_colpali_engine(*, colpali_padding: bool = False) -> ColPaliEnginePatch:
    """Makes colpali-engine score with colkern: replaces
    `BaseVisualRetrieverProcessor.score_multi_vector`, through which every colpali-engine
    processor's `score()` (ColPali, ColQwen2, ColIdefics3, ...) dispatches.

    colpali_padding: see score_multi_vector (False: exact MaxSim; True: colpali-engine's numbers).
    Idempotent: patching again with the same mode returns a handle that does not own the patch;
    a different mode while patched raises ValueError (unpatch first).

    Training losses too: colpali_engine.loss's ColbertLoss, ColbertPairwiseCELoss and their
    negative-document variants score through `maxsim_inbatch` / `maxsim_kd`
    (colpali_engine.utils.maxsim), which are replaced by colkern's differentiable MaxSim
    (colkern.maxsim: forward + backward without the [B, B, Lq, Ld] einsum tensor). Every row is
    kept as given, so zero padding scores 0 exactly as in colpali-engine: loss values and
    gradients are colpali-engine's (the scores come back in float32). The smooth-max option
    keeps colpali-engine's own einsum path.
    """
    global _original, _patched_padding
    colpali_padding = bool(colpali_padding)
    base = _base_processor()
    with _patch_lock:
        if _original is not None:
            if _patched_padding != colpali_padding:
                raise ValueError(f"patch_colpali_engine: already patched with colpali_padding={_patched_padding}; "
                                 f"call unpatch_colpali_engine() first")
            return ColPaliEnginePatch(colpali_padding, installed=False)
        _original = base.__dict__["score_multi_vector"]
        base.score_multi_vector = staticmethod(_make_replacement(colpali_padding))
        _patched_padding = colpali_padding
        _patch_losses()
        return ColPaliEnginePatch(colpali_padding, installed=True)


def unpatch_colpali_engine() -> bool:
    """Restores colpali-engine's own score_multi_vector. -> True if it was patched."""
    global _original, _patched_padding
    with _patch_lock:
        if _original is None:
            return False
        _base_processor().score_multi_vector = _original
        _original, _patched_padding = None, None
        for owner, attr, value in reversed(_loss_undo):
            setattr(owner, attr, value)
        _loss_undo.clear()
        return True


def is_colpali_engine_patched() -> bool:
    """Whether colpali-engine currently scores with colkern."""
    return _original is not None
