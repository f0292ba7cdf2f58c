"""Approximate nearest-neighbour search for the dense routes ("image", "text"): a usearch HNSW graph.

Exact dense search scores every vector of a route (linear in its items). A route with at least
ANN_MIN_ITEMS items (build option ann="auto"; "always" / "never" force it) also gets an HNSW
graph built with usearch, saved beside its sub-index as `<kind>.usearch` (text.usearch,
image.usearch) and memory-mapped on open, so opening costs no copy and only the pages a query
walks are read.

Parameters (usearch's names; the HNSW paper's in brackets):
  connectivity    (M, default 16): edges per node and layer; more gives better recall and a
                  bigger, slower-to-build graph.
  expansion_add   (ef_construction, default 128): candidates kept while inserting; more gives a
                  better graph and a slower build.
  expansion_search (ef, default 256): candidates kept while searching; more gives better
                  recall and slower queries (200k 384-d vectors of intrinsic dimension about
                  32: recall@10 0.94 at 128, 0.98 at 256). Recorded at build, changeable at open
                  (HybridIndex.open(expansion_search=...)); the search never keeps fewer than
                  the k results asked for.

Metric: inner product ("ip", usearch distance = 1 - dot) on the stored float32 vectors, which
the text and SigLIP encoders L2-normalise, so it is their cosine. Keys are the items' positions
in the route's sub-index. The graph file holds its own float32 copy of the vectors (usearch
reads them during the walk), so a route with a graph takes about twice the disk.

Scores are exact: the graph's candidates are re-scored with colkern's maxsim_topk on the
sub-index's own float vectors, in position order, so every score is the exact route's score and
ties go to the lower position as in the exact search; only recall is approximate (the graph may
miss a true neighbour, never misreport one).

hybrid.json records each graph ("ann": kind -> record: file, bytes, sha256, count, dim, metric,
dtype, the three parameters, usearch version). The SHA-256 is checked on open, before usearch
reads the file: usearch trusts its input, so a damaged file must never reach it.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .._types import PathLike
from ..ops import PackedDocs, maxsim_topk

ANN_MIN_ITEMS = 20_000  # below this, exact search is a few ms per query: no graph needed
ANN_MODES = ("auto", "always", "never")
DENSE_KINDS = ("image", "text")
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
METRIC = "ip"
DTYPE = "f32"
_RECORD_KEYS = ("file", "bytes", "sha256", "count", "dim", "metric", "dtype", "connectivity", "expansion_add",
                "expansion_search")


class AnnFileError(ValueError):
    """A graph file that is missing, damaged or does not match its record (store.py names the index)."""


def _usearch():
    try:
        from usearch.index import Index
    except ImportError as e:
        raise ImportError("the hybrid index's ANN search needs usearch: pip install 'usearch>=2.9' (part of the "
                          "colkern[hybrid] extra)") from e
    return Index


def _positive_int(value, name: str, op: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return value


def check_ann_mode(ann, min_items, op: str = "HybridIndex.build") -> None:
    """Validates the build options ann ("auto" | "always" | "never") and ann_min_items (int >= 1)."""
    if not isinstance(ann, str) or ann not in ANN_MODES:
        raise ValueError(f"{op}: ann must be one of {ANN_MODES}, got {ann!r}")
    _positive_int(min_items, "ann_min_items", op)


def wants_ann(ann: str, n_items: int, min_items: int = ANN_MIN_ITEMS) -> bool:
    """Whether a dense route of n_items items gets a graph under build option `ann`."""
    check_ann_mode(ann, min_items)
    return n_items > 0 and (ann == "always" or (ann == "auto" and n_items >= min_items))


def _file_digest(path: str, *, fsync: bool = False) -> Tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in 8 MiB blocks; fsync=True also flushes it to disk."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 23), b""):
            h.update(block)
            size += len(block)
        if fsync:
            os.fsync(f.fileno())
    return size, h.hexdigest()


class AnnIndex:
    """A usearch HNSW graph over one dense route's vectors (see the module doc). index: the
    usearch Index; record: what hybrid.json stores about it (after save or open)."""

    def __init__(self, index: Any, record: Optional[dict] = None):
        self.index = index
        self.record = dict(record or {})

    @property
    def count(self) -> int:
        return len(self.index)

    @property
    def dim(self) -> int:
        return int(self.index.ndim)

    @property
    def expansion_search(self) -> int:
        return int(self.index.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self.index.expansion_search = _positive_int(value, "expansion_search", "AnnIndex")

    def __repr__(self) -> str:
        return (f"AnnIndex(usearch HNSW, {self.count} x {self.dim}, {METRIC}, connectivity="
                f"{self.index.connectivity}, expansion_search={self.expansion_search})")

    # -- build, save, open ---------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: Tensor, *, connectivity: int = CONNECTIVITY, expansion_add: int = EXPANSION_ADD,
              expansion_search: int = EXPANSION_SEARCH) -> "AnnIndex":
        """The graph over vectors: float [N, D] (row n gets key n), built on
        torch.get_num_threads() threads."""
        op = "AnnIndex.build"
        if not isinstance(vectors, Tensor) or vectors.dim() != 2 or vectors.shape[0] < 1 or vectors.shape[1] < 1:
            raise ValueError(f"{op}: vectors must be a float tensor [N, D] with N, D >= 1, got "
                             f"{tuple(vectors.shape) if isinstance(vectors, Tensor) else type(vectors).__name__}")
        for name, value in (("connectivity", connectivity), ("expansion_add", expansion_add),
                            ("expansion_search", expansion_search)):
            _positive_int(value, name, op)
        Index = _usearch()
        x = vectors.detach().to("cpu", torch.float32).contiguous().numpy()
        index = Index(ndim=x.shape[1], metric=METRIC, dtype=DTYPE, connectivity=connectivity,
                      expansion_add=expansion_add, expansion_search=expansion_search)
        index.add(np.arange(x.shape[0], dtype=np.uint64), x, threads=torch.get_num_threads())
        return cls(index)

    def save(self, path: PathLike) -> dict:
        """Writes the graph to `path` (a fresh file in a directory not yet published: the hybrid
        store's temporary directory) and flushes it. -> its record for hybrid.json."""
        path = os.fspath(path)
        self.index.save(path)
        size, digest = _file_digest(path, fsync=True)
        import usearch

        self.record = {"file": os.path.basename(path), "bytes": size, "sha256": digest, "count": self.count,
                       "dim": self.dim, "metric": METRIC, "dtype": DTYPE, "connectivity": int(self.index.connectivity),
                       "expansion_add": int(self.index.expansion_add), "expansion_search": self.expansion_search,
                       "usearch": usearch.__version__}
        return dict(self.record)

    @classmethod
    def open(cls, path: PathLike, record: Mapping, *, count: int, dim: int, mmap: bool = True,
             expansion_search: Optional[int] = None) -> "AnnIndex":
        """Opens a graph written by save, checked against its record and the sub-index it serves
        (count items of dim). mmap: memory-map the file (usearch's view) rather than load it.
        expansion_search: override the recorded one. Raises AnnFileError for a missing, damaged
        or mismatched file, ImportError without usearch."""
        path = os.fspath(path)
        name = os.path.basename(path)
        if not isinstance(record, Mapping) or any(k not in record for k in _RECORD_KEYS):
            raise AnnFileError(f"the manifest's record of {name} is incomplete (needs {', '.join(_RECORD_KEYS)})")
        if record["metric"] != METRIC or record["dtype"] != DTYPE:
            raise AnnFileError(f"{name}: metric {record['metric']!r} / dtype {record['dtype']!r}, this colkern "
                               f"reads {METRIC!r} / {DTYPE!r}; build the index again")
        if record["count"] != count or record["dim"] != dim:
            raise AnnFileError(f"{name} indexes {record['count']} x {record['dim']} vectors but its sub-index "
                               f"holds {count} x {dim}")
        if not os.path.isfile(path):
            raise AnnFileError(f"{name} is missing but the manifest records it")
        size, digest = _file_digest(path)
        if size != record["bytes"] or digest != record["sha256"]:
            raise AnnFileError(f"{name} is damaged: {size} bytes with SHA-256 {digest[:12]}..., the manifest "
                               f"records {record['bytes']} bytes with {str(record['sha256'])[:12]}...")
        Index = _usearch()
        try:
            index = Index.restore(path, view=mmap)
        except (ValueError, RuntimeError, OSError) as e:
            raise AnnFileError(f"{name}: usearch cannot read it ({e})") from None
        if index is None or len(index) != count or index.ndim != dim:
            raise AnnFileError(f"{name}: usearch reads {0 if index is None else len(index)} vectors, expected "
                               f"{count} x {dim}")
        ann = cls(index, record)
        ann.expansion_search = record["expansion_search"] if expansion_search is None else expansion_search
        return ann

    # -- search --------------------------------------------------------------------------------

    def candidates(self, Q: Tensor, k: int) -> List[Tuple[np.ndarray, np.ndarray]]:
        """The graph's own answer: per query (positions int64, approximate dot products
        1 - usearch distance), best first, at most k. Q: float [B, D]."""
        k = _positive_int(k, "k", "AnnIndex.search")
        if not isinstance(Q, Tensor) or Q.dim() != 2 or Q.shape[1] != self.dim:
            raise ValueError(f"AnnIndex.search: Q must be a float tensor [B, {self.dim}], got "
                             f"{tuple(Q.shape) if isinstance(Q, Tensor) else type(Q).__name__}")
        q = Q.detach().to("cpu", torch.float32).contiguous().numpy()
        m = self.index.search(q, k, threads=torch.get_num_threads())
        keys, dist = np.atleast_2d(m.keys), np.atleast_2d(m.distances)
        counts = np.atleast_1d(getattr(m, "counts", np.full(len(q), len(m.keys))))
        return [(keys[b, :n].astype(np.int64), (1.0 - dist[b, :n]).astype(np.float32))
                for b, n in enumerate(counts.tolist())]

    def search(self, Q: Tensor, floats: Tensor, k: int) -> List[List[Tuple[int, float]]]:
        """Per query [(position, score)], best first, at most k: the graph's candidates re-scored
        exactly on floats [N, D] (the route's stored vectors, row = position). Q: float [B, D]."""
        out = []
        Q = Q.detach().to("cpu", floats.dtype)
        for b, (keys, _) in enumerate(self.candidates(Q, k)):
            if not len(keys):
                out.append([])
                continue
            cand = torch.from_numpy(np.sort(keys))  # position order: ties go to the lower position
            rows = floats[cand].contiguous()
            offsets = torch.arange(len(cand) + 1, dtype=torch.int64)
            s, j = maxsim_topk(Q[b:b + 1], PackedDocs(rows, offsets), k)
            out.append(list(zip(cand[j].tolist(), s.tolist())))
        return out


def build_anns(subs: Mapping[str, Any], ann: str = "auto", min_items: int = ANN_MIN_ITEMS,
               **params) -> Dict[str, AnnIndex]:
    """Graphs for the dense routes of `subs` (kind -> MultiVectorIndex or None) that `ann` and
    min_items call for. ann="auto" without usearch installed warns and keeps exact search;
    "always" raises ImportError. params: AnnIndex.build's."""
    check_ann_mode(ann, min_items)
    kinds = [kind for kind in DENSE_KINDS if subs.get(kind) is not None and wants_ann(ann, subs[kind].num_docs,
                                                                                       min_items)]
    if not kinds:
        return {}
    try:
        _usearch()
    except ImportError as e:
        if ann == "always":
            raise
        warnings.warn(f"{e}; the {' and '.join(kinds)} route(s) keep exact search", stacklevel=2)
        return {}
    return {kind: AnnIndex.build(subs[kind].floats, **params) for kind in kinds}
