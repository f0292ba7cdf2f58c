"""Fusing the rankings of several routes into one list.

Reciprocal rank fusion (the default; Cormack, Clarke and Buettcher, SIGIR 2009):

    rrf(item) = sum over routes r that ranked the item of  w_r / (k + rank_r(item))     (ranks from 1)

It needs no score calibration: ColPali's MaxSim sums one similarity per query token (tens),
SigLIP's and MiniLM's cosines live in different ranges, and only ranks are comparable. k = 60 is
the paper's constant: it damps the head so that one route's first place does not swamp
agreement between routes.

Score-normalised fusion (an option): each route's scores over its own candidate list are mapped
to a common scale, then summed per item with the route weights (CombSUM):

    "minmax"  (s - min) / (max - min)        1.0 for a route's best candidate, 0.0 for its last
    "zscore"  (s - mean) / std               how far above its route's typical candidate

Both keep each route's internal order; they differ from RRF in letting a route with a clear
winner (a large gap to its second) outrank another route's close first place.

Items are any hashable keys. Ties are broken by the best rank any route gave the item, then by
route order, so the result is deterministic.
"""
from __future__ import annotations

import math
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

FUSIONS = ("rrf", "score")
NORMALIZATIONS = ("minmax", "zscore")
RRF_K = 60


def _weights(weights: Optional[Sequence[float]], n: int, name: str) -> List[float]:
    if weights is None:
        return [1.0] * n
    weights = list(weights)
    if len(weights) != n:
        raise ValueError(f"{name}: {len(weights)} weights for {n} rankings")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{name}: weights must be finite numbers >= 0, got {w!r}")
    return [float(w) for w in weights]


def _order(scores: Dict[Hashable, float], first_seen: Dict[Hashable, Tuple[int, int]]) -> List[Tuple[Hashable, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))


def _check_unique(ranking: Sequence[Hashable], r: int, name: str) -> None:
    if len(set(ranking)) != len(ranking):
        raise ValueError(f"{name}: ranking {r} lists an item more than once")


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], *, k: float = RRF_K,
                           weights: Optional[Sequence[float]] = None) -> List[Tuple[Hashable, float]]:
    """RRF of ranked lists (best first; an item at most once per list).
    -> [(item, fused score)], best first."""
    name = "reciprocal_rank_fusion"
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
        raise ValueError(f"{name}: k must be a finite number >= 0, got {k!r}")
    w = _weights(weights, len(rankings), name)
    scores: Dict[Hashable, float] = {}
    first_seen: Dict[Hashable, Tuple[int, int]] = {}
    for r, ranking in enumerate(rankings):
        ranking = list(ranking)
        _check_unique(ranking, r, name)
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + w[r] / (k + rank)
            first_seen[item] = min(first_seen.get(item, (rank, r)), (rank, r))
    return _order(scores, first_seen)


def normalize_scores(scores: Sequence[float], method: str = "minmax") -> List[float]:
    """One route's scores on a common scale (see the module doc). A constant list maps to 1.0
    ("minmax") or 0.0 ("zscore")."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalize_scores: method must be one of {NORMALIZATIONS}, got {method!r}")
    s = [float(x) for x in scores]
    if not all(math.isfinite(x) for x in s):
        raise ValueError("normalize_scores: scores must be finite")
    if not s:
        return []
    if method == "minmax":
        lo, hi = min(s), max(s)
        return [1.0 if hi == lo else (x - lo) / (hi - lo) for x in s]
    mean = sum(s) / len(s)
    std = math.sqrt(sum((x - mean) ** 2 for x in s) / len(s))
    return [0.0 if std == 0 else (x - mean) / std for x in s]


def score_fusion(rankings: Sequence[Sequence[Tuple[Hashable, float]]], *, method: str = "minmax",
                 weights: Optional[Sequence[float]] = None) -> List[Tuple[Hashable, float]]:
    """Score-normalised fusion of ranked (item, score) lists: normalize_scores per list, then the
    weighted sum per item. -> [(item, fused score)], best first."""
    name = "score_fusion"
    w = _weights(weights, len(rankings), name)
    scores: Dict[Hashable, float] = {}
    first_seen: Dict[Hashable, Tuple[int, int]] = {}
    for r, ranking in enumerate(rankings):
        ranking = list(ranking)
        _check_unique([item for item, _ in ranking], r, name)
        order = sorted(range(len(ranking)), key=lambda i: -float(ranking[i][1]))  # rank by score
        norm = normalize_scores([s for _, s in ranking], method)
        for rank, i in enumerate(order, 1):
            item = ranking[i][0]
            scores[item] = scores.get(item, 0.0) + w[r] * norm[i]
            first_seen[item] = min(first_seen.get(item, (rank, r)), (rank, r))
    return _order(scores, first_seen)


def fuse(rankings: Sequence[Sequence[Tuple[Hashable, float]]], method: str = "rrf", *, rrf_k: float = RRF_K,
         normalize: str = "minmax", weights: Optional[Sequence[float]] = None) -> List[Tuple[Hashable, float]]:
    """Either fusion on ranked (item, score) lists, best first: method "rrf" (uses the order
    only) or "score" (normalize: "minmax" | "zscore")."""
    if method == "rrf":
        return reciprocal_rank_fusion([[item for item, _ in r] for r in rankings], k=rrf_k, weights=weights)
    if method == "score":
        return score_fusion(rankings, method=normalize, weights=weights)
    raise ValueError(f"fuse: method must be one of {FUSIONS}, got {method!r}")
