"""The single-file index format (`.colk`): a checksummed header with JSON metadata, then
64-byte aligned arrays that can be memory-mapped in place.

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
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .._atomic import atomic_write

MAGIC = b"COLKIDX1"
FORMAT_VERSION = 1
ALIGN = 64
_FIXED = struct.Struct("<8sIIQ")  # magic, version, reserved, metadata length: 24 bytes
_CHUNK = 64 << 20  # bytes per write / hash step
FLOAT_DTYPE_NAMES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_ARRAY_DTYPES = {"int64": torch.int64, "int32": torch.int32, "uint8": torch.uint8, **FLOAT_DTYPE_NAMES}
_DTYPE_NAMES = {v: k for k, v in _ARRAY_DTYPES.items()}


class IndexFormatError(ValueError):
    """An index file that cannot be loaded: foreign, truncated, corrupt or of another version."""


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def bits_row_bytes(dim: int) -> int:
    """Bytes of one packed sign-bit vector: ceil(dim / 8)."""
    return (dim + 7) // 8


def write_index_file(path: str, arrays: Sequence[Tuple[str, Tensor]], fields: Dict) -> None:
    """Writes `arrays` (name, tensor) in order after a metadata block made of `fields` (dim,
    num_docs, ids, attrs, ...) plus the layout; atomically (temp file, fsync, replace)."""
    layout, pos = {}, 0
    for name, t in arrays:
        pos = align(pos)
        nbytes = t.numel() * t.element_size()
        layout[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape), "offset": pos, "nbytes": nbytes}
        pos += nbytes
    meta = {
        "sha256": "0" * 64,  # first key: its value is the first 64-hex-digit string in the block
        "format_version": FORMAT_VERSION,
        **fields,
        "byteorder": "little",
        "payload_nbytes": pos,
        "arrays": layout,
    }
    # Keep the key order of version 1 files (ids and attrs last) so identical indexes give
    # identical bytes whichever version wrote them.
    for key in ("ids", "attrs"):
        if key in meta:
            meta[key] = meta.pop(key)
    block = json.dumps(meta, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    digest_at = _FIXED.size + block.index(b'"' + b"0" * 64 + b'"') + 1
    head = _FIXED.pack(MAGIC, FORMAT_VERSION, 0, len(block)) + block
    head += b"\0" * (align(len(head)) - len(head))
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


def read_index_file(path: str, mmap: bool, verify: bool, *, extra: bool = False) -> Tuple[dict, Dict[str, Tensor]]:
    """Reads and checks a file written by write_index_file. -> (metadata, name -> tensor); the
    tensors view a read-only mapping when mmap, else one verified in-memory payload.

    extra: also accept arrays beyond offsets / bits / floats (the sharded index stores centroid
    codes and inverted lists beside them); their dtype, byte range and alignment are checked
    here, their shapes by the caller, which knows what they mean."""
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
        meta = _parse_meta(block, path, extra)
        payload_start = align(_FIXED.size + meta_len)
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
    _check_loaded_offsets(arrays["offsets"], meta["num_vectors"], path)
    return meta, arrays


def _check_loaded_offsets(offsets: Tensor, T: int, path: str) -> None:
    o = offsets
    if o.numel() < 1 or int(o[0]) != 0 or int(o[-1]) != T or bool((o[1:] < o[:-1]).any()):
        raise IndexFormatError(f"index file {path!r} is corrupt: offsets must be non-decreasing from 0 to {T}")


def _parse_meta(block: bytes, path: str, extra: bool = False) -> dict:
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
        want = {"offsets": ("int64", [n + 1]), "bits": ("uint8", [T, bits_row_bytes(dim)])}
        if meta["float_dtype"] is not None:
            want["floats"] = (meta["float_dtype"], [T, dim])
        if extra:
            for name in set(arrays) - set(want):
                spec = arrays[name]
                want[name] = (spec["dtype"], [int(x) for x in spec["shape"]])
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
