"""A hybrid index on disk: one directory holding the three sub-indexes and what their rows are.

    INDEX_DIR/
      hybrid.json   manifest: format and version, model directories, settings (DPI, tiles, chunk
                    size, router, junk filter), the indexed files, counts, failures. Written
                    last: a directory without it is not a (complete) hybrid index.
      pages.json    the router's decision for every page seen: file, page, route, reason, features
      page.colk     ColPali pages (a colkern MultiVectorIndex of kind colkern.pdf_pages, so
                    colkern.colpali's page search and heatmaps work on it); absent if none
      text.colk     text chunks, one 384-d (MiniLM) vector per chunk; text.json: file, page, bbox, text
      image.colk    SigLIP image vectors, one per image; image.json: file, page, bbox, xref, size
      text.usearch, image.usearch   the HNSW graph of a dense route with many items (see
                    colkern.hybrid.ann), recorded with its SHA-256 under "ann" in hybrid.json;
                    absent for small routes and for indexes written before graphs existed, which
                    are searched exactly

Dense routes are MultiVectorIndex files with one vector per document (float32): the same
checksummed, memory-mappable format, and exact search is colkern's MaxSim top-k, which for
one-vector documents and a one-vector query is the dot product.

Saving writes a fresh directory (graphs included) beside the target and renames it into place,
so INDEX_DIR is either the old complete index or the new one. An existing index is only replaced
with overwrite=True; any other non-empty directory is refused.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Dict, List, Optional, Tuple

from .._atomic import atomic_write_bytes
from .._types import PathLike
from ..retrieval.index import IndexFormatError, MultiVectorIndex
from .ann import DENSE_KINDS, AnnFileError, AnnIndex

FORMAT = "colkern.hybrid"
VERSION = 1
MANIFEST = "hybrid.json"
PAGES = "pages.json"
KINDS = ("page", "image", "text")  # a hit's kind, and the route that found it
_INDEX_FILE = {kind: f"{kind}.colk" for kind in KINDS}
_ITEMS_FILE = {"image": "image.json", "text": "text.json"}
_ANN_FILE = {kind: f"{kind}.usearch" for kind in DENSE_KINDS}


class HybridIndexError(ValueError):
    """A directory that is not a usable hybrid index (missing manifest, wrong version, corrupt file)."""


def is_hybrid_dir(path: PathLike) -> bool:
    """Whether `path` is a directory holding a hybrid index manifest."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))


def _dump(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def _read_json(path: str, what: str):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode())
    except FileNotFoundError:
        raise HybridIndexError(f"{os.path.dirname(path)}: {what} {os.path.basename(path)} is missing; the "
                               f"hybrid index is incomplete, build it again") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise HybridIndexError(f"{path}: {what} is not valid JSON ({e})") from None


def save_dir(index_dir: PathLike, manifest: dict, pages: List[dict], subs: Dict[str, Optional[MultiVectorIndex]],
             items: Dict[str, List[dict]], *, overwrite: bool = False,
             anns: Optional[Dict[str, AnnIndex]] = None) -> str:
    """Writes a hybrid index directory (see the module doc); anns: kind -> the graph of a dense
    route, recorded in the manifest as written. -> its absolute path."""
    for kind, ann in (anns or {}).items():
        sub = subs.get(kind)
        if kind not in DENSE_KINDS or sub is None or ann.count != sub.num_docs:
            raise ValueError(f"save_dir: anns[{kind!r}] must index the {sub.num_docs if sub else 0} items of a "
                             f"dense route ({DENSE_KINDS}), it holds {ann.count}")
    target = os.path.abspath(os.fspath(index_dir))
    if os.path.exists(target):
        if not os.path.isdir(target):
            raise FileExistsError(f"{target} exists and is not a directory")
        if os.listdir(target) and not (overwrite and is_hybrid_dir(target)):
            why = "pass overwrite=True (--overwrite) to replace it" if is_hybrid_dir(target) else \
                "it is not a hybrid index; choose an empty or new directory"
            raise FileExistsError(f"{target} already holds files: {why}")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", dir=parent)
    try:
        atomic_write_bytes(os.path.join(tmp, PAGES), _dump(pages))
        for kind in KINDS:
            sub = subs.get(kind)
            if sub is not None and sub.num_docs:
                sub.save(os.path.join(tmp, _INDEX_FILE[kind]))
                if kind in _ITEMS_FILE:
                    atomic_write_bytes(os.path.join(tmp, _ITEMS_FILE[kind]), _dump(items[kind]))
        if anns:
            manifest = {**manifest, "ann": {kind: ann.save(os.path.join(tmp, _ANN_FILE[kind]))
                                            for kind, ann in anns.items()}}
        atomic_write_bytes(os.path.join(tmp, MANIFEST), _dump(manifest))
        os.chmod(tmp, 0o755)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _swap_in(tmp: str, target: str) -> None:
    if not os.path.exists(target):
        os.replace(tmp, target)
        return
    if not os.listdir(target):
        os.rmdir(target)
        os.replace(tmp, target)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old.", dir=os.path.dirname(target))
    os.rmdir(old)
    os.replace(target, old)  # a directory cannot be renamed over a non-empty one: two steps
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


Subs = Dict[str, Optional[MultiVectorIndex]]


def load_dir(index_dir: PathLike, *, mmap: bool = True) -> Tuple[dict, List[dict], Subs, Dict[str, List[dict]]]:
    """Reads a directory written by save_dir. -> (manifest, pages, sub-indexes by kind, items by kind).
    Raises FileNotFoundError for a missing directory, HybridIndexError for anything else wrong."""
    root = os.path.abspath(os.fspath(index_dir))
    if not os.path.exists(root):
        raise FileNotFoundError(f"{root}: no such hybrid index directory")
    if not os.path.isdir(root):
        raise HybridIndexError(f"{root} is a file, not a hybrid index directory (`colkern index --hybrid` "
                               f"writes a directory)")
    if not os.path.isfile(os.path.join(root, MANIFEST)):
        raise HybridIndexError(f"{root} is not a hybrid index (no {MANIFEST}); build one with "
                               f"`colkern index --hybrid` or HybridIndex.build")
    manifest = _read_json(os.path.join(root, MANIFEST), "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise HybridIndexError(f"{root}/{MANIFEST} is not a colkern hybrid index manifest")
    if manifest.get("version") != VERSION:
        raise HybridIndexError(f"{root}: hybrid index format version {manifest.get('version')!r}, this colkern "
                               f"reads version {VERSION}; build the index again")
    pages = _read_json(os.path.join(root, PAGES), "page table")
    subs: Subs = {}
    items: Dict[str, List[dict]] = {}
    counts = manifest.get("counts", {})
    for kind in KINDS:
        path = os.path.join(root, _INDEX_FILE[kind])
        expected = int(counts.get(kind, 0))
        if not os.path.exists(path):
            if expected:
                raise HybridIndexError(f"{root}: {_INDEX_FILE[kind]} is missing but the manifest counts "
                                       f"{expected} {kind} items")
            subs[kind], items[kind] = None, []
            continue
        try:
            sub = MultiVectorIndex.load(path, mmap=mmap)
        except IndexFormatError as e:
            raise HybridIndexError(f"{root}: {kind} sub-index: {e}") from None
        if sub.num_docs != expected:
            raise HybridIndexError(f"{root}: {_INDEX_FILE[kind]} holds {sub.num_docs} items, the manifest "
                                   f"counts {expected}")
        subs[kind] = sub
        if kind in _ITEMS_FILE:
            rows = _read_json(os.path.join(root, _ITEMS_FILE[kind]), f"{kind} table")
            if not isinstance(rows, list) or len(rows) != sub.num_docs:
                raise HybridIndexError(f"{root}: {_ITEMS_FILE[kind]} does not list one row per {kind} item")
            items[kind] = rows
        else:
            items[kind] = []
    return manifest, pages, subs, items


def load_anns(index_dir: PathLike, manifest: dict, subs: Subs, *, mmap: bool = True,
              expansion_search: Optional[int] = None) -> Dict[str, AnnIndex]:
    """The graphs the manifest records (kind -> AnnIndex; none for an index written without
    them), checked against their files and sub-indexes. Raises HybridIndexError for a missing or
    damaged graph file, ImportError if the index has graphs and usearch is not installed."""
    root = os.path.abspath(os.fspath(index_dir))
    records = manifest.get("ann") or {}
    if not isinstance(records, dict):
        raise HybridIndexError(f"{root}/{MANIFEST}: 'ann' must map a route to its graph record")
    anns: Dict[str, AnnIndex] = {}
    for kind, record in records.items():
        sub = subs.get(kind) if kind in DENSE_KINDS else None
        if sub is None:
            raise HybridIndexError(f"{root}: the manifest records a graph for {kind!r}, which is not a dense "
                                   f"route of this index")
        try:
            anns[kind] = AnnIndex.open(os.path.join(root, _ANN_FILE[kind]), record, count=sub.num_docs, dim=sub.dim,
                                       mmap=mmap, expansion_search=expansion_search)
        except AnnFileError as e:
            raise HybridIndexError(f"{root}: {kind} graph: {e}; build the index again, or open it with "
                                   f"exact=True to search without the graph") from None
        except ImportError as e:
            raise ImportError(f"{root}: the {kind} route has an HNSW graph: {e}; or open the index with "
                              f"exact=True") from e
    return anns
