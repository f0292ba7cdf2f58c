"""The live documents of a colkern.Index, read shard by shard for export.

Each document is read from its shard's memory map when it is yielded, so exporting an index
larger than RAM holds one document (and the consumer's batch) at a time. Tombstoned documents
are skipped; a deleted id that was added again is exported once, from the shard that holds it
live.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Iterator, List, Optional

from torch import Tensor

from ..colpali.indexing import parse_page_id
from ..retrieval import Index


@dataclass(frozen=True)
class ExportDoc:
    """One live document. floats: [L, dim] as stored (None on a bits-only index); bits: uint8
    [L, ceil(dim/8)] as stored (centred sign bits unless the index was made with center=False);
    file, page: from a page id "<file>#page=<n>" (page 0-based, as colkern's PageHit), else None."""

    doc_id: str
    file: Optional[str]
    page: Optional[int]
    metadata: dict
    floats: Optional[Tensor]
    bits: Tensor


def check_index(index, op: str) -> Index:
    if not isinstance(index, Index):
        raise TypeError(f"{op}: index must be a colkern.Index (open one with colkern.Index.open), "
                        f"got {type(index).__name__}")
    return index


def split_page_id(doc_id: str):
    """(file, 0-based page) of a colkern page id, else (None, None)."""
    try:
        return parse_page_id(doc_id)
    except ValueError:
        return None, None


def iter_documents(index: Index) -> Iterator[ExportDoc]:
    """The live documents of `index` in position order, one shard at a time."""
    for shard, base in zip(index.shards, index.bases.tolist()):
        offsets = shard.offsets.tolist()
        for i, doc_id in enumerate(shard.ids):
            try:
                live = index.index_of(doc_id) == base + i
            except KeyError:  # deleted and not added again
                live = False
            if not live:
                continue
            lo, hi = offsets[i], offsets[i + 1]
            file, page = split_page_id(doc_id)
            meta = dict(shard.metadata[i]) if shard.metadata else {}
            floats = shard.floats[lo:hi] if shard.floats is not None else None
            yield ExportDoc(doc_id, file, page, meta, floats, shard.bits[lo:hi])


def batches(docs: Iterator[ExportDoc], size: int) -> Iterator[List[ExportDoc]]:
    while True:
        batch = list(islice(docs, size))
        if not batch:
            return
        yield batch


def check_positive(value, name: str, op: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return value
