"""How well predicted error rates match measured ones, and how sure that is: correlations, MAE and
ROC AUC; grouped k-fold folds; cluster-bootstrap intervals.

Groups are source documents. Every degraded variant of one source lands in the same fold
(`group_kfold`), otherwise a model is scored on near-copies of its training pages; for the same
reason the bootstrap (`bootstrap_metrics`) resamples whole groups with replacement.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Dict, List, Sequence, Union

import numpy as np
import torch
from scipy.stats import rankdata

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[Sequence[float]]]


def as_float64(v) -> np.ndarray:
    """A tensor, array or sequence of numbers as a float64 numpy array."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two [n] arrays (as scipy.stats.pearsonr); NaN when either is
    constant or n < 2."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[0] < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float(da @ da) * float(db @ db))
    return float(np.clip(float(da @ db) / den, -1.0, 1.0)) if den > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation: Pearson of the ranks, ties averaged (as scipy.stats.spearmanr)."""
    return pearson(rankdata(a), rankdata(b))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, dtype=np.float64) - np.asarray(p, dtype=np.float64))))


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve from the Mann-Whitney rank statistic: the probability that a
    random positive scores above a random negative, ties counting one half.
    AUC = (sum of the positives' ranks - n_pos (n_pos + 1) / 2) / (n_pos * n_neg), with tied
    scores given their average rank. NaN without positives or without negatives."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> Dict[str, float]:
    """The metrics bootstrap_metrics reports: Pearson, Spearman, MAE and the AUC of p for
    "y > threshold"."""
    return {"pearson": pearson(y, p), "spearman": spearman(y, p), "mae": mae(y, p),
            "auc": roc_auc(y > threshold, p)}


def group_codes(groups, n: int, arg: str = "groups") -> np.ndarray:
    """groups (any [n] array-like of ints or strings) -> int64 [n] codes 0..G-1, in sorted order
    of the group ids (so the codes do not depend on the sample order)."""
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise ValueError(f"{arg} must be a 1-D array of {n} group ids, got shape {g.shape}")
    try:
        _, codes = np.unique(g, return_inverse=True)
    except TypeError as e:
        raise ValueError(f"{arg} must hold comparable ids (all ints or all strings): {e}") from None
    return codes.reshape(-1).astype(np.int64)


def group_kfold(groups, n_splits: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (int64 [n], 0..n_splits-1) of every sample; all samples of a group share one.

    The groups are shuffled with `seed`, then taken largest first (a stable sort, so equal sizes
    keep the shuffled order) and each goes to the fold with the fewest samples so far (the lowest
    fold number on a tie): balanced folds, deterministic for a given seed and set of groups.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
        raise ValueError(f"group_kfold: n_splits must be an int >= 2, got {n_splits!r}")
    n = len(groups)
    codes = group_codes(groups, n)
    sizes = np.bincount(codes)
    if sizes.shape[0] < n_splits:
        raise ValueError(f"group_kfold: {sizes.shape[0]} groups cannot fill {n_splits} folds")
    order = np.random.default_rng(seed).permutation(sizes.shape[0])
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(sizes.shape[0], dtype=np.int64)
    load = np.zeros(n_splits, dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += sizes[g]
    return fold_of_group[codes]


@dataclass(frozen=True)
class MetricCI:
    """A metric on the out-of-fold predictions and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_metrics(y: np.ndarray, p: np.ndarray, codes: np.ndarray, *, threshold: float = 0.1,
                      n_bootstrap: int = 1000, ci: float = 0.95, seed: int = 0) -> Dict[str, MetricCI]:
    """Metrics of predictions p against labels y ([n] each) with cluster-bootstrap intervals:
    each resample draws G groups (codes: int64 [n], 0..G-1) with replacement and takes all their
    samples; the interval is the (1-ci)/2 and (1+ci)/2 percentiles over the resamples where the
    metric is defined (NaN if none is)."""
    point = point_metrics(y, p, threshold)
    members = _group_members(codes)
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in point}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_bootstrap):
            pick = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[g] for g in pick])
            for m, v in point_metrics(y[idx], p[idx], threshold).items():
                draws[m].append(v)
    lo_q, hi_q = 50.0 * (1.0 - ci), 50.0 * (1.0 + ci)
    out = {}
    for m, v in point.items():
        d = np.asarray(draws[m], dtype=np.float64)
        d = d[np.isfinite(d)]
        lo, hi = (float(np.percentile(d, lo_q)), float(np.percentile(d, hi_q))) if d.size else (math.nan, math.nan)
        out[m] = MetricCI(float(v), lo, hi)
    return out


def _group_members(codes: np.ndarray) -> List[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes))[:-1]
    return np.split(order, bounds)
