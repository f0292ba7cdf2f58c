"""Scatter-gather search of a colkern.Index over Ray actors, with the same results as Index.search.

    with ShardedSearcher("pages.idx", actors=4) as searcher:
        hits = searcher.search(Q, k=10, filter={"lang": "en"})   # a colkern SearchResult

The index's shards are assigned round-robin to the actors; each actor opens only its shards
(memory-mapped, from the manifest the searcher read: one snapshot for all actors) and runs the
stages of colkern.retrieval.sharded_search with the same code (ShardedSearcher.topk, and the
centroid stage's probe + approx_scores) over its shards, numbered locally so that its masks
and scratch buffers grow with its own documents, not the corpus; positions crossing the actor
boundary are the single index's. Index.search has two corpus-global cuts, and the
driver makes both exactly as the single process does:

1. centroid stage (when nprobe is set and more than `candidates` documents are allowed): the
   single process sums, per probed document, its query tokens' best centroid deltas, in token
   order in float32 (colkern.ops.centroid_scores), and keeps torch.topk(sums, candidates). The
   actors send each document's per-token deltas (the columns of an [Lq, probed] matrix) for
   the probed documents whose own sum is at or above their candidates-th best (every
   document that can be in the global top is among them); the driver adds the columns' rows
   in token order, which gives the single process's scores bit for bit. When exactly
   `candidates` documents score >= the candidates-th best, the candidate set is determined and equals the single process's. When
   several tie at the cut, torch.topk's choice among them depends on its whole input, so those
   queries take a second round in which the actors send every probed column and the driver
   runs the same torch.topk on the same array. return_candidates=True always takes that round
   (the candidate order is part of the result). The driver's cost per query is Lq vector adds
   over the columns it received.
2. bits then float rescoring: each actor returns its best `rescore` candidates by the bits
   estimate plus their exact float scores; the driver keeps the best `rescore` overall, then
   the best k of those by float score. Both cuts order by (score descending, position
   ascending), the kernels' tie rule, and the best of a union is the best of the parts' bests
   under a total order, so they are exact.

So the ids, positions and scores are identical to Index.open(path).search(...) for every knob
setting (nprobe=None exact scans included), filters and deletions included, provided a
document's scores do not depend on which other documents share its kernel call (true of
colkern's kernels: each document's MaxSim is computed on its own row range; the tests check
equality bit for bit). What is not the same: a searcher is a snapshot of the index when it was
built (reopen it to see later commits), and query batches cost 2-3 round trips to the actors.

A dead actor is restarted by Ray (max_restarts; the call is retried) or, when it cannot be, the
search raises RuntimeError naming the actor's shard files; every wait has a timeout
(timeout_s), so a search never hangs.
"""
from __future__ import annotations

import json
import os
import time
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .._types import PathLike
from ..retrieval.centroids import approx_scores, probe
from ..retrieval.filters import MetadataColumns
from ..retrieval.manifest import Manifest, read_manifest
from ..retrieval.search import SearchResult
from ..retrieval.shard import Shard, read_codebook
from ..retrieval.sharded_search import AUTO, RESCORE, check_knobs, check_queries, make_result, resolve_knobs
from ..retrieval.sharded_search import ShardedSearcher as _StageRunner
from ._ray import ACTOR_CPUS, check_timeout, import_ray, init_ray


def _filter_key(filter: Optional[dict]) -> str:
    return "null" if filter is None else json.dumps(filter, sort_keys=True, default=repr)


class _View:
    """What sharded_search.ShardedSearcher reads of an index (shards, bases, codebook, dim,
    has_float), for the shards of one group numbered locally: bases[i] is owned shard i's first
    local position, so an actor's masks and scratch buffers are of its own documents' size."""

    def __init__(self, shards, bases, codebook, dim, has_float):
        self.shards, self.bases, self.codebook, self.dim, self.has_float = shards, bases, codebook, dim, has_float


class ShardGroup:
    """The actor: a group of shards of one index snapshot, opened memory-mapped. Positions are
    local inside (the owned shards one after the other, in index order) and global (the single
    index's) in everything it takes and returns; both orders agree."""

    def __init__(self, path: str, manifest: Manifest, owned: Sequence[int], threads: int = 1):
        torch.set_num_threads(threads)
        m = manifest
        self.owned = list(owned)
        self.files = [m.shards[j]["file"] for j in self.owned]
        counts = torch.tensor([0] + [int(e["num_docs"]) for e in m.shards], dtype=torch.int64)
        self.global_bases = torch.cumsum(counts, 0)
        self.codebook = None
        if m.codebook is not None:
            self.codebook = read_codebook(os.path.join(path, m.codebook["file"]), m.codebook["sha256"], m.dim)
        self.shards = [Shard.open(os.path.join(path, m.shards[j]["file"]), m.shards[j], dim=m.dim,
                                  float_dtype=m.float_dtype, codebook_sha256=m.codebook["sha256"],
                                  num_centroids=self.codebook.num_centroids, verify=False) for j in self.owned]
        local = torch.cumsum(torch.tensor([0] + [sh.num_docs for sh in self.shards], dtype=torch.int64), 0)
        self.view = _View(self.shards, local, self.codebook, m.dim, m.float_dtype is not None)
        # local position p of owned shard i <-> global position p + shift[i]
        self.shift = self.global_bases[self.owned] - local[:-1] if self.owned else torch.zeros(0, dtype=torch.int64)
        self.slot = torch.full((len(m.shards),), -1, dtype=torch.int64)  # global shard -> owned index
        self.slot[self.owned] = torch.arange(len(self.owned))
        self.live = torch.ones(int(local[-1]), dtype=torch.bool)
        for j, b in zip(self.owned, local.tolist()):
            if m.shards[j]["deleted"]:
                self.live[b + torch.tensor(m.shards[j]["deleted"], dtype=torch.int64)] = False
        self.columns = MetadataColumns([(sh.metadata, sh.num_docs) for sh in self.shards])
        self.runners = {}

    def _to_global(self, p: Tensor) -> Tensor:
        return p + self.shift[torch.searchsorted(self.view.bases, p, right=True) - 1] if p.numel() else p

    def _to_local(self, p: Tensor) -> Tensor:
        if not p.numel():
            return p
        i = self.slot[torch.searchsorted(self.global_bases, p, right=True) - 1]
        if bool((i < 0).any()):
            raise ValueError("ShardGroup: positions outside this group's shards")
        return p - self.shift[i]

    def info(self) -> dict:
        return {"keys": sorted(self.columns.keys()), "files": self.files, "pid": os.getpid(),
                "num_centroids": self.codebook.num_centroids if self.codebook is not None else None}

    def _runner(self, filter: Optional[dict]) -> _StageRunner:
        key = _filter_key(filter)
        if key not in self.runners:
            allowed = self.live
            if filter is not None:
                allowed = torch.zeros_like(self.live)
                if all(k in self.columns.keys() for k in filter):  # else no document here has the key
                    allowed = self.columns.mask(filter, "ShardedSearcher.search") & self.live
            if len(self.runners) > 16:
                self.runners.clear()
            self.runners[key] = _StageRunner(self.view, allowed, True)
        return self.runners[key]

    def count(self, filter: Optional[dict]) -> int:
        return int(self._runner(filter).allowed_pos.numel())

    def allowed_positions(self, filter: Optional[dict]) -> Tensor:
        return self._to_global(self._runner(filter).allowed_pos)

    def approx(self, qs: List[Tensor], filter: Optional[dict], nprobe: int, keep: int, k: int, full: bool):
        """The centroid stage on this group's shards. Per query a dict: pos (global positions of
        the probed documents sent: all of them when `full`, else those whose approximate score
        is at or above this group's keep-th best), cols float32 [Lq, m] (their per-token
        best deltas, which the single process adds in token order), counts (probed documents
        per owned shard), and when fewer than k were probed: fill, the k lowest allowed
        positions not probed."""
        r = self._runner(filter)
        lists = [(sh.list_offsets, sh.list_docs, int(b)) for sh, b in zip(self.shards, self.view.bases[:-1])]
        out = []
        for q in qs:
            cent, delta = probe(self.codebook.centroids, q, nprobe)
            # One token at a time: a one-row reduction is exact, so these are the entries of the
            # single process's per-document sums, which the driver then adds in token order.
            per_token = [approx_scores(lists, cent[t:t + 1], delta[t:t + 1], r.n_total, r.allowed)
                         for t in range(q.shape[0])]
            pos = torch.unique(torch.cat([p for p, _ in per_token])) if per_token else torch.empty(0, dtype=torch.int64)
            cols = torch.zeros(q.shape[0], pos.numel())
            for t, (p, v) in enumerate(per_token):
                cols[t, torch.searchsorted(pos, p)] = v
            shard = torch.searchsorted(self.view.bases, pos, right=True) - 1
            counts = torch.bincount(shard, minlength=len(self.shards))
            probed = pos.numel()
            if not full and probed > keep:
                score = _token_order_sum(cols)
                t = float(torch.topk(score, keep).values[-1])
                sel = score >= t  # these sums are the single process's: a document below t cannot make the cut
                pos, cols = pos[sel], cols[:, sel]
            fill = None
            if probed < k:
                rest = r.allowed.clone()
                rest[pos] = False
                fill = self._to_global(rest.nonzero().reshape(-1)[:k])
            out.append({"pos": self._to_global(pos), "cols": cols, "counts": counts,
                        "probed": probed, "fill": fill})
        return out

    def rescore(self, qs: List[Tensor], filter: Optional[dict], cands: List[Optional[Tensor]],
                bits_stage: List[bool], k: int, rescore: int):
        """Per query: (global positions, first scores, float scores or None, ids). With the bits
        stage: this group's best `rescore` candidates (sorted global positions) by the bits
        estimate and their exact float scores; without: its best k by the final score (float,
        or bits on a bits-only index)."""
        r = self._runner(filter)
        final = "float" if self.view.has_float else "bits"
        out = []
        for q, c, bits in zip(qs, cands, bits_stage):
            pos = r.allowed_pos if c is None else self._to_local(c)
            if bits:
                s, p = r.topk("bits", q, pos, rescore)
                order = torch.argsort(p)
                s, p = s[order], p[order]
                fs, fp = r.topk("float", q, p, p.numel())
                f = torch.empty_like(s)
                f[torch.searchsorted(p, fp)] = fs
                out.append((self._to_global(p), s, f, self._ids(p)))
            else:
                s, p = r.topk(final, q, pos, k)
                out.append((self._to_global(p), s, None, self._ids(p)))
        return out

    def _ids(self, positions: Tensor) -> List[str]:
        idx = torch.searchsorted(self.view.bases, positions, right=True) - 1
        return [self.shards[i].ids[p - int(self.view.bases[i])] for i, p in zip(idx.tolist(), positions.tolist())]


def _token_order_sum(cols: Tensor) -> Tensor:
    """Column sums of cols [Lq, m], added row by row in float32 from 0: the order in which the
    single process's reduction adds a document's per-token deltas."""
    total = torch.zeros(cols.shape[1])
    for row in cols:
        total += row
    return total


def _best(p: Tensor, s: Tensor, n: int) -> Tensor:
    """Indices of the n best by (score descending, position ascending): Index.search's rule."""
    order = torch.argsort(p)
    return order[torch.sort(s[order], descending=True, stable=True).indices[:n]]


class ShardedSearcher:
    """colkern.Index.search over Ray actors (see the module docstring).

    index_dir: a colkern.Index directory. actors: number of actors (at most one per shard);
    address: as colkern.distributed.index_pdfs_ray (None: a local Ray unless one is running in
    this process); actor_cpus: CPUs per actor (default 0.5: search is memory bound and a
    2-core machine still runs 4 actors); threads: torch threads per actor; max_restarts: Ray
    restarts of a dead actor (its calls are retried); timeout_s: wait per round of a search
    (TimeoutError after it)."""

    def __init__(self, index_dir: PathLike, actors: int = 2, *, address: Optional[str] = None,
                 actor_cpus: float = ACTOR_CPUS, threads: int = 1, max_restarts: int = 3,
                 timeout_s: Optional[float] = 120.0):
        op = "ShardedSearcher"
        if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
            raise ValueError(f"{op}: actors must be a positive int, got {actors!r}")
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"{op}: max_restarts must be an int >= 0, got {max_restarts!r}")
        self.timeout_s = check_timeout(timeout_s, "timeout_s", op)
        self.path = os.path.abspath(os.fspath(index_dir))
        m = read_manifest(self.path)  # FileNotFoundError / IndexFormatError naming the directory
        self.manifest = m
        self.dim = m.dim
        self.has_float = m.float_dtype is not None
        n_actors = min(actors, max(len(m.shards), 1))
        self.groups = [list(range(a, len(m.shards), n_actors)) for a in range(n_actors)]
        self._ray = import_ray()
        self._started = init_ray(address)
        self._actors = []
        self._actor_cpus = actor_cpus
        try:
            cls = self._ray.remote(ShardGroup).options(num_cpus=actor_cpus, max_restarts=max_restarts,
                                                        max_task_retries=max_restarts)
            self._actors = [cls.remote(self.path, m, g, threads) for g in self.groups]
            infos = self._gather([a.info.remote() for a in self._actors], "opening the shards")
        except BaseException:
            self.close()
            raise
        self._keys = sorted({k for i in infos for k in i["keys"]})
        self._num_centroids = infos[0]["num_centroids"] if infos else None
        self._counts = {}

    @property
    def actors(self) -> list:
        """The Ray actor handles, one per shard group (self.groups[i] = shard numbers of actor i)."""
        return list(self._actors)

    def _describe(self, i: int) -> str:
        files = [self.manifest.shards[j]["file"] for j in self.groups[i]]
        return f"actor {i} (shards {', '.join(files) or 'none'})"

    def _gather(self, refs: list, what: str) -> list:
        ray = self._ray
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        out = []
        for i, ref in enumerate(refs):
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                out.append(ray.get(ref, timeout=left))
            except ray.exceptions.GetTimeoutError:
                raise TimeoutError(f"ShardedSearcher: {what}: no answer within {self.timeout_s:g} s from "
                                   f"{self._describe(i)} of {self.path!r} (an actor still pending may mean the "
                                   f"cluster lacks the {self._actor_cpus:g} CPUs per actor asked for: actor_cpus)"
                                   ) from None
            except ray.exceptions.RayActorError as e:
                raise RuntimeError(f"ShardedSearcher: {what}: {self._describe(i)} of {self.path!r} died and "
                                   f"could not be restarted ({type(e).__name__}: {str(e).splitlines()[0]})") from None
            except ray.exceptions.RayTaskError as e:
                cause = getattr(e, "cause", None)
                if isinstance(cause, Exception):
                    raise cause from None
                raise
        return out

    def _scatter(self, method: str, what: str, *args) -> list:
        if not self._actors:
            raise RuntimeError("ShardedSearcher: closed")
        return self._gather([getattr(a, method).remote(*args) for a in self._actors], what)

    def _check_filter(self, filter, op: str) -> None:
        """The single process's checks and messages (type, unknown key, value), on all keys."""
        parts = [([dict.fromkeys(self._keys)], 1)] if self._keys else [(None, 0)]
        MetadataColumns(parts).mask(filter, op)

    def _count(self, filter) -> int:
        key = _filter_key(filter)
        if key not in self._counts:
            self._counts[key] = sum(self._scatter("count", "counting allowed documents", filter))
        return self._counts[key]

    def search(self, Q: Tensor, k: int = 10, *, q_mask: Optional[Tensor] = None, filter: Optional[dict] = None,
               nprobe: Union[int, str, None] = AUTO, candidates: Union[int, str] = AUTO, rescore: int = RESCORE,
               return_candidates: bool = False) -> SearchResult:
        """colkern.Index.search's arguments and result (see there), computed by the actors."""
        op = "ShardedSearcher.search"
        check_knobs(k, nprobe, candidates, rescore, op)
        nprobe, candidates = resolve_knobs(nprobe, candidates, self._num_centroids)
        Qn, qm, squeeze = check_queries(Q, q_mask, self.dim, op)
        if filter is not None:
            self._check_filter(filter, op)
        n = self._count(filter)
        B = Qn.shape[0]
        qs = [(Qn[b][qm[b]] if qm is not None else Qn[b]).contiguous() for b in range(B)]
        candidates, rescore = max(candidates, k), max(rescore, k)
        keep = min(k, n)
        final = "float" if self.has_float else "bits"
        cands: List[Optional[Tensor]] = [None] * B
        cand_lists: List[Tuple[Tensor, Tensor]] = []
        if nprobe is not None and n > candidates:
            cand_lists = self._candidates(qs, filter, nprobe, candidates, k, n, return_candidates)
            cands = [torch.sort(cp).values for cp, _ in cand_lists]
        elif return_candidates:
            allowed = torch.sort(torch.cat(self._scatter("allowed_positions", "listing documents", filter))).values
            cand_lists = [(allowed, torch.zeros(allowed.numel()))] * B
        sizes = [n if c is None else c.numel() for c in cands]
        bits_stage = [nprobe is not None and n > 0 and self.has_float and sz > rescore for sz in sizes]
        per_cand = [self._split(cands, g) for g in self.groups]
        refs = [a.rescore.remote(qs, filter, per_cand[i], bits_stage, k, rescore) for i, a in enumerate(self._actors)]
        parts = self._gather(refs, "rescoring")
        scores = torch.empty(B, keep)
        indices = torch.empty(B, keep, dtype=torch.int64)
        ids: List[List[str]] = []
        for b in range(B):
            p = torch.cat([part[b][0] for part in parts])
            s = torch.cat([part[b][1] for part in parts])
            names = [x for part in parts for x in part[b][3]]
            if bits_stage[b]:
                f = torch.cat([part[b][2] for part in parts])
                sel = _best(p, s, rescore)  # the rescore best by the bits estimate...
                p, s, names = p[sel], f[sel], [names[i] for i in sel.tolist()]
            sel = _best(p, s, k)  # ...then the k best by the final score
            scores[b], indices[b] = s[sel], p[sel]
            ids.append([names[i] for i in sel.tolist()])
        used = None if nprobe is None or n == 0 or B == 0 else final
        return make_result(ids, indices, scores, cand_lists if return_candidates else None, squeeze, final,
                           nprobe is None, used)

    def _split(self, cands: List[Optional[Tensor]], group: List[int]) -> List[Optional[Tensor]]:
        """Each query's sorted candidate positions that fall in the shards of `group`."""
        if all(c is None for c in cands):
            return cands
        bases = torch.cumsum(torch.tensor([0] + [int(e["num_docs"]) for e in self.manifest.shards]), 0)
        mine = torch.zeros(len(self.manifest.shards), dtype=torch.bool)
        mine[group] = True
        out = []
        for c in cands:
            if c is None:
                out.append(None)
            else:
                shard = torch.searchsorted(bases, c, right=True) - 1
                out.append(c[mine[shard]])
        return out

    def _candidates(self, qs, filter, nprobe, keep, k, n, full: bool) -> List[Tuple[Tensor, Tensor]]:
        """Per query the candidate stage's (positions, scores), exactly as the single process."""
        parts = self._scatter("approx", "the centroid stage", qs, filter, nprobe, keep, k, full)
        need = min(k, n)
        S = len(self.manifest.shards)
        out: List[Optional[Tuple[Tensor, Tensor]]] = []
        ties = []
        for b in range(len(qs)):
            got = [part[b] for part in parts]
            counts = torch.zeros(S, dtype=torch.int64)
            for g, x in zip(self.groups, got):
                counts[g] = x["counts"]
            probed = int(counts.sum())
            pos = torch.cat([x["pos"] for x in got])
            # The single process sums each document's per-token deltas in token order in float32
            # (colkern.ops.centroid_scores): the same adds in the same order give the same bits.
            score = _token_order_sum(torch.cat([x["cols"] for x in got], 1))
            order = torch.argsort(pos)
            pos, score = pos[order], score[order]
            if probed > keep:
                if full:
                    sel = torch.topk(score, keep).indices  # the same call on the same array as Index.search
                else:
                    t = torch.topk(score, keep).values[-1]
                    sel = (score >= t).nonzero().reshape(-1)
                    if sel.numel() != keep:  # ties at the cut: torch.topk's choice needs the full array
                        ties.append(b)
                        out.append(None)
                        continue
                pos, score = pos[sel], score[sel]
            if pos.numel() < need:
                fill = torch.sort(torch.cat([x["fill"] for x in got if x["fill"] is not None])).values
                extra = fill[:need - pos.numel()]
                pos, score = torch.cat([pos, extra]), torch.cat([score, torch.zeros(extra.numel())])
            out.append((pos, score))
        if ties:
            again = self._candidates([qs[b] for b in ties], filter, nprobe, keep, k, n, True)
            for b, r in zip(ties, again):
                out[b] = r
        return out

    def close(self) -> None:
        """Stops the actors (and the local Ray this searcher started)."""
        for a in self._actors:
            try:
                self._ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._actors = []
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> "ShardedSearcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ShardedSearcher({self.path!r}, actors={len(self._actors)}, shards={len(self.manifest.shards)})"
