"""colkern.Index: a sharded, appendable, memory-mapped multi-vector index directory.

    index = Index.create("pages.idx", dim=128)                  # directory: manifest + immutable shards
    index.add(docs, ids=[...], metadata=[{"lang": "en"}, ...])  # one new shard, one manifest swap
    index.delete(["a.pdf#page=3"])                             # tombstones: one manifest swap
    index.compact()                                            # merged shards without deleted docs
    index = Index.open("pages.idx")                            # mmap: nothing of the payload is read
    hits = index.search(Q, k=10, filter={"lang": "en"})        # SearchResult: ids, indices, scores

Positions (SearchResult.indices, index_of, id_at) number every document ever added in insertion
order, deleted ones included, so they stay stable until a compaction renumbers the live ones;
ids are stable always. A deleted id may be added again (delete + add = update). One writer at a
time (a lock file); readers never block, and an Index opened before another process's commit
keeps seeing its own snapshot (files it has mapped stay readable after a compaction unlinks
them) until reopened. Crash safety and file layout: colkern.retrieval.manifest; shard contents
and centred binarisation: colkern.retrieval.shard; candidate stage: colkern.retrieval.centroids.
"""
from __future__ import annotations

import bisect
import os
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from .._types import PathLike
from ..ops import FLOAT_DTYPES, PackedDocs, unpack_bits
from . import compaction
from .centroids import Codebook, auto_num_centroids, train_codebook
from .filters import MetadataColumns, check_metadata
from .index import MultiVectorIndex, _check_attrs, _check_ids, _pack_float
from .index_format import IndexFormatError
from .manifest import MANIFEST, Manifest, read_manifest, unreferenced_files, write_manifest, writer_lock
from .search import SearchResult
from .shard import Shard, encode, float_dtype_of, read_codebook, write_codebook, write_shard
from .sharded_search import AUTO, CANDIDATES, NPROBE, RESCORE, check_knobs, run_search  # noqa: F401 (re-exported)

_SAMPLE_PER_CENTROID = 16  # k-means training sample: 16 vectors per centroid, capped below
_SAMPLE_MAX = 1 << 20


class Index:
    """A sharded multi-vector index directory; construct with Index.create / Index.open /
    Index.from_multivector, not directly."""

    def __init__(self, path: str, verify: bool = False):
        self.path = path
        for attempt in range(3):
            m = read_manifest(path)
            try:
                self._load(m, verify)
                return
            except IndexFormatError:
                # A compaction may have committed and removed the files of the manifest just
                # read: retry with the new manifest; a real problem persists and is raised.
                if attempt == 2 or read_manifest(path).generation == m.generation:
                    raise

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: PathLike, dim: int, *, keep_float: bool = True, float_dtype: torch.dtype = torch.float16,
               center: bool = True, centroids: Optional[int] = None, train_sample: Optional[Tensor] = None,
               attrs: Optional[dict] = None) -> "Index":
        """A new empty index directory at `path` (FileExistsError if it holds an index).

        keep_float: store the vectors (float_dtype) for exact rescoring, else bits only. center:
        binarise x - mean (the mean of the training sample). centroids: codebook size K (default
        from the first add's size, see centroids.auto_num_centroids; pass the size the corpus will
        grow to). train_sample: float [S, dim] vectors to train the codebook on now; otherwise the
        first add trains it on a sample of its own vectors."""
        path = os.fspath(path)
        op = "Index.create"
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"{op}: dim must be a positive int, got {dim!r}")
        if keep_float and float_dtype not in FLOAT_DTYPES:
            raise ValueError(f"{op}: float_dtype must be torch.float32, float16 or bfloat16, got {float_dtype}")
        if centroids is not None and (isinstance(centroids, bool) or not isinstance(centroids, int) or centroids < 1):
            raise ValueError(f"{op}: centroids must be a positive int or None, got {centroids!r}")
        if os.path.exists(os.path.join(path, MANIFEST)):
            raise FileExistsError(f"{op}: {path!r} already holds an index (open it with colkern.Index.open)")
        if os.path.exists(path) and not os.path.isdir(path):
            raise FileExistsError(f"{op}: {path!r} exists and is not a directory")
        os.makedirs(path, exist_ok=True)
        m = Manifest(dim=dim, float_dtype=str(float_dtype).replace("torch.", "") if keep_float else None,
                     center=bool(center), num_centroids=centroids, attrs=_check_attrs(attrs, op))
        with writer_lock(path):
            for name in unreferenced_files(path, m):  # leftovers of a create that crashed before its manifest
                os.unlink(os.path.join(path, name))
            if train_sample is not None:
                sample = _check_sample(train_sample, dim, op)
                _commit_codebook(path, m, train_codebook(sample, centroids or auto_num_centroids(sample.shape[0]),
                                                         center=center))
            write_manifest(path, m)
        return cls(path)

    @classmethod
    def open(cls, path: PathLike, *, verify: bool = False) -> "Index":
        """Opens an index directory. Shards are memory-mapped: only headers (ids, metadata) and
        document offsets are read, so an index larger than RAM opens in moments. verify=True also
        checks every file's SHA-256 (reads everything); see also verify()."""
        return cls(os.fspath(path), verify)

    @classmethod
    def from_multivector(cls, mv: MultiVectorIndex, path: PathLike, *, metadata: Optional[Sequence[dict]] = None,
                         centroids: Optional[int] = None) -> "Index":
        """Converts a single-file MultiVectorIndex (its ids kept). With floats they are re-encoded
        (centred bits); a bits-only index keeps its own (uncentred) bits exactly, its codebook
        trained on the +-1 vectors the bits stand for."""
        if not isinstance(mv, MultiVectorIndex):
            raise TypeError(f"Index.from_multivector: mv must be a MultiVectorIndex, got {type(mv).__name__}")
        if mv.floats is not None:
            index = cls.create(path, mv.dim, float_dtype=mv.floats.dtype, centroids=centroids, attrs=mv.attrs)
            docs = PackedDocs(mv.floats, mv.offsets)
        else:
            index = cls.create(path, mv.dim, keep_float=False, center=False, centroids=centroids, attrs=mv.attrs)
            docs = PackedDocs(unpack_bits(mv.bits, mv.dim, mode="pm1"), mv.offsets)
        if mv.num_docs:
            index.add(docs, ids=mv.ids, metadata=metadata)
        return index

    # -- state ----------------------------------------------------------------------------------

    def _load(self, m: Manifest, verify: bool) -> None:
        self._m = m
        self.codebook: Optional[Codebook] = None
        if m.codebook is not None:
            self.codebook = read_codebook(os.path.join(self.path, m.codebook["file"]), m.codebook["sha256"], m.dim)
        self.shards: List[Shard] = [
            Shard.open(os.path.join(self.path, e["file"]), e, dim=m.dim, float_dtype=m.float_dtype,
                       codebook_sha256=m.codebook["sha256"], num_centroids=self.codebook.num_centroids, verify=verify)
            for e in m.shards]
        counts = torch.tensor([0] + [s.num_docs for s in self.shards], dtype=torch.int64)
        self.bases = torch.cumsum(counts, 0)
        self._base_list = self.bases.tolist()
        self._live = torch.ones(int(self.bases[-1]), dtype=torch.bool)
        for b, e in zip(self.bases.tolist(), m.shards):
            if e["deleted"]:
                self._live[b + torch.tensor(e["deleted"], dtype=torch.int64)] = False
        self._pos: Optional[Dict[str, int]] = None
        self._columns: Optional[MetadataColumns] = None

    def _refresh(self) -> None:
        """Under the writer lock: catch up with commits made through other Index objects."""
        m = read_manifest(self.path)
        if m.generation != self._m.generation:
            self._load(m, False)

    @property
    def dim(self) -> int:
        return self._m.dim

    @property
    def has_float(self) -> bool:
        return self._m.float_dtype is not None

    @property
    def num_positions(self) -> int:
        """Documents stored, deleted ones included (positions run 0..num_positions-1)."""
        return int(self.bases[-1])

    def __len__(self) -> int:
        return int(self._live.sum())

    @property
    def num_vectors(self) -> int:
        """Token vectors stored (deleted documents' included until compaction)."""
        return sum(s.num_vectors for s in self.shards)

    @property
    def bytes_per_vector(self) -> int:
        """Bytes stored per token vector: sign bits + centroid code + floats (if kept)."""
        fl = 0 if not self.has_float else self.dim * float_dtype_of(self._m.float_dtype).itemsize
        return (self.dim + 7) // 8 + 4 + fl

    @property
    def ids(self) -> List[str]:
        """Live ids in position order."""
        live = self._live.tolist()
        return [d for sh, b in zip(self.shards, self.bases.tolist()) for i, d in enumerate(sh.ids) if live[b + i]]

    def id_at(self, position: int) -> str:
        """The id of the document at `position` (deleted ones included)."""
        s = bisect.bisect_right(self._base_list, position) - 1
        return self.shards[s].ids[position - self._base_list[s]]

    def index_of(self, doc_id: str) -> int:
        """Position of the live document `doc_id` (KeyError if absent or deleted)."""
        if self._pos is None:
            live = self._live.tolist()
            self._pos = {d: int(b) + i for sh, b in zip(self.shards, self.bases.tolist())
                         for i, d in enumerate(sh.ids) if live[int(b) + i]}
        return self._pos[doc_id]

    def metadata_of(self, doc_id: str) -> dict:
        return self._metadata().of(self.index_of(doc_id))

    def _metadata(self) -> MetadataColumns:
        if self._columns is None:
            self._columns = MetadataColumns([(s.metadata, s.num_docs) for s in self.shards])
        return self._columns

    def verify(self) -> None:
        """Reads every file and checks its SHA-256 (IndexFormatError naming the bad file)."""
        self._load(read_manifest(self.path), True)

    def __repr__(self) -> str:
        kind = self._m.float_dtype or "bits only"
        K = self.codebook.num_centroids if self.codebook else None
        return (f"Index({self.path!r}, docs={len(self)}, vectors={self.num_vectors}, dim={self.dim}, {kind}, "
                f"shards={len(self.shards)}, centroids={K})")

    # -- writes ---------------------------------------------------------------------------------

    def add(self, docs, ids: Optional[Sequence[str]] = None, metadata: Optional[Sequence[dict]] = None) -> "Index":
        """Appends documents (a list of [L_i, dim] float tensors or a float PackedDocs) as ONE new
        shard, then commits by swapping the manifest. ids: unique strings not already live
        (default: fresh numbers); metadata: one JSON object per document. Returns self."""
        op = "Index.add"
        values, offsets = _pack_float(docs, op)
        if values.shape[1] != self.dim:
            raise ValueError(f"{op}: docs have dim {values.shape[1]} but the index has dim {self.dim}")
        n = offsets.numel() - 1
        metadata = check_metadata(metadata, n, op)
        with writer_lock(self.path):
            self._refresh()
            m = self._m.copy()
            if ids is None:
                ids = [str(m.next_id + i) for i in range(n)]
                m.next_id += n
            ids = _check_ids(ids, n, op)
            for d in ids:
                if self._has_live(d):
                    raise ValueError(f"{op}: id {d!r} is already in the index (ids must be unique across shards; "
                                     f"delete it first to replace it)")
            if self.codebook is None:
                T = values.shape[0]
                K = m.num_centroids or auto_num_centroids(T)
                if K > T:
                    raise ValueError(f"{op}: the first add trains {K} centroids but has only {T} vectors; add more "
                                     f"or create the index with fewer centroids / a train_sample")
                take = min(T, max(K * _SAMPLE_PER_CENTROID, 1 << 16), _SAMPLE_MAX)
                sample = values[torch.randperm(T, generator=torch.Generator().manual_seed(0))[:take]] \
                    if take < T else values
                _commit_codebook(self.path, m, train_codebook(sample, K, center=m.center))
                cb = read_codebook(os.path.join(self.path, m.codebook["file"]), m.codebook["sha256"], m.dim)
            else:
                cb = self.codebook
            arrays = encode(values, offsets, cb, float_dtype_of(m.float_dtype))
            name = m.new_file("shard")
            sha = write_shard(os.path.join(self.path, name), arrays, dim=self.dim, ids=ids, metadata=metadata,
                              codebook_sha256=m.codebook["sha256"])
            m.shards.append({"file": name, "sha256": sha, "num_docs": n, "num_vectors": values.shape[0],
                             "deleted": []})
            write_manifest(self.path, m)
            self._load(m, False)
        return self

    def _has_live(self, doc_id: str) -> bool:
        try:
            self.index_of(doc_id)
            return True
        except KeyError:
            return False

    def delete(self, ids: Sequence[str]) -> None:
        """Tombstones the documents `ids` in one manifest swap (all or nothing). KeyError naming
        the first id that is not live (unknown, already deleted, or repeated in `ids`)."""
        op = "Index.delete"
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"{op}: ids must be a sequence of str, got a single {type(ids).__name__}")
        with writer_lock(self.path):
            self._refresh()
            m = self._m.copy()
            seen = set()
            per_shard: Dict[int, List[int]] = {}
            for d in ids:
                if d in seen or not self._has_live(d):
                    raise KeyError(f"{op}: id {d!r} is not in the index (unknown or already deleted)")
                seen.add(d)
                p = self.index_of(d)
                s = bisect.bisect_right(self._base_list, p) - 1
                per_shard.setdefault(s, []).append(p - self._base_list[s])
            if not seen:
                return
            for s, local in per_shard.items():
                m.shards[s]["deleted"] = sorted(set(m.shards[s]["deleted"]) | set(local))
            write_manifest(self.path, m)
            self._load(m, False)

    def compact(self, *, retrain: bool = False, max_shard_vectors: int = 1 << 23) -> None:
        """Rewrites the live documents into merged shards of at most `max_shard_vectors` vectors
        (positions renumbered, ids kept), commits, then removes every file the new manifest does
        not reference (also leftovers of earlier crashes). retrain: train a new codebook on a
        sample of the live vectors (with floats: new mean and bits too)."""
        with writer_lock(self.path):
            self._refresh()
            m = compaction.compact(self, self._m.copy(), retrain, max_shard_vectors)
            if m is not None:
                write_manifest(self.path, m)
                self._load(m, False)
            for name in unreferenced_files(self.path, self._m):
                os.unlink(os.path.join(self.path, name))

    # -- search ---------------------------------------------------------------------------------

    def search(self, Q: Tensor, k: int = 10, *, q_mask: Optional[Tensor] = None, filter: Optional[dict] = None,
               nprobe: Union[int, str, None] = AUTO, candidates: Union[int, str] = AUTO, rescore: int = RESCORE,
               return_candidates: bool = False) -> SearchResult:
        """Top-k live documents for Q float [Lq, dim] or [B, Lq, dim] (q_mask: bool [Lq] / [B, Lq]).

        filter: metadata equality ({"key": value or [allowed values]}), applied before any
        scoring. nprobe: centroids probed per query token (None: exact search over every allowed
        document); candidates: documents the centroid stage keeps; "auto" (the default for both):
        16 probes and 512 candidates up to 16384 centroids, then both in proportion to the
        codebook (sharded_search.auto_knobs; 32 / 1024 at 100M vectors); rescore: how many of
        the candidates get exact float MaxSim (when fewer, float x bits picks them).
        Trading recall for speed: lower `rescore` first (float MaxSim over rescore x doc-length
        vectors is the largest cost; float x bits picks the survivors at ~1/3 of the cost per
        vector and reads 16 instead of 256 bytes per vector from the mmap), then `candidates`,
        then `nprobe`; for more recall raise `candidates` (the usual limit on large corpora),
        then nprobe. Probes covering all centroids with candidates and rescore >= the number of
        documents give exact results; so does nprobe=None, by a full scan.
        -> SearchResult: ids, indices (positions), scores (exact float MaxSim, or the bits
        estimate on a bits-only index); stage1 is "centroids" or "exact"."""
        op = "Index.search"
        check_knobs(k, nprobe, candidates, rescore, op)
        allowed = self._live
        if filter is not None:
            allowed = allowed & self._metadata().mask(filter, op)
        return run_search(self, Q, k, q_mask, allowed, filter is not None, nprobe, candidates, rescore,
                          return_candidates, op)


def _check_sample(sample, dim: int, op: str) -> Tensor:
    if not isinstance(sample, Tensor) or sample.dim() != 2 or sample.dtype not in FLOAT_DTYPES \
            or sample.shape[1] != dim or sample.shape[0] < 1:
        raise ValueError(f"{op}: train_sample must be a float [S >= 1, {dim}] tensor, got "
                         f"{getattr(sample, 'dtype', type(sample).__name__)} {tuple(getattr(sample, 'shape', ()))}")
    return sample.detach().cpu()


def _commit_codebook(path: str, m: Manifest, cb: Codebook) -> None:
    """Writes the codebook file and points `m` at it (committed with m's next manifest write)."""
    name = m.new_file("codebook")
    m.codebook = {"file": name, "sha256": write_codebook(os.path.join(path, name), cb)}
