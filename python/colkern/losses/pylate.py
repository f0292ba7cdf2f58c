"""A drop-in for PyLate's MaxSim scores (`pylate.scores`), on colkern's differentiable MaxSim.

    with colkern.patch_pylate():          # or patch_pylate() ... unpatch_pylate()
        trainer.train()                   # PyLate's Contrastive / Distillation losses score with colkern

What is replaced: `colbert_scores` (queries [A, Lq, H] x documents [B, Ld, H] -> [A, B]),
`colbert_scores_pairwise` (query i x document i -> [B]) and `colbert_kd_scores` (queries
[B, Lq, H] x their own documents [B, K, Ld, H] -> [B, K]), wherever PyLate holds them: the
attributes of every loaded `pylate*` module and the defaults of functions and methods there that
name them (PyLate's losses take `score_metric=colbert_scores` as a default argument, bound when
the class was defined).

PyLate's own versions build the full einsum tensor ([A, B, Lq, Ld]) in the input dtype and apply
masks by multiplying similarities by 0, so a masked document token still takes part in the max
with similarity 0. colkern honours masks: a masked token never scores. The two agree whenever a
query token's best valid similarity is >= 0 (always the case in practice for ColBERT's
normalised embeddings); otherwise colkern returns the true MaxSim. Scores come back in float32
(fp32 accumulation) and are differentiable in both embeddings. Embeddings colkern does not take
(float64, numpy arrays, ...) are passed to PyLate's original function unchanged, and so is a call
that names one of PyLate's own scoring backends (`backend="torch" | "flash" | "lik"`, PyLate >= 1.6):
the caller asked for that implementation. `backend=None` or "auto" is scored by colkern.
Signatures follow PyLate 1.6 (`colbert_scores_pairwise(q, d, backend=None)`), with the masks of
the pairwise form as keywords.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..ops import FLOAT_DTYPES, maxsim

_NAMES = ("colbert_scores", "colbert_scores_pairwise", "colbert_kd_scores")


def _bool_mask(mask) -> Optional[Tensor]:
    if mask is None:
        return None
    mask = torch.as_tensor(mask)
    return mask if mask.dtype == torch.bool else mask != 0


def _takes(*tensors) -> bool:
    return all(isinstance(t, Tensor) and t.dtype in FLOAT_DTYPES for t in tensors)


def _pylate_backend(backend) -> bool:
    """True when the caller named one of PyLate's own backends (then PyLate scores)."""
    return backend is not None and str(backend).lower() != "auto"


def _call_original(original: Callable, *args, backend=None):
    return original(*args) if backend is None else original(*args, backend=backend)


def colbert_scores(queries_embeddings, documents_embeddings, queries_mask=None, documents_mask=None,
                   backend=None, *, _original: Optional[Callable] = None) -> Tensor:
    """[A, Lq, H] x [B, Ld, H] -> [A, B] float32 MaxSim; masks [A, Lq] / [B, Ld] (0 = ignore)."""
    q, d = queries_embeddings, documents_embeddings
    if _original is not None and (_pylate_backend(backend) or not (_takes(q, d) and q.dim() == 3 and d.dim() == 3)):
        return _call_original(_original, q, d, queries_mask, documents_mask, backend=backend)
    return maxsim(q, d, q_mask=_bool_mask(queries_mask), mask=_bool_mask(documents_mask))


def colbert_kd_scores(queries_embeddings, documents_embeddings, queries_mask=None, documents_mask=None,
                      backend=None, *, _original: Optional[Callable] = None) -> Tensor:
    """[B, Lq, H] x [B, K, Ld, H] -> [B, K]: each query against its own K documents."""
    q, d = queries_embeddings, documents_embeddings
    if _original is not None and (_pylate_backend(backend) or not (_takes(q, d) and q.dim() == 3 and d.dim() == 4)):
        return _call_original(_original, q, d, queries_mask, documents_mask, backend=backend)
    qm, dm = _bool_mask(queries_mask), _bool_mask(documents_mask)
    # One call per query: exactly the B x K pairs asked for (an all-pairs call would do B x more).
    return torch.stack([maxsim(q[b], d[b], q_mask=None if qm is None else qm[b],
                               mask=None if dm is None else dm[b]) for b in range(q.shape[0])])


def colbert_scores_pairwise(queries_embeddings, documents_embeddings, backend=None, *, queries_mask=None,
                            documents_mask=None, _original: Optional[Callable] = None) -> Tensor:
    """Query i against document i -> [B]; lists of [L, H] tensors or padded tensors. PyLate's own
    pairwise form has no masks: masked calls are colkern's extension."""
    q, d = queries_embeddings, documents_embeddings
    qs, ds = list(q), list(d)
    if _original is not None and (_pylate_backend(backend) or not (_takes(*qs, *ds) and len(qs) == len(ds))):
        if queries_mask is not None or documents_mask is not None:
            raise ValueError("colbert_scores_pairwise: masks are colkern's extension; PyLate's own pairwise "
                             "scores (which these inputs or this backend need) take none")
        return _call_original(_original, q, d, backend=backend)
    qm, dm = _bool_mask(queries_mask), _bool_mask(documents_mask)
    return torch.stack([maxsim(qs[i], ds[i].unsqueeze(0), q_mask=None if qm is None else qm[i],
                               mask=None if dm is None else dm[i].unsqueeze(0))[0] for i in range(len(qs))])


_REPLACEMENTS = {"colbert_scores": colbert_scores, "colbert_scores_pairwise": colbert_scores_pairwise,
                 "colbert_kd_scores": colbert_kd_scores}

_lock = threading.Lock()
_undo: Optional[List[Tuple[object, str, object]]] = None  # (owner, attribute, original value)


def _wrap(name: str, original: Callable) -> Callable:
    replacement = _REPLACEMENTS[name]

    def scored_by_colkern(*args, **kwargs):
        return replacement(*args, _original=original, **kwargs)

    scored_by_colkern.__name__ = name
    scored_by_colkern.__doc__ = f"colkern's {name} (installed by colkern.patch_pylate()). " + (replacement.__doc__ or "")
    scored_by_colkern.__colkern_original__ = original
    return scored_by_colkern


def _pylate_modules():
    return [m for n, m in list(sys.modules.items()) if m is not None and (n == "pylate" or n.startswith("pylate."))]


def _functions_with_defaults(module):
    """Functions defined in `module` and methods of its classes (their defaults may name a score)."""
    for value in list(vars(module).values()):
        if callable(value) and getattr(value, "__module__", None) == module.__name__:
            if isinstance(value, type):
                for member in vars(value).values():
                    fn = getattr(member, "__func__", member)
                    if hasattr(fn, "__defaults__"):
                        yield fn
            elif hasattr(value, "__defaults__"):
                yield value


class PyLatePatch:
    """Handle returned by patch_pylate(); as a context manager it restores PyLate on exit if this
    call installed the patch (nested `with` blocks are safe)."""

    def __init__(self, installed: bool):
        self.installed = installed

    @property
    def active(self) -> bool:
        return is_pylate_patched()

    def unpatch(self) -> bool:
        return unpatch_pylate()

    def __enter__(self) -> "PyLatePatch":
        return self

    def __exit__(self, *exc) -> None:
        if self.installed:
            unpatch_pylate()


def patch_pylate() -> PyLatePatch:
    """Makes PyLate score with colkern (see the module docstring for what is replaced and how
    masks differ). Imports `pylate` if it is not loaded yet; raises ImportError without it.
    Idempotent: patching again returns a handle that does not own the patch. Modules of PyLate
    imported after the patch see the patched `pylate.scores` functions when they import them by
    name from there."""
    global _undo
    with _lock:
        if _undo is not None:
            return PyLatePatch(installed=False)
        import pylate.scores as scores  # noqa: F401  (loads the functions to replace)

        originals: Dict[str, Callable] = {n: getattr(scores, n) for n in _NAMES if hasattr(scores, n)}
        if not originals:
            raise ImportError("patch_pylate: pylate.scores has none of " + ", ".join(_NAMES))
        wrapped = {id(fn): _wrap(name, fn) for name, fn in originals.items()}
        undo: List[Tuple[object, str, object]] = []
        for module in _pylate_modules():
            for attr, value in list(vars(module).items()):
                if id(value) in wrapped and any(value is o for o in originals.values()):
                    undo.append((module, attr, value))
                    setattr(module, attr, wrapped[id(value)])
            for fn in _functions_with_defaults(module):
                for slot in ("__defaults__", "__kwdefaults__"):
                    old = getattr(fn, slot)
                    if not old:
                        continue
                    values = old.values() if isinstance(old, dict) else old
                    if not any(any(v is o for o in originals.values()) for v in values):
                        continue
                    if isinstance(old, dict):
                        new = {k: wrapped.get(id(v), v) if any(v is o for o in originals.values()) else v
                               for k, v in old.items()}
                    else:
                        new = tuple(wrapped[id(v)] if any(v is o for o in originals.values()) else v for v in old)
                    undo.append((fn, slot, old))
                    setattr(fn, slot, new)
        _undo = undo
        return PyLatePatch(installed=True)


def unpatch_pylate() -> bool:
    """Restores PyLate's own scores. -> True if it was patched."""
    global _undo
    with _lock:
        if _undo is None:
            return False
        for owner, attr, value in reversed(_undo):
            setattr(owner, attr, value)
        _undo = None
        return True


def is_pylate_patched() -> bool:
    """Whether PyLate currently scores with colkern."""
    return _undo is not None
