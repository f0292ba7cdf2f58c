"""Per-document metadata (JSON objects) and the equality filters of Index.search.

    filter={"lang": "en"}                   documents whose "lang" is "en"
    filter={"lang": ["en", "de"], "year": 2024}   any listed value; all keys must match

Values compare as JSON: 1 and True differ, 1 and 1.0 do not (the JSON number 1), and a
document without the key never matches. To match a list-valued field, list it inside the
allowed values: {"tags": [["a", "b"]]}. A key that no document has raises ValueError naming it
(a typo would otherwise silently return nothing).

Evaluation is columnar: the first filter on a key encodes that key's value of every document as
an integer code (one pass over the metadata, cached until the index changes); a filter is then
one numpy.isin over the codes, a few milliseconds for a million documents.
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor


def check_metadata(metadata, n: int, op: str) -> Optional[List[dict]]:
    """None, or n JSON objects (returned as their JSON round trip, so what is stored is what a
    later search sees)."""
    if metadata is None:
        return None
    if isinstance(metadata, dict) or isinstance(metadata, (str, bytes)):
        raise TypeError(f"{op}: metadata must be a sequence of dicts, one per document, "
                        f"got a {type(metadata).__name__}")
    metadata = list(metadata)
    if len(metadata) != n:
        raise ValueError(f"{op}: got {len(metadata)} metadata entries for {n} documents")
    out = []
    for i, m in enumerate(metadata):
        if m is None:
            m = {}
        if not isinstance(m, dict) or not all(isinstance(k, str) for k in m):
            raise TypeError(f"{op}: metadata[{i}] must be a dict with str keys, got {type(m).__name__}")
        try:
            out.append(json.loads(json.dumps(m, allow_nan=False)))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{op}: metadata[{i}] is not JSON-serialisable ({e})") from None
    return out


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


class MetadataColumns:
    """Filter evaluation over the metadata of all documents in position order.
    parts: per shard, its list of metadata dicts (or None: documents without metadata) and its
    document count."""

    def __init__(self, parts: Sequence[Tuple[Optional[List[dict]], int]]):
        self._parts = list(parts)
        self._n = sum(n for _, n in self._parts)
        self._columns: Dict[str, Tuple[np.ndarray, Dict[str, int]]] = {}
        self._keys = None

    def keys(self) -> set:
        if self._keys is None:
            self._keys = {k for meta, _ in self._parts if meta for m in meta for k in m}
        return self._keys

    def _column(self, key: str) -> Tuple[np.ndarray, Dict[str, int]]:
        if key not in self._columns:
            codes = np.full(self._n, -1, dtype=np.int64)
            vocab: Dict[str, int] = {}
            pos = 0
            for meta, n in self._parts:
                if meta:
                    for j, m in enumerate(meta):
                        if key in m:
                            codes[pos + j] = vocab.setdefault(_canon(m[key]), len(vocab))
                pos += n
            self._columns[key] = (codes, vocab)
        return self._columns[key]

    def mask(self, filter: dict, op: str) -> Tensor:
        """bool [n] of the documents matching every key of `filter`."""
        if not isinstance(filter, dict) or not all(isinstance(k, str) for k in filter):
            raise TypeError(f"{op}: filter must be a dict of metadata key -> value or list of values, "
                            f"got {type(filter).__name__}")
        keep = np.ones(self._n, dtype=bool)
        known = self.keys()
        for key, want in filter.items():
            if key not in known:
                raise ValueError(f"{op}: unknown filter key {key!r}: no document has it in its metadata"
                                 + (f" (keys: {', '.join(sorted(map(repr, known))[:20])})" if known else ""))
            allowed = want if isinstance(want, (list, tuple)) else [want]
            try:
                wanted = [_canon(v) for v in allowed]
            except (TypeError, ValueError) as e:
                raise ValueError(f"{op}: filter value for {key!r} is not JSON-comparable ({e})") from None
            codes, vocab = self._column(key)
            hit = [vocab[w] for w in wanted if w in vocab]
            keep &= np.isin(codes, np.asarray(hit, dtype=np.int64))
        return torch.from_numpy(keep)

    def of(self, position: int) -> dict:
        """The metadata of the document at `position` ({} if it has none)."""
        for meta, n in self._parts:
            if position < n:
                return dict(meta[position]) if meta else {}
            position -= n
        raise IndexError(position)
