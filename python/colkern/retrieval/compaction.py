"""Index.compact(): the live documents rewritten into merged shards (called under the writer
lock; the caller commits the returned manifest and then removes unreferenced files).

The merged shards are written under fresh names before the manifest names them, so a crash
before the commit leaves the old index intact (the new files are unreferenced leftovers), and
a crash after it leaves the new one (the old files are leftovers); either way the next
compact() deletes the leftovers. Without retraining, rows are copied as they are (bits, floats,
codes) and only the inverted lists are rebuilt; a group of shards is gathered into memory at a
time, so memory is bounded by max_shard_vectors, not by the corpus.
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..ops import unpack_bits
from .centroids import Codebook, assign, auto_num_centroids, concat_ranges, inverted_lists, train_codebook
from .manifest import Manifest
from .shard import encode, float_dtype_of, read_codebook, write_codebook, write_shard

_SAMPLE_MAX = 1 << 20


def compact(index, m: Manifest, retrain: bool, max_shard_vectors: int) -> Optional[Manifest]:
    """-> the manifest to commit, or None when there is nothing to rewrite."""
    if isinstance(max_shard_vectors, bool) or not isinstance(max_shard_vectors, int) or max_shard_vectors < 1:
        raise ValueError(f"Index.compact: max_shard_vectors must be a positive int, got {max_shard_vectors!r}")
    has_dead = not bool(index._live.all())
    if not retrain and not has_dead and len(index.shards) <= 1:
        return None
    parts = _live_parts(index)
    cb = index.codebook
    n_live = sum(loc.numel() for _, loc in parts)
    if retrain and n_live:
        cb = _retrain(index, m, parts)
    fdtype = float_dtype_of(m.float_dtype)
    new_shards = []
    for group in _groups(index, parts, max_shard_vectors):
        ids, metadata, offsets, rows = _gather_layout(index, group)
        floats = _cat(index, group, rows, "floats") if fdtype is not None else None
        if retrain and floats is not None:
            arrays = encode(floats, offsets, cb, fdtype)
        else:
            bits = _cat(index, group, rows, "bits")
            codes = assign(cb, _proxies(bits, index)) if retrain else _cat(index, group, rows, "codes")
            arrays = {"offsets": offsets, "bits": bits, "codes": codes}
            if floats is not None:
                arrays["floats"] = floats
            arrays["list_offsets"], arrays["list_docs"] = inverted_lists(codes, offsets, cb.num_centroids)
        name = m.new_file("shard")
        has_md = any(md for md in metadata)
        sha = write_shard(os.path.join(index.path, name), arrays, dim=m.dim, ids=ids,
                          metadata=metadata if has_md else None, codebook_sha256=m.codebook["sha256"])
        new_shards.append({"file": name, "sha256": sha, "num_docs": len(ids), "num_vectors": arrays["bits"].shape[0],
                           "deleted": []})
    m.shards = new_shards
    return m


def _live_parts(index) -> List[Tuple[int, Tensor]]:
    """Per shard: its live local document indices."""
    out = []
    for s, (sh, b) in enumerate(zip(index.shards, index.bases.tolist())):
        out.append((s, index._live[b:b + sh.num_docs].nonzero().reshape(-1)))
    return out


def _groups(index, parts, max_vectors: int):
    """The live documents in position order cut into runs by where each document starts:
    a run holds at most max_vectors vectors plus its last document's overhang. -> per run, a
    list of (shard, local document indices)."""
    if not parts:
        return
    shard = torch.cat([torch.full((loc.numel(),), s, dtype=torch.int64) for s, loc in parts])
    local = torch.cat([loc for _, loc in parts])
    lens = torch.cat([index.shards[s].lengths[loc] for s, loc in parts])
    run = (torch.cumsum(lens, 0) - lens) // max_vectors
    for r in torch.unique_consecutive(run).tolist():
        sel = run == r
        sh, lo = shard[sel], local[sel]
        yield [(s, lo[sh == s]) for s in torch.unique_consecutive(sh).tolist()]


def _gather_layout(index, group):
    ids, metadata, lens, rows = [], [], [], []
    for s, loc in group:
        sh = index.shards[s]
        ids += [sh.ids[i] for i in loc.tolist()]
        metadata += [sh.metadata[i] if sh.metadata else {} for i in loc.tolist()]
        ln = sh.lengths[loc]
        lens.append(ln)
        rows.append(concat_ranges(sh.starts[loc], ln))
    lengths = torch.cat(lens)
    offsets = torch.zeros(lengths.numel() + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    return ids, metadata, offsets, rows


def _cat(index, group, rows, name: str) -> Tensor:
    return torch.cat([getattr(index.shards[s], name)[r] for (s, _), r in zip(group, rows)])


def _proxies(bits: Tensor, index) -> Tensor:
    """Vectors a bits-only index's sign bits stand for: mean + scale * (2b - 1)."""
    cb = index.codebook
    return unpack_bits(bits, index.dim, mode="pm1") * cb.scale + cb.mean


def _retrain(index, m: Manifest, parts) -> Codebook:
    """A new codebook from a random sample of live vectors, committed into m (not yet on disk's manifest)."""
    g = torch.Generator().manual_seed(m.generation)
    rows = [(s, concat_ranges(index.shards[s].starts[loc], index.shards[s].lengths[loc])) for s, loc in parts]
    T = sum(r.numel() for _, r in rows)
    K = min(m.num_centroids or auto_num_centroids(T), T)
    take = min(T, max(16 * K, 1 << 16), _SAMPLE_MAX)
    pick = torch.sort(torch.randperm(T, generator=g)[:take]).values
    chunks, lo = [], 0
    for s, r in rows:
        sel = pick[(pick >= lo) & (pick < lo + r.numel())] - lo
        lo += r.numel()
        if sel.numel():
            sh = index.shards[s]
            chunks.append(sh.floats[r[sel]].float() if sh.floats is not None else _proxies(sh.bits[r[sel]], index))
    sample = torch.cat(chunks)
    if index.has_float:
        cb = train_codebook(sample, K, center=m.center)
    else:  # the bits cannot be re-centred without the floats: keep their mean and scale
        cb = train_codebook(sample, K, center=False)
        cb.mean, cb.scale = index.codebook.mean.clone(), index.codebook.scale
    name = m.new_file("codebook")
    m.codebook = {"file": name, "sha256": write_codebook(os.path.join(index.path, name), cb)}
    return read_codebook(os.path.join(index.path, name), m.codebook["sha256"], m.dim)
