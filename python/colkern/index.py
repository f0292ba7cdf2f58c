"""A multi-vector corpus: packed sign bits (+ optional float vectors), document ids, a file format.

    index = MultiVectorIndex.build(list_of_[L_i, dim]_tensors)          # bits + fp16 floats
    index.save("corpus.colk")                                           # atomic
    index = MultiVectorIndex.load("corpus.colk", mmap=True)             # larger than RAM: fine
    colkern.search(Q, index, k=10)                                      # see colkern.search

In memory: `bits` uint8 [T, ceil(dim/8)] (colkern.pack_bits: bit = x > 0, MSB first), optional
`floats` [T, dim] (float32 / float16 / bfloat16), `offsets` int64 [N+1] shared by both (document
n = rows offsets[n]:offsets[n+1]) and `ids`, N unique strings.

File format, version 1 (all integers little-endian):

    bytes 0..7    magic b"COLKIDX1"
    bytes 8..11   uint32 format version (1)
    bytes 12..15  uint32 reserved (0)
    bytes 16..23  uint64 length J of the metadata block
    bytes 24..    metadata: J bytes of UTF-8 JSON (first key "sha256"; then format_version, dim,
                  num_docs, num_vectors, float_dtype, byteorder, ids, payload_nbytes and
                  "arrays": name -> {"dtype", "shape", "offset", "nbytes"}; optional "attrs",
                  the index's user metadata, a JSON object)
    P = the first multiple of 64 at or after 24 + J: the payload, payload_nbytes bytes long.
                  Arrays "offsets" (int64 [N+1]), "bits" (uint8 [T, ceil(dim/8)]) and, when kept,
                  "floats" ([T, dim]) lie at P + offset, every offset a multiple of 64 (so each can
                  be memory-mapped in place); gaps are zero bytes. The file ends at P + payload_nbytes.

"sha256" is the hex SHA-256 of the metadata block (with those 64 hex digits read as "0"s)
followed by the payload, so it covers the ids as well as every array byte.

Saving writes a temporary file in the target's directory, flushes and fsyncs it, then
os.replace()s it over the target: readers see the old index or the new one, never a mix, and a
failed save leaves no temporary file. Loading checks magic, version, sizes and checksum before it
returns anything; every problem raises IndexFormatError (a ValueError) naming the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ._atomic import atomic_write
from .ops import PackedDocs, pack, pack_bits

MAGIC = b"COLKIDX1"
FORMAT_VERSION = 1
ALIGN = 64
_FIXED = struct.Struct("<8sIIQ")  # magic, version, reserved, metadata length: 24 bytes
_CHUNK = 64 << 20  # bytes per write / hash step
_FLOAT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_ARRAY_DTYPES = {"int64": torch.int64, "uint8": torch.uint8, **_FLOAT_DTYPES}
_DTYPE_NAMES = {v: k for k, v in _ARRAY_DTYPES.items()}

PathLike = Union[str, "os.PathLike[str]"]


class IndexFormatError(ValueError):
    """An index file that cannot be loaded: foreign, truncated, corrupt or of another version."""


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _nbytes(dim: int) -> int:
    return (dim + 7) // 8


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
        return _nbytes(self.dim)

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
        path = os.fspath(path)
        arrays = [("offsets", self.offsets), ("bits", self.bits)]
        if self.floats is not None:
            arrays.append(("floats", self.floats))
        layout, pos = {}, 0
        for name, t in arrays:
            pos = _align(pos)
            nbytes = t.numel() * t.element_size()
            layout[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape), "offset": pos, "nbytes": nbytes}
            pos += nbytes
        meta = {
            "sha256": "0" * 64,  # first key: its value is the first 64-hex-digit string in the block
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "num_docs": self.num_docs,
            "num_vectors": self.num_vectors,
            "float_dtype": _DTYPE_NAMES[self.floats.dtype] if self.floats is not None else None,
            "bits_dtype": "uint8",
            "byteorder": "little",
            "payload_nbytes": pos,
            "arrays": layout,
            "ids": list(self.ids),
            "attrs": _check_attrs(self.attrs, "MultiVectorIndex.save"),
        }
        block = json.dumps(meta, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        digest_at = _FIXED.size + block.index(b'"' + b"0" * 64 + b'"') + 1
        head = _FIXED.pack(MAGIC, FORMAT_VERSION, 0, len(block)) + block
        head += b"\0" * (_align(len(head)) - len(head))
        payload_start = len(head)

        def write(f) -> None:
            h = hashlib.sha256(block)
            f.write(head)
            written = 0
            for name, t in arrays:
                gap = layout[name]["offset"] - written
                if gap:
                    f.write(b"\0" * gap)
                    h.update(b"\0" * gap)
                _write_chunks(f, t, h)
                written = layout[name]["offset"] + layout[name]["nbytes"]
            f.seek(digest_at)
            f.write(h.hexdigest().encode("ascii"))
            f.seek(payload_start + written)

        atomic_write(path, write)

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
        if not os.path.isfile(path):
            raise FileNotFoundError(f"index file {path!r} does not exist")
        file_size = os.path.getsize(path)
        with open(path, "rb") as f:
            fixed = f.read(_FIXED.size)
            if len(fixed) < len(MAGIC):
                if MAGIC.startswith(fixed) and fixed:
                    raise IndexFormatError(f"index file {path!r} is truncated: {file_size} bytes, "
                                           f"shorter than its {_FIXED.size}-byte header")
                raise IndexFormatError(f"{path!r} is not a colkern index file (no {MAGIC!r} magic; "
                                       f"it is {file_size} bytes long)")
            if fixed[:len(MAGIC)] != MAGIC:
                raise IndexFormatError(f"{path!r} is not a colkern index file: it starts with "
                                       f"{fixed[:len(MAGIC)]!r}, expected magic {MAGIC!r}")
            if len(fixed) < _FIXED.size:
                raise IndexFormatError(f"index file {path!r} is truncated: {file_size} bytes, "
                                       f"shorter than its {_FIXED.size}-byte header")
            _, version, _, meta_len = _FIXED.unpack(fixed)
            if version != FORMAT_VERSION:
                raise IndexFormatError(f"index file {path!r} has format version {version}; this colkern "
                                       f"reads version {FORMAT_VERSION} only")
            if _FIXED.size + meta_len > file_size:
                raise IndexFormatError(f"index file {path!r} is truncated: its metadata block needs "
                                       f"{_FIXED.size + meta_len} bytes but the file has {file_size}")
            block = f.read(meta_len)
            meta = _parse_meta(block, path)
            payload_start = _align(_FIXED.size + meta_len)
            payload_nbytes = meta["payload_nbytes"]
            expected = payload_start + payload_nbytes
            if file_size < expected:
                raise IndexFormatError(f"index file {path!r} is truncated: {file_size} bytes, expected "
                                       f"{expected} ({meta['num_docs']} documents, {meta['num_vectors']} vectors)")
            if file_size > expected:
                raise IndexFormatError(f"index file {path!r} is corrupt: {file_size} bytes, expected "
                                       f"{expected} ({file_size - expected} unexpected trailing bytes)")
            if mmap:
                if verify:
                    f.seek(payload_start)
                    _verify(f, block, payload_nbytes, meta["sha256"], path)
                payload = _map_payload(path, payload_start, payload_nbytes)
            else:
                f.seek(payload_start)
                payload = torch.empty(payload_nbytes, dtype=torch.uint8)
                _verify(f, block, payload_nbytes, meta["sha256"], path, into=payload.numpy())
        arrays = {}
        for name, spec in meta["arrays"].items():
            t = payload[spec["offset"]: spec["offset"] + spec["nbytes"]]
            arrays[name] = t.view(_ARRAY_DTYPES[spec["dtype"]]).view(spec["shape"])
        offsets = arrays["offsets"]
        _check_loaded_offsets(offsets, meta["num_vectors"], path)
        try:
            return cls(arrays["bits"], offsets, meta["dim"], floats=arrays.get("floats"), ids=meta["ids"],
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
    if not isinstance(values, Tensor) or values.dim() != 2 or values.dtype not in _FLOAT_DTYPES.values():
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
    if dtype not in _FLOAT_DTYPES.values():
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
        seen, dup = set(), None
        for d in ids:
            if d in seen:
                dup = d
                break
            seen.add(d)
        raise ValueError(f"{op}: ids must be unique, but {dup!r} occurs more than once")
    return ids


def _check_arrays(bits, offsets, dim, floats, op: str) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"{op}: dim must be a positive int, got {dim!r}")
    if not isinstance(bits, Tensor) or bits.dtype != torch.uint8 or bits.dim() != 2 or bits.shape[1] != _nbytes(dim):
        raise ValueError(f"{op}: bits must be uint8 [T, {_nbytes(dim)}] for dim {dim}, got "
                         f"{getattr(bits, 'dtype', type(bits).__name__)} {tuple(getattr(bits, 'shape', ()))}")
    if not isinstance(offsets, Tensor) or offsets.dtype != torch.int64 or offsets.dim() != 1 or offsets.numel() < 1:
        raise ValueError(f"{op}: offsets must be int64 [N+1]")
    if int(offsets[0]) != 0 or int(offsets[-1]) != bits.shape[0]:
        raise ValueError(f"{op}: offsets must run from 0 to T = {bits.shape[0]}, got "
                         f"{int(offsets[0])}..{int(offsets[-1])}")
    if floats is not None:
        if not isinstance(floats, Tensor) or floats.dtype not in _FLOAT_DTYPES.values() \
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


def _check_loaded_offsets(offsets: Tensor, T: int, path: str) -> None:
    o = offsets
    if o.numel() < 1 or int(o[0]) != 0 or int(o[-1]) != T or bool((o[1:] < o[:-1]).any()):
        raise IndexFormatError(f"index file {path!r} is corrupt: offsets must be non-decreasing from 0 to {T}")


def _parse_meta(block: bytes, path: str) -> dict:
    try:
        meta = json.loads(block.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"index file {path!r} is corrupt: unreadable metadata block ({e})") from None
    try:
        dim, n, T = int(meta["dim"]), int(meta["num_docs"]), int(meta["num_vectors"])
        if not isinstance(meta["sha256"], str) or len(meta["sha256"]) != 64:
            raise ValueError("sha256 must be 64 hex digits")
        if not isinstance(meta["payload_nbytes"], int) or meta["payload_nbytes"] < 0:
            raise ValueError(f"bad payload_nbytes {meta['payload_nbytes']!r}")
        if meta.get("byteorder") != "little":
            raise ValueError(f"unsupported byteorder {meta.get('byteorder')!r}")
        if sys.byteorder != "little":
            raise ValueError("this reader needs a little-endian machine")
        arrays = meta["arrays"]
        want = {"offsets": ("int64", [n + 1]), "bits": ("uint8", [T, _nbytes(dim)])}
        if meta["float_dtype"] is not None:
            want["floats"] = (meta["float_dtype"], [T, dim])
        if set(arrays) != set(want):
            raise ValueError(f"arrays {sorted(arrays)} do not match {sorted(want)}")
        for name, (dtype, shape) in want.items():
            spec = arrays[name]
            if spec["dtype"] != dtype or list(spec["shape"]) != shape or dtype not in _ARRAY_DTYPES:
                raise ValueError(f"array {name!r} is {spec['dtype']} {spec['shape']}, expected {dtype} {shape}")
            size = _ARRAY_DTYPES[dtype].itemsize * int(np.prod(shape))
            if spec["nbytes"] != size or spec["offset"] % ALIGN or spec["offset"] < 0 \
                    or spec["offset"] + size > meta["payload_nbytes"]:
                raise ValueError(f"array {name!r} has a bad byte range")
        if not isinstance(meta["ids"], list) or len(meta["ids"]) != n:
            raise ValueError(f"{len(meta['ids'])} ids for {n} documents")
        if not isinstance(meta.get("attrs", {}), dict):
            raise ValueError("attrs must be a JSON object")
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"index file {path!r} is corrupt: bad metadata ({e})") from None
    return meta


def _write_chunks(f, t: Tensor, h) -> None:
    """Writes tensor t's bytes to f in chunks, feeding the hash."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    raw = t.contiguous().reshape(-1).view(torch.uint8).numpy()
    for lo in range(0, raw.shape[0], _CHUNK):
        chunk = memoryview(raw[lo:lo + _CHUNK])
        f.write(chunk)
        h.update(chunk)


def _verify(f, block: bytes, nbytes: int, digest: str, path: str, into: Optional[np.ndarray] = None) -> None:
    """Reads nbytes of payload from f (into `into` when given), checking the SHA-256."""
    h = hashlib.sha256(block.replace(digest.encode("ascii"), b"0" * 64, 1))
    buf = None if into is not None else bytearray(min(_CHUNK, max(nbytes, 1)))
    pos = 0
    while pos < nbytes:
        n = min(_CHUNK, nbytes - pos)
        view = memoryview(into[pos:pos + n]) if into is not None else memoryview(buf)[:n]
        got = f.readinto(view)
        if got != n:  # the file shrank under us
            raise IndexFormatError(f"index file {path!r} is truncated: payload ends after {pos + (got or 0)} "
                                   f"of {nbytes} bytes")
        h.update(view)
        pos += n
    if h.hexdigest() != digest:
        raise IndexFormatError(f"index file {path!r} is corrupt: SHA-256 checksum mismatch (stored "
                               f"{digest[:16]}..., computed {h.hexdigest()[:16]}...)")


def _map_payload(path: str, start: int, nbytes: int) -> Tensor:
    """A uint8 tensor viewing the read-only file mapping of bytes [start, start + nbytes)."""
    if nbytes == 0:
        return torch.empty(0, dtype=torch.uint8)
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(nbytes,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "non-writable array": intended, see class docs
        return torch.from_numpy(mm)
