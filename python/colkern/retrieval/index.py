"""A multi-vector corpus: packed sign bits (+ optional float vectors), document ids, a file format.

    index = MultiVectorIndex.build(list_of_[L_i, dim]_tensors)          # bits + fp16 floats
    index.save("corpus.colk")                                           # atomic
    index = MultiVectorIndex.load("corpus.colk", mmap=True)             # larger than RAM: fine
    colkern.search(Q, index, k=10)                                      # see colkern.search

In memory: `bits` uint8 [T, ceil(dim/8)] (colkern.pack_bits: bit = x > 0, MSB first), optional
`floats` [T, dim] (float32 / float16 / bfloat16), `offsets` int64 [N+1] shared by both (document
n = rows offsets[n]:offsets[n+1]) and `ids`, N unique strings.

The file format and its reader/writer are in colkern.retrieval.index_format.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from .._types import PathLike
from ..ops import FLOAT_DTYPES, PackedDocs, pack, pack_bits
from .index_format import IndexFormatError, bits_row_bytes, read_index_file, write_index_file

__all__ = ["IndexFormatError", "MultiVectorIndex"]


class MultiVectorIndex:
    """Sign bits (+ optional float vectors) of N documents with shared offsets and string ids.

    Build with MultiVectorIndex.build(docs) (or from_arrays for precomputed bits), grow with
    add(docs), persist with save(path) / MultiVectorIndex.load(path, mmap=...), query with
    colkern.search(Q, index, k). Attributes (read them, do not modify them in place):
      bits     uint8 [T, ceil(dim/8)]  packed sign bits, colkern.pack_bits order
      floats   [T, dim] float32/float16/bfloat16, or None for a bits-only index
      offsets  int64 [N+1]             document n = rows offsets[n]:offsets[n+1]
      ids      list of N unique str
      attrs    dict of JSON-serialisable user metadata saved with the index (e.g. how the
               documents were made: colkern index stores the model, DPI and tiling here)
    An index loaded with mmap=True keeps its arrays in read-only file mappings: writing into
    them is not allowed (the pages are mapped read-only and a write faults).
    """

    def __init__(self, bits: Tensor, offsets: Tensor, dim: int, *, floats: Optional[Tensor] = None,
                 ids: Optional[Sequence[str]] = None, path: Optional[str] = None, mmap: bool = False,
                 attrs: Optional[dict] = None):
        _check_arrays(bits, offsets, dim, floats, "MultiVectorIndex")
        self.attrs = _check_attrs(attrs, "MultiVectorIndex")
        n = offsets.numel() - 1
        self.bits = bits
        self.offsets = offsets
        self.floats = floats
        self._dim = int(dim)
        self.ids = _check_ids(ids, n, "MultiVectorIndex")
        self._pos: Optional[Dict[str, int]] = None
        self._ranges = None
        self.path = path  # the file it was loaded from, if any
        self.is_mmap = mmap

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def build(cls, docs, *, ids: Optional[Sequence[str]] = None, keep_float: bool = True,
              float_dtype: torch.dtype = torch.float16, attrs: Optional[dict] = None) -> "MultiVectorIndex":
        """Index a list of [L_i, dim] float tensors (or a float PackedDocs).

        keep_float: also store the vectors (in `float_dtype`) for float rescoring; without them
        the index holds ceil(dim/8) bytes per vector. ids: N unique strings, default "0".."N-1".
        """
        values, offsets = _pack_float(docs, "MultiVectorIndex.build")
        floats = _float_copy(values, float_dtype, "MultiVectorIndex.build") if keep_float else None
        bits = pack_bits(values.contiguous())
        return cls(bits, offsets, values.shape[1], floats=floats, ids=ids, attrs=attrs)

    @classmethod
    def from_arrays(cls, bits: Tensor, offsets: Tensor, dim: int, *, floats: Optional[Tensor] = None,
                    ids: Optional[Sequence[str]] = None, attrs: Optional[dict] = None) -> "MultiVectorIndex":
        """Wrap precomputed arrays (no copy): bits uint8 [T, ceil(dim/8)], offsets int64 [N+1],
        optional floats [T, dim]. The bits must be colkern.pack_bits of the floats, if both."""
        return cls(bits, offsets, dim, floats=floats, ids=ids, attrs=attrs)

    @classmethod
    def concat(cls, indexes: Sequence["MultiVectorIndex"], *, attrs: Optional[dict] = None) -> "MultiVectorIndex":
        """One in-memory index holding the documents of `indexes` in order (ids must stay unique).
        All must have the same dim and either all or none hold floats (same float dtype).
        attrs default to the first index's."""
        op = "MultiVectorIndex.concat"
        indexes = list(indexes)
        if not indexes or not all(isinstance(x, MultiVectorIndex) for x in indexes):
            raise ValueError(f"{op}: indexes must be a non-empty sequence of MultiVectorIndex")
        first = indexes[0]
        for i, x in enumerate(indexes[1:], 1):
            if x.dim != first.dim:
                raise ValueError(f"{op}: indexes[{i}] has dim {x.dim} but indexes[0] has dim {first.dim}")
            if x.float_dtype != first.float_dtype:
                raise ValueError(f"{op}: indexes[{i}] holds floats {x.float_dtype} but indexes[0] holds "
                                 f"{first.float_dtype}")
        bits = torch.cat([x.bits for x in indexes], 0)
        floats = torch.cat([x.floats for x in indexes], 0) if first.floats is not None else None
        lengths = torch.cat([x.offsets[1:] - x.offsets[:-1] for x in indexes])
        offsets = torch.zeros(lengths.numel() + 1, dtype=torch.int64)
        torch.cumsum(lengths, 0, out=offsets[1:])
        ids = [i for x in indexes for i in x.ids]
        return cls(bits, offsets, first.dim, floats=floats, ids=ids,
                   attrs=first.attrs if attrs is None else attrs)

    def add(self, docs, ids: Optional[Sequence[str]] = None) -> "MultiVectorIndex":
        """Append documents (a list of [L_i, dim] float tensors or a PackedDocs); re-packs the
        arrays (copies them, also for an mmap-loaded index, which becomes an in-memory one).
        ids default to str(num_docs + i). Returns self."""
        values, offsets = _pack_float(docs, "MultiVectorIndex.add")
        if values.shape[1] != self.dim:
            raise ValueError(f"MultiVectorIndex.add: docs have dim {values.shape[1]} but the index has dim {self.dim}")
        n_old, n_new = self.num_docs, offsets.numel() - 1
        if ids is None:
            new_ids = [str(n_old + i) for i in range(n_new)]
        else:
            new_ids = _check_ids(ids, n_new, "MultiVectorIndex.add")
        all_ids = _check_ids(self.ids + new_ids, n_old + n_new, "MultiVectorIndex.add")
        dev = self.bits.device
        bits = torch.cat([self.bits, pack_bits(values.contiguous()).to(dev)], 0)
        floats = None
        if self.floats is not None:
            floats = torch.cat([self.floats, _float_copy(values, self.floats.dtype, "MultiVectorIndex.add").to(dev)], 0)
        offs = torch.cat([self.offsets, offsets[1:].to(self.offsets.device) + self.offsets[-1]])
        _check_arrays(bits, offs, self.dim, floats, "MultiVectorIndex.add")
        self.bits, self.floats, self.offsets, self.ids = bits, floats, offs.contiguous(), all_ids
        self._pos = None
        self._ranges = None
        self.is_mmap = False
        return self

    def to(self, device) -> "MultiVectorIndex":
        """A copy of the index with its arrays on `device` (e.g. "cuda" for GPU search)."""
        floats = self.floats.to(device) if self.floats is not None else None
        return MultiVectorIndex(self.bits.to(device), self.offsets.to(device), self.dim, floats=floats,
                                ids=list(self.ids), attrs=json.loads(json.dumps(self.attrs)))

    # -- properties -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def num_docs(self) -> int:
        return self.offsets.numel() - 1

    def __len__(self) -> int:
        return self.num_docs

    @property
    def num_vectors(self) -> int:
        return self.bits.shape[0]

    @property
    def has_float(self) -> bool:
        return self.floats is not None

    @property
    def float_dtype(self) -> Optional[torch.dtype]:
        return self.floats.dtype if self.floats is not None else None

    @property
    def bits_bytes_per_vector(self) -> int:
        """Bytes of packed sign bits per vector: ceil(dim / 8)."""
        return bits_row_bytes(self.dim)

    @property
    def float_bytes_per_vector(self) -> int:
        """Bytes of float vector per vector (0 for a bits-only index)."""
        return 0 if self.floats is None else self.dim * self.floats.element_size()

    @property
    def bytes_per_vector(self) -> int:
        """Bytes stored per vector: bits plus, when kept, the float vector."""
        return self.bits_bytes_per_vector + self.float_bytes_per_vector

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays (bits, floats, offsets); the ids are not counted."""
        return self.num_vectors * self.bytes_per_vector + self.offsets.numel() * 8

    @property
    def lengths(self) -> Tensor:
        return self.ranges()[1]

    def ranges(self):
        """(starts [N], lengths [N]) int64: the row ranges the torch.ops.colkern ops take."""
        if self._ranges is None:
            self._ranges = (self.offsets[:-1].contiguous(), (self.offsets[1:] - self.offsets[:-1]).contiguous())
        return self._ranges

    def packed_bits(self) -> PackedDocs:
        return PackedDocs(self.bits, self.offsets)

    def packed_floats(self) -> PackedDocs:
        if self.floats is None:
            raise ValueError("MultiVectorIndex: this index keeps no float vectors (built with keep_float=False)")
        return PackedDocs(self.floats, self.offsets)

    def index_of(self, doc_id: str) -> int:
        """The position of document `doc_id` (KeyError if absent)."""
        if self._pos is None:
            self._pos = {d: i for i, d in enumerate(self.ids)}
        return self._pos[doc_id]

    def __repr__(self) -> str:
        kind = f"floats={str(self.float_dtype).replace('torch.', '')}" if self.floats is not None else "bits only"
        where = f", mmap={self.path!r}" if self.is_mmap else ""
        return (f"MultiVectorIndex(num_docs={self.num_docs}, num_vectors={self.num_vectors}, dim={self.dim}, "
                f"{kind}, nbytes={self.nbytes}{where})")

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Write the index to `path` atomically (temp file in the same directory, fsync, replace)."""
        arrays = [("offsets", self.offsets), ("bits", self.bits)]
        if self.floats is not None:
            arrays.append(("floats", self.floats))
        fields = {
            "dim": self.dim,
            "num_docs": self.num_docs,
            "num_vectors": self.num_vectors,
            "float_dtype": str(self.floats.dtype).replace("torch.", "") if self.floats is not None else None,
            "bits_dtype": "uint8",
            "ids": list(self.ids),
            "attrs": _check_attrs(self.attrs, "MultiVectorIndex.save"),
        }
        write_index_file(os.fspath(path), arrays, fields)

    @classmethod
    def load(cls, path: PathLike, mmap: bool = False, *, verify: bool = True) -> "MultiVectorIndex":
        """Read an index written by save().

        mmap=False reads the arrays into memory and always verifies the checksum. mmap=True maps
        the file read-only (numpy.memmap): the tensors view the mapping, nothing is copied, and an
        index larger than RAM can be searched (pages are read on demand). verify=False skips the
        checksum pass of an mmap load (it reads the whole file once); the header, sizes and
        offsets are still checked.
        """
        path = os.fspath(path)
        meta, arrays = read_index_file(path, mmap, verify)
        try:
            return cls(arrays["bits"], arrays["offsets"], meta["dim"], floats=arrays.get("floats"), ids=meta["ids"],
                       path=path, mmap=mmap, attrs=meta.get("attrs"))
        except (TypeError, ValueError) as e:
            raise IndexFormatError(f"index file {path!r} is corrupt: {e}") from None


# ---------------------------------------------------------------------------------------------
# helpers


def _pack_float(docs, op: str):
    if isinstance(docs, PackedDocs):
        values, offsets = docs.values, docs.offsets
    elif isinstance(docs, Tensor):
        raise TypeError(f"{op}: docs must be a list of [L_i, dim] float tensors or a PackedDocs, got a single tensor")
    else:
        docs = list(docs)
        if not docs:
            raise ValueError(f"{op}: docs is empty")
        packed = pack([d.detach().cpu() if isinstance(d, Tensor) else d for d in docs])
        values, offsets = packed.values, packed.offsets
    if not isinstance(values, Tensor) or values.dim() != 2 or values.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: docs must hold float32/float16/bfloat16 [L, dim] vectors, got "
                         f"{getattr(values, 'dtype', type(values).__name__)} {tuple(getattr(values, 'shape', ()))}")
    if values.shape[1] < 1:
        raise ValueError(f"{op}: dim must be >= 1")
    values = values.detach().cpu()
    offsets = offsets.cpu()
    if offsets.dtype != torch.int64 or offsets.dim() != 1 or offsets.numel() < 1 or int(offsets[0]) != 0 \
            or int(offsets[-1]) != values.shape[0] or bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError(f"{op}: PackedDocs offsets must be int64 [N+1], non-decreasing, from 0 to {values.shape[0]}")
    return values, offsets


def _float_copy(values: Tensor, dtype: torch.dtype, op: str) -> Tensor:
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: float_dtype must be torch.float32, float16 or bfloat16, got {dtype}")
    return values.to(dtype).contiguous()


def _check_ids(ids, n: int, op: str) -> List[str]:
    if ids is None:
        return [str(i) for i in range(n)]
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{op}: ids must be a sequence of str, got a single {type(ids).__name__}")
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"{op}: got {len(ids)} ids for {n} documents")
    for i, d in enumerate(ids):
        if not isinstance(d, str):
            raise TypeError(f"{op}: ids must be str, but ids[{i}] is {type(d).__name__} {d!r}")
    if len(set(ids)) != n:
        dup = next(d for d, count in Counter(ids).items() if count > 1)
        raise ValueError(f"{op}: ids must be unique, but {dup!r} occurs more than once")
    return ids


def _check_arrays(bits, offsets, dim, floats, op: str) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"{op}: dim must be a positive int, got {dim!r}")
    if not isinstance(bits, Tensor) or bits.dtype != torch.uint8 or bits.dim() != 2 or bits.shape[1] != bits_row_bytes(dim):
        raise ValueError(f"{op}: bits must be uint8 [T, {bits_row_bytes(dim)}] for dim {dim}, got "
                         f"{getattr(bits, 'dtype', type(bits).__name__)} {tuple(getattr(bits, 'shape', ()))}")
    if not isinstance(offsets, Tensor) or offsets.dtype != torch.int64 or offsets.dim() != 1 or offsets.numel() < 1:
        raise ValueError(f"{op}: offsets must be int64 [N+1]")
    if int(offsets[0]) != 0 or int(offsets[-1]) != bits.shape[0]:
        raise ValueError(f"{op}: offsets must run from 0 to T = {bits.shape[0]}, got "
                         f"{int(offsets[0])}..{int(offsets[-1])}")
    if floats is not None:
        if not isinstance(floats, Tensor) or floats.dtype not in FLOAT_DTYPES \
                or tuple(floats.shape) != (bits.shape[0], dim):
            raise ValueError(f"{op}: floats must be float32/float16/bfloat16 [{bits.shape[0]}, {dim}], got "
                             f"{getattr(floats, 'dtype', type(floats).__name__)} {tuple(getattr(floats, 'shape', ()))}")
        if floats.device != bits.device:
            raise ValueError(f"{op}: floats are on {floats.device} but bits on {bits.device}")
    for name, t in (("bits", bits), ("offsets", offsets), ("floats", floats)):
        if t is not None and not t.is_contiguous():
            raise ValueError(f"{op}: {name} must be contiguous")


def _check_attrs(attrs, op: str) -> dict:
    """attrs must survive a JSON round trip unchanged (it is stored in the metadata block)."""
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        raise TypeError(f"{op}: attrs must be a dict of JSON-serialisable values, got {type(attrs).__name__}")
    try:
        text = json.dumps(attrs, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{op}: attrs must be JSON-serialisable ({e})") from None
    return json.loads(text)


