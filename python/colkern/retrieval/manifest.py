"""The manifest of a sharded index directory: which immutable files make up the index now.

    pages.idx/
      MANIFEST.json          this file's JSON: the one mutable thing, replaced atomically
      codebook-000001.colk   centroids + corpus mean (colkern.retrieval.shard)
      shard-000002.colk      immutable shards, in insertion order
      LOCK                   flock()ed by a writer (add / delete / compact)

Every change (add, delete, compact) writes its new files first, then replaces MANIFEST.json in
one atomic rename (colkern._atomic: temp file, fsync, rename, directory fsync). A crash at any
point leaves the old manifest or the new one, and both reference only complete files; files no
manifest references (a shard written just before a crash, shards replaced by a compaction,
temp files) are ignored when opening and removed by the next compact().

Tombstones live in the manifest (per shard, the sorted local positions of deleted documents),
so a delete is one manifest swap and never touches a shard. Each shard entry records the shard
file's own SHA-256 (from its header): a file of the same name that is not the committed one, e.g.
one a crashed add left behind, is detected on open.

The JSON carries "checksum": the SHA-256 of its canonical form without that key, so a manifest
damaged on disk is refused (IndexFormatError naming the file) rather than misread.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterator, List, Optional

from .._atomic import atomic_write_bytes
from .index_format import IndexFormatError

MANIFEST = "MANIFEST.json"
LOCK = "LOCK"
FORMAT = "colkern.Index"
VERSION = 1
_OWNED = re.compile(r"^(shard|codebook)-\d{6,}\.colk$|^\..*\.tmp$")  # files this index may delete


@dataclass
class Manifest:
    """dim, float_dtype ("float16"... or None: bits only), center (centred binarisation),
    num_centroids (requested K, None = chosen from the first add), codebook ({"file", "sha256"}
    or None before the first add), shards (list of {"file", "sha256", "num_docs", "num_vectors",
    "deleted": sorted local positions}), next_file / next_id (counters for new file names and
    default ids), generation (incremented by every commit), attrs (user JSON)."""

    dim: int
    float_dtype: Optional[str]
    center: bool = True
    num_centroids: Optional[int] = None
    codebook: Optional[Dict] = None
    shards: List[Dict] = field(default_factory=list)
    next_file: int = 1
    next_id: int = 0
    generation: int = 0
    attrs: Dict = field(default_factory=dict)

    def copy(self) -> "Manifest":
        return copy.deepcopy(self)

    def new_file(self, kind: str) -> str:
        """A fresh file name ("shard" / "codebook"), never one this manifest references."""
        name = f"{kind}-{self.next_file:06d}.colk"
        self.next_file += 1
        return name

    @property
    def referenced(self) -> List[str]:
        files = [s["file"] for s in self.shards]
        return files + ([self.codebook["file"]] if self.codebook else [])


def _body(m: Manifest) -> dict:
    return {"format": FORMAT, "version": VERSION, **asdict(m)}


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(directory: str, m: Manifest) -> None:
    """Commits `m`: one atomic replace of MANIFEST.json (generation incremented)."""
    m.generation += 1
    body = _body(m)
    body["checksum"] = _checksum(body)
    atomic_write_bytes(os.path.join(directory, MANIFEST), json.dumps(body, indent=1).encode())


def read_manifest(directory: str) -> Manifest:
    path = os.path.join(directory, MANIFEST)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Index: {directory!r} does not exist or is not a directory")
    if not os.path.isfile(path):
        raise IndexFormatError(f"Index: {path!r} is missing: {directory!r} is not a colkern index directory "
                               f"(create one with colkern.Index.create)")
    try:
        with open(path, "rb") as f:
            body = json.loads(f.read().decode("utf-8"))
        stored = body.pop("checksum")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError, TypeError) as e:
        raise IndexFormatError(f"Index manifest {path!r} is corrupt: unreadable ({e})") from None
    if _checksum(body) != stored:
        raise IndexFormatError(f"Index manifest {path!r} is corrupt: checksum mismatch")
    if body.pop("format", None) != FORMAT or body.pop("version", None) != VERSION:
        raise IndexFormatError(f"Index manifest {path!r}: not a version-{VERSION} {FORMAT} manifest")
    try:
        m = Manifest(**body)
        _validate(m)
    except (TypeError, ValueError, KeyError) as e:
        raise IndexFormatError(f"Index manifest {path!r} is corrupt: {e}") from None
    return m


def _validate(m: Manifest) -> None:
    if not isinstance(m.dim, int) or m.dim < 1:
        raise ValueError(f"bad dim {m.dim!r}")
    names = set()
    for s in m.shards:
        n = int(s["num_docs"])
        dead = s["deleted"]
        if any(not 0 <= d < n for d in dead) or dead != sorted(set(dead)):
            raise ValueError(f"shard {s['file']!r}: deleted positions must be sorted, unique, in [0, {n})")
        if s["file"] in names or not _OWNED.match(s["file"]):
            raise ValueError(f"bad or repeated shard file name {s['file']!r}")
        names.add(s["file"])
    if m.shards and m.codebook is None:
        raise ValueError("shards without a codebook")


@contextlib.contextmanager
def writer_lock(directory: str) -> Iterator[None]:
    """Exclusive lock for one writer at a time (add / delete / compact). flock is released by
    the kernel when the process dies, so a killed writer never leaves the index locked."""
    fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def unreferenced_files(directory: str, m: Manifest) -> List[str]:
    """Files of this index's naming scheme that `m` does not reference: leftovers of a crashed
    add or compact, or files a compaction replaced. Only called under the writer lock."""
    keep = set(m.referenced)
    return sorted(f for f in os.listdir(directory) if _OWNED.match(f) and f not in keep)
