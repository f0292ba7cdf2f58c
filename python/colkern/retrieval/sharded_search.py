"""Staged search over the shards of a colkern.Index (see Index.search for the knobs).

Per query:
  1. allowed documents: live (not tombstoned) and matching the metadata filter, as a bool mask
     over positions; every later stage sees only these.
  2. candidates (when nprobe is set and more than `candidates` documents are allowed): the
     centroid stage of colkern.retrieval.centroids over every shard's inverted lists keeps the
     `candidates` best approximate scores. Selective filters (fewer allowed documents than
     `candidates`) skip it: all allowed documents are candidates, so a filter never starves the
     result.
  3. bits (index with floats: only when more than `rescore` candidates remain; bits-only
     index: the final stage): the query, projected orthogonally to the corpus mean, against
     the centred sign bits (maxsim_bits pm1) on the candidates' row ranges (no copies),
     reported as scale * score + sum_i q_i . mean (why: colkern.retrieval.shard).
  4. float: exact MaxSim on the stored float vectors of the `rescore` best, top k.
nprobe=None skips 2 and 3: exact search (float MaxSim over every allowed document; for a
bits-only index, float x bits over every allowed document).

Ties go to the lower position (the kernels' rule), so the result does not depend on shard
boundaries.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..ops import normalize_queries
from .centroids import approx_scores, probe
from .prefetch import prefetch_rows
from .search import SearchResult, check_query_tensor

AUTO = "auto"
# The knobs' defaults at up to 16384 centroids (auto_num_centroids of about 17M vectors): recall@10
# 0.98 against exact MaxSim top-10 on the clustered benchmark corpus at 10M vectors
# (benchmarks/search_at_scale.py; 1.0 at 1M). Candidates is what recall needs first (at 10M,
# 256 kept 0.93 of the exact top-10, 512 0.99, 1024 1.0), then rescore (bits picking 128 instead
# of 256 of 512 for float rescoring: 0.97 instead of 0.98); nprobe 8 with 128 candidates fell to
# 0.71. Speed comes mostly from the float rescoring (rescore docs x their tokens) and the
# centroid stage (grows with nprobe and the list lengths).
NPROBE = 16
CANDIDATES = 512
RESCORE = 256
_BASE_CENTROIDS = 16384


def auto_knobs(num_centroids: int) -> Tuple[int, int]:
    """(nprobe, candidates) for nprobe="auto" / candidates="auto" on a codebook of
    `num_centroids`: NPROBE and CANDIDATES up to 16384 centroids, then both grow in proportion to
    the codebook. A larger corpus has proportionally more centroids (auto_num_centroids) and
    more documents per query's neighbourhood, so a fixed nprobe probes an ever smaller share of
    it: at 100M vectors (32768 centroids) nprobe 16 / 512 candidates kept recall@10 0.71-0.74,
    32 / 1024 0.95-0.97."""
    f = max(1, -(-int(num_centroids) // _BASE_CENTROIDS))
    return NPROBE * f, CANDIDATES * f


def check_knobs(k, nprobe, candidates, rescore, op: str) -> None:
    for name, v, none_ok, auto_ok in (("k", k, False, False), ("nprobe", nprobe, True, True),
                                      ("candidates", candidates, False, True), ("rescore", rescore, False, False)):
        if (v is None and none_ok) or (auto_ok and isinstance(v, str) and v == AUTO):
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            alts = (" or None" if none_ok else "") + (' or "auto"' if auto_ok else "")
            raise ValueError(f"{op}: {name} must be a positive int{alts}, got {v!r}")


def resolve_knobs(nprobe, candidates, num_centroids: Optional[int]) -> Tuple[Optional[int], int]:
    """nprobe / candidates with "auto" replaced by auto_knobs(num_centroids) (no codebook yet:
    the defaults)."""
    auto_p, auto_c = auto_knobs(num_centroids or 1)
    return (auto_p if isinstance(nprobe, str) else nprobe), (auto_c if isinstance(candidates, str) else candidates)


def check_queries(Q, q_mask, dim: int, op: str) -> Tuple[Tensor, Optional[Tensor], bool]:
    check_query_tensor(Q, dim, op)
    return normalize_queries(Q.detach().cpu().float(), q_mask, dim, torch.float32, torch.device("cpu"), op=op)


class ShardedSearcher:
    """What one Index.search call needs: shards, positions, codebook, allowed mask."""

    def __init__(self, index, allowed: Tensor, filtered: bool):
        self.shards = index.shards
        self.bases = index.bases  # int64 [S+1]
        self.codebook = index.codebook
        self.dim = index.dim
        self.allowed = allowed
        self.n_total = allowed.numel()
        self.restricted = filtered or not bool(allowed.all())
        self.allowed_pos = allowed.nonzero().reshape(-1)
        self.has_float = index.has_float
        self.fdtype = self.shards[0].floats.dtype if self.has_float and self.shards else None

    def query(self, q: Tensor, k: int, nprobe: Optional[int], candidates: int, rescore: int
              ) -> Tuple[Tensor, Tensor, Tensor, Tensor, str, Optional[str]]:
        """q float32 [lq, D] (valid tokens). -> (scores [k'], positions [k'], candidate positions,
        candidate scores, score kind, rescore stage)."""
        n = self.allowed_pos.numel()
        final = "float" if self.has_float else "bits"
        cand_p, cand_s = self.allowed_pos, torch.zeros(n)
        if nprobe is None or n == 0:
            s, p = self.topk(final, q, self.allowed_pos, k)
            return s, p, cand_p, cand_s, final, None
        if n > candidates:
            cand_p, cand_s = self.candidates(q, nprobe, candidates, min(k, n))
        pos = torch.sort(cand_p).values
        if self.has_float and pos.numel() > rescore:
            pos = torch.sort(self.topk("bits", q, pos, rescore)[1]).values
        s, p = self.topk(final, q, pos, k)
        return s, p, cand_p, cand_s, final, final

    def candidates(self, q: Tensor, nprobe: int, keep: int, need: int) -> Tuple[Tensor, Tensor]:
        cent, delta = probe(self.codebook.centroids, q, nprobe)
        lists = [(sh.list_offsets, sh.list_docs, int(b)) for sh, b in zip(self.shards, self.bases[:-1])]
        pos, score = approx_scores(lists, cent, delta, self.n_total, self.allowed if self.restricted else None)
        if pos.numel() > keep:  # topk, not a full sort: the probed lists can hold most of the corpus
            order = torch.topk(score, keep).indices
            pos, score = pos[order], score[order]
        if pos.numel() < need:  # too few documents in the probed lists: the rest tie at the imputed score
            rest = self.allowed.clone()
            rest[pos] = False
            extra = rest.nonzero().reshape(-1)[:need - pos.numel()]
            pos, score = torch.cat([pos, extra]), torch.cat([score, torch.zeros(extra.numel())])
        return pos, score

    def q_perp(self, q: Tensor) -> Tensor:
        """q without its component along the corpus mean (see colkern.retrieval.shard)."""
        m = self.codebook.mean
        norm = float(m.norm())
        if norm == 0.0:
            return q.contiguous()
        u = m / norm
        return (q - (q @ u)[:, None] * u).contiguous()

    def topk(self, kind: str, q: Tensor, pos: Tensor, k: int) -> Tuple[Tensor, Tensor]:
        """Top k of the documents at sorted positions `pos`, scored per shard on their row ranges."""
        ops = torch.ops.colkern
        shard_of = torch.searchsorted(self.bases, pos, right=True) - 1
        counts = torch.bincount(shard_of, minlength=len(self.shards)).tolist()
        scores: List[Tensor] = []
        found: List[Tensor] = []
        work = []
        lo = 0
        for s, c in enumerate(counts):
            if not c:
                continue
            sel = pos[lo:lo + c]
            lo += c
            sh = self.shards[s]
            local = sel - self.bases[s]
            st, ln = sh.starts[local].contiguous(), sh.lengths[local].contiguous()
            # Every shard's rows are announced before any is scored: one deep queue of reads
            # for an index on disk (see colkern.retrieval.prefetch).
            prefetch_rows(sh.floats if kind == "float" else sh.bits, st, ln)
            work.append((sh, sel, st, ln))
        for sh, sel, st, ln in work:
            if kind == "float":
                sc, j = ops.maxsim_topk(q.to(self.fdtype)[None].contiguous(), None, sh.floats, st, ln, k)
            else:
                sc, j = ops.maxsim_bits_topk(self.q_perp(q)[None], None, sh.bits, st, ln, self.dim, "pm1", k)
            scores.append(sc[0])
            found.append(sel[j[0]])
        if not scores:
            return torch.empty(0), torch.empty(0, dtype=torch.int64)
        s, p = torch.cat(scores), torch.cat(found)
        if kind == "bits":  # back on the exact-MaxSim scale: scale * centred score + sum_i q_i . mean
            s = s * self.codebook.scale + float((q @ self.codebook.mean).sum())
        order = torch.argsort(p)  # lower position first among equal scores, whatever the shard
        s, p = s[order], p[order]
        best = torch.sort(s, descending=True, stable=True).indices[:k]
        return s[best], p[best]


def run_search(index, Q, k, q_mask, allowed: Tensor, filtered: bool, nprobe, candidates, rescore,
               return_candidates: bool, op: str) -> SearchResult:
    Qn, qm, squeeze = check_queries(Q, q_mask, index.dim, op)
    nprobe, candidates = resolve_knobs(nprobe, candidates, index.codebook.num_centroids if index.codebook else None)
    searcher = ShardedSearcher(index, allowed, filtered)
    B = Qn.shape[0]
    keep = min(k, searcher.allowed_pos.numel())
    candidates, rescore = max(candidates, k), max(rescore, k)
    scores = torch.empty(B, keep)
    indices = torch.empty(B, keep, dtype=torch.int64)
    cands: List[Tuple[Tensor, Tensor]] = []
    kind, used = ("float" if index.has_float else "bits"), None
    for b in range(B):
        q = Qn[b][qm[b]] if qm is not None else Qn[b]
        s, p, cp, cs, kind, used = searcher.query(q.contiguous(), k, nprobe, candidates, rescore)
        scores[b], indices[b] = s, p
        cands.append((cp, cs))
    ids = [[index.id_at(i) for i in row] for row in indices.tolist()]
    return make_result(ids, indices, scores, cands if return_candidates else None, squeeze, kind,
                       nprobe is None, used)


def make_result(ids: List[List[str]], indices: Tensor, scores: Tensor,
                cands: Optional[List[Tuple[Tensor, Tensor]]], squeeze: bool, kind: str, exact: bool,
                used: Optional[str]) -> SearchResult:
    """The SearchResult of B queries' top k (ids [B][k'], indices / scores [B, k']); cands: per
    query (candidate positions, their stage-1 scores), ragged, padded here with -1 / -inf, or
    None; squeeze: a single [Lq, D] query (the B axis is dropped)."""
    cand_i = cand_s = None
    if cands is not None:
        width = max((c[0].numel() for c in cands), default=0)
        cand_i = torch.full((len(cands), width), -1, dtype=torch.int64)
        cand_s = torch.full((len(cands), width), float("-inf"))
        for b, (cp, cs) in enumerate(cands):
            cand_i[b, :cp.numel()], cand_s[b, :cs.numel()] = cp, cs
    if squeeze:
        ids, scores, indices = ids[0], scores[0], indices[0]
        if cands is not None:
            cand_i, cand_s = cand_i[0], cand_s[0]
    return SearchResult(ids=ids, indices=indices, scores=scores, score_kind=kind,
                        stage1="exact" if exact else "centroids", rescore=used,
                        candidate_indices=cand_i, candidate_scores=cand_s)
