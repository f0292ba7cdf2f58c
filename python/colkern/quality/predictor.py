"""Predict an OCR engine's error rates (CER, WER) on a page from pooled image features.

    enc = PixelPatchEncoder()
    X = page_features(images, enc)                                     # float32 [n, F]
    model = QualityPredictor.for_encoder(enc, "tesseract", engine_config={"lang": "eng", "psm": 3})
    report = model.cross_validate(X, {"cer": cer, "wer": wer}, groups=source_ids)
    model.fit(X, {"cer": cer, "wer": wer}, groups=source_ids).save("tesseract.colkq")
    QualityPredictor.load("tesseract.colkq").predict_images([page], enc)["cer"]   # [1] in [0, 1]

One LightGBM booster per target, for one OCR engine (a model of "how badly will *this* engine
read this page": another engine or configuration needs its own labels and model).

Labels are error rates in [0, 1] (colkern.quality.metrics normalises by the longer string).
The default objective is LightGBM's "cross_entropy" (logistic loss with fractional labels):
its sigmoid output stays in [0, 1] and it fits the bimodal label distributions OCR produces
(many pages at 0 or 1) better than squared error. Predictions are clipped to [0, 1] whatever
the objective.

Cross-validation uses grouped k-fold (`group_kfold`): every degraded variant of one source
document lands in the same fold, otherwise the model is scored on near-copies of its training
pages. Confidence intervals come from a cluster bootstrap over the same groups (whole groups are
resampled with replacement), for the same reason.

File format, version 1 (one file, written atomically: temp file, fsync, os.replace):

    line 1   b"COLKERN-QUALITY-PREDICTOR\\n"
    line 2   the header: one line of UTF-8 JSON (format_version, colkern_version,
             lightgbm_version, encoder {name, params, pooling}, feature_names, engine {name,
             config}, targets, lgbm_params, num_rounds, training (a summary of the training
             set), verdict_thresholds, models: [{target, nbytes, sha256}, ...]), then "\\n"
    then     the boosters in LightGBM's own text format, concatenated in the order of
             "models"; each is `nbytes` bytes with the given SHA-256; nothing follows.
Loading checks all of it; every problem raises ModelFormatError (a ValueError) naming the file.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import lightgbm as lgb
import numpy as np
import torch
from scipy.stats import rankdata

from .._atomic import atomic_write_bytes
from .features import pool_features

MAGIC = b"COLKERN-QUALITY-PREDICTOR\n"
FORMAT_VERSION = 1

# verdict(cer): "good" up to 2% character errors (about one misread character per line of 50:
# usable without review), "fair" up to 10% (the text is searchable but fields need checking),
# "poor" above (re-scan or route to a human). 10% is also the threshold of the AUC reported by
# cross_validate.
VERDICT_THRESHOLDS = (0.02, 0.10)

# Aliases LightGBM accepts for the number of boosting rounds; taken out of the params and passed
# as num_boost_round so LightGBM does not warn about the duplicate.
_ROUND_ALIASES = ("n_estimators", "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees",
                  "num_round", "num_rounds", "nrounds", "num_boost_round", "max_iter")

# Regularised for ~1k-5k pages and ~50-400 features: small trees with many samples per leaf,
# column and row subsampling, L2 on leaf values, a small learning rate with enough rounds.
DEFAULT_LGBM_PARAMS: Dict[str, Any] = {
    "objective": "cross_entropy",
    "n_estimators": 400,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "max_depth": 6,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,  # with deterministic: same model on every run and machine
    "seed": 0,
    "verbose": -1,
}

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[Sequence[float]]]


class ModelFormatError(ValueError):
    """A quality model file that cannot be loaded: foreign, truncated, corrupt or of a newer version."""


def _colkern_version() -> str:
    # Imported late: colkern/__init__ sets __version__ after its imports, which may include this
    # module.
    import colkern

    return str(getattr(colkern, "__version__", "unknown"))


def verdict(cer):
    """"good" (cer <= 0.02), "fair" (<= 0.10) or "poor": a str for a number, a list for an
    array. See VERDICT_THRESHOLDS."""
    good, fair = VERDICT_THRESHOLDS

    def one(c: float) -> str:
        if not math.isfinite(c):
            raise ValueError(f"verdict: cer must be finite, got {c}")
        return "good" if c <= good else "fair" if c <= fair else "poor"

    if isinstance(cer, (np.ndarray, torch.Tensor, list, tuple)):
        return [one(float(c)) for c in np.asarray(cer, dtype=np.float64).reshape(-1)]
    return one(float(cer))


# -- metrics ------------------------------------------------------------------------------------

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


def _metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> Dict[str, float]:
    return {"pearson": pearson(y, p), "spearman": spearman(y, p), "mae": mae(y, p),
            "auc": roc_auc(y > threshold, p)}


# -- grouped folds ------------------------------------------------------------------------------

def _group_codes(groups, n: int, arg: str = "groups") -> np.ndarray:
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
    codes = _group_codes(groups, n)
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


# -- cross-validation report --------------------------------------------------------------------

@dataclass(frozen=True)
class MetricCI:
    """A metric on the out-of-fold predictions and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass
class TargetReport:
    """Out-of-fold results for one target.

    metrics: "pearson", "spearman", "mae", "auc" -> MetricCI ("auc": of the predictions for
             label > threshold; NaN when one class is absent).
    y, oof:  float64 [n] labels and out-of-fold predictions (for scatter plots).
    """

    metrics: Dict[str, MetricCI]
    y: np.ndarray
    oof: np.ndarray


@dataclass
class CVReport:
    """What QualityPredictor.cross_validate returns. folds: int64 [n] fold of every sample."""

    targets: Dict[str, TargetReport]
    folds: np.ndarray
    n_splits: int
    seed: int
    n_groups: int
    threshold: float
    n_bootstrap: int
    ci: float
    bootstrap: str = "groups"

    def summary(self) -> str:
        """A small text table: one line per target and metric, value [low, high]."""
        lines = [f"{self.n_splits}-fold grouped CV, {self.folds.shape[0]} samples in {self.n_groups} groups, "
                 f"{self.ci:.0%} {self.bootstrap} bootstrap CI ({self.n_bootstrap} resamples)"]
        for t, r in self.targets.items():
            lines.append(f"  {t}: " + ", ".join(f"{m} {ci}" for m, ci in r.metrics.items()))
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able: settings and metrics (not the per-sample arrays)."""
        return {"n_splits": self.n_splits, "seed": self.seed, "n_samples": int(self.folds.shape[0]),
                "n_groups": self.n_groups, "threshold": self.threshold, "n_bootstrap": self.n_bootstrap,
                "ci": self.ci, "bootstrap": self.bootstrap,
                "targets": {t: {m: {"value": _json_float(c.value), "low": _json_float(c.low),
                                    "high": _json_float(c.high)} for m, c in r.metrics.items()}
                            for t, r in self.targets.items()}}


def _json_float(v: float) -> Optional[float]:
    return None if not math.isfinite(v) else float(v)


def bootstrap_metrics(y: np.ndarray, p: np.ndarray, codes: np.ndarray, *, threshold: float = 0.1,
                      n_bootstrap: int = 1000, ci: float = 0.95, seed: int = 0) -> Dict[str, MetricCI]:
    """Metrics of predictions p against labels y ([n] each) with cluster-bootstrap intervals:
    each resample draws G groups (codes: int64 [n], 0..G-1) with replacement and takes all their
    samples; the interval is the (1-ci)/2 and (1+ci)/2 percentiles over the resamples where the
    metric is defined (NaN if none is)."""
    point = _metrics(y, p, threshold)
    members = _group_members(codes)
    rng = np.random.default_rng(seed)
    draws = {m: [] for m in point}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_bootstrap):
            pick = rng.integers(0, len(members), len(members))
            idx = np.concatenate([members[g] for g in pick])
            for m, v in _metrics(y[idx], p[idx], threshold).items():
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


# -- the model ----------------------------------------------------------------------------------

def _as_matrix(X: ArrayLike, arg: str = "X") -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{arg} must be a 2-D [n_samples, n_features] array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"{arg} must be a real numeric array, got {X.dtype}")
    X = X.astype(np.float32 if X.dtype == np.float32 else np.float64, copy=False)
    if np.isinf(X).any():
        raise ValueError(f"{arg} contains inf; only NaN (missing) is allowed among non-finite values")
    return np.ascontiguousarray(X)


def _vector(v) -> np.ndarray:
    """A tensor, array or sequence of numbers as a float64 numpy array."""
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def _split_params(lgbm_params: Optional[Mapping[str, Any]]) -> Tuple[Dict[str, Any], int]:
    params = dict(DEFAULT_LGBM_PARAMS)
    if lgbm_params:
        user = dict(lgbm_params)
        if any(k in user for k in _ROUND_ALIASES):  # a user round count replaces the default
            params.pop("n_estimators")
        params.update(user)
    rounds = [params.pop(k) for k in _ROUND_ALIASES if k in params]
    if len(rounds) != 1:
        raise ValueError(f"lgbm_params: give the number of rounds once (n_estimators), got {rounds}")
    n = rounds[0]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"lgbm_params: n_estimators must be an int >= 1, got {n!r}")
    return params, int(n)


class QualityPredictor:
    """CER / WER of one OCR engine predicted from page features: one LightGBM booster per target.

    encoder_name:   the feature encoder the model is trained on ("pixel", "colpali-hidden", ...);
    engine:         the OCR engine the labels come from ("tesseract", "rapidocr", ...);
    targets:        label names, default ("cer", "wer");
    lgbm_params:    overrides of DEFAULT_LGBM_PARAMS (n_estimators = the number of rounds).
    encoder_params, pooling ({"content": bool or None, "globals": bool}: pool_features'
    arguments, default its defaults), feature_names (one per column of X): describe the
    features; QualityPredictor.for_encoder fills them from an encoder.
    engine_config:  the OCR configuration behind the labels (version, language, psm, DPI...),
    stored in the file for the record.
    """

    def __init__(self, encoder_name: str, engine: str, targets: Sequence[str] = ("cer", "wer"),
                 lgbm_params: Optional[Mapping[str, Any]] = None, *,
                 encoder_params: Optional[Mapping[str, Any]] = None,
                 pooling: Optional[Mapping[str, bool]] = None,
                 feature_names: Optional[Sequence[str]] = None,
                 engine_config: Optional[Mapping[str, Any]] = None):
        for name, v in (("encoder_name", encoder_name), ("engine", engine)):
            if not isinstance(v, str) or not v:
                raise ValueError(f"QualityPredictor: {name} must be a non-empty string, got {v!r}")
        targets = tuple(targets) if not isinstance(targets, str) else (targets,)
        if not targets or len(set(targets)) != len(targets) or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(f"QualityPredictor: targets must be distinct non-empty strings, got {targets!r}")
        self.encoder_name = encoder_name
        self.engine = engine
        self.targets = targets
        self.lgbm_params, self.num_rounds = _split_params(lgbm_params)
        self.encoder_params = _jsonable(dict(encoder_params or {}), "encoder_params")
        self.pooling = _check_pooling(pooling)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.engine_config = _jsonable(dict(engine_config or {}), "engine_config")
        self.boosters: Dict[str, lgb.Booster] = {}
        self.training: Dict[str, Any] = {}
        self.path: Optional[str] = None

    @classmethod
    def for_encoder(cls, encoder, engine: str, targets: Sequence[str] = ("cer", "wer"),
                    lgbm_params: Optional[Mapping[str, Any]] = None, *, content: Optional[bool] = None,
                    globals: bool = True, engine_config: Optional[Mapping[str, Any]] = None) -> "QualityPredictor":
        """A predictor for features made by features.page_features(images, encoder, content=...,
        globals=...): name, params, pooling and feature names come from the encoder."""
        from .features import pooled_feature_names

        if content is None:
            content = bool(getattr(encoder, "has_content_mask", False))
        names = pooled_feature_names(encoder.feature_names(), content=content, globals=globals)
        return cls(encoder.name, engine, targets, lgbm_params, encoder_params=encoder.params(),
                   pooling={"content": content, "globals": globals}, feature_names=names,
                   engine_config=engine_config)

    def __repr__(self) -> str:
        state = f"fitted on {self.training.get('n_samples')} pages" if self.is_fitted else "not fitted"
        return (f"QualityPredictor(encoder={self.encoder_name!r}, engine={self.engine!r}, "
                f"targets={list(self.targets)}, {state})")

    @property
    def is_fitted(self) -> bool:
        return len(self.boosters) == len(self.targets)

    @property
    def n_features(self) -> Optional[int]:
        return len(self.feature_names) if self.feature_names is not None else None

    # -- training -------------------------------------------------------------------------------

    def _check_X(self, X: ArrayLike, op: str) -> np.ndarray:
        X = _as_matrix(X, f"{op}: X")
        if self.feature_names is not None and X.shape[1] != len(self.feature_names):
            raise ValueError(f"{op}: X has {X.shape[1]} features but the model has {len(self.feature_names)} "
                             f"({self.encoder_name} features, pooling {self.pooling})")
        return X

    def _check_y(self, y: Mapping[str, ArrayLike], n: int, op: str) -> Dict[str, np.ndarray]:
        if not isinstance(y, Mapping):
            raise TypeError(f"{op}: y must be a dict target -> [n] labels, got {type(y).__name__}")
        missing = [t for t in self.targets if t not in y]
        if missing:
            raise ValueError(f"{op}: y has no labels for target(s) {missing}; it has {sorted(y)}")
        out = {}
        for t in self.targets:
            v = _vector(y[t])
            if v.shape != (n,):
                raise ValueError(f"{op}: y[{t!r}] must have shape ({n},), got {v.shape}")
            if not np.isfinite(v).all():
                raise ValueError(f"{op}: y[{t!r}] contains NaN or inf")
            if self.lgbm_params.get("objective") in ("cross_entropy", "xentropy") and (v.min() < 0 or v.max() > 1):
                raise ValueError(f"{op}: y[{t!r}] must lie in [0, 1] for the cross_entropy objective, "
                                 f"got [{v.min():.4g}, {v.max():.4g}]")
            out[t] = v
        return out

    def _train(self, X: np.ndarray, y: Dict[str, np.ndarray]) -> Dict[str, lgb.Booster]:
        boosters = {}
        for t in self.targets:
            data = lgb.Dataset(X, label=y[t], params={"verbose": -1}, free_raw_data=True)
            boosters[t] = lgb.train(self.lgbm_params, data, num_boost_round=self.num_rounds)
        return boosters

    def fit(self, X: ArrayLike, y: Mapping[str, ArrayLike], groups=None) -> "QualityPredictor":
        """Train one booster per target. X: [n, F] (float32 / float64, NaN = missing);
        y: target -> [n] labels; groups: optional [n] source ids (recorded in the training
        summary as a group count). Returns self."""
        X = self._check_X(X, "fit")
        y = self._check_y(y, X.shape[0], "fit")
        if X.shape[0] < 2:
            raise ValueError(f"fit: need at least 2 samples, got {X.shape[0]}")
        n_groups = int(_group_codes(groups, X.shape[0]).max() + 1) if groups is not None else None
        if self.feature_names is None:
            self.feature_names = [f"f{i}" for i in range(X.shape[1])]
        self.boosters = self._train(X, y)
        self.training = _training_summary(X, y, n_groups)
        return self

    # -- prediction -----------------------------------------------------------------------------

    def predict(self, X: ArrayLike) -> Dict[str, np.ndarray]:
        """X: [n, F] page features -> target -> float64 [n] predicted error rates in [0, 1]."""
        if not self.is_fitted:
            raise RuntimeError("QualityPredictor.predict: the model is not fitted (call fit or load)")
        X = self._check_X(X, "predict")
        nt = int(self.lgbm_params.get("num_threads", 0) or 0)
        return {t: np.clip(self.boosters[t].predict(X, num_threads=nt), 0.0, 1.0) for t in self.targets}

    def check_encoder(self, encoder) -> None:
        """Raises ValueError unless `encoder` is the one the model was trained with (same name
        and parameters)."""
        name = getattr(encoder, "name", None)
        params = _jsonable(encoder.params(), "encoder.params()") if callable(getattr(encoder, "params", None)) else None
        if name != self.encoder_name or params != self.encoder_params:
            raise ValueError(f"QualityPredictor: the model was trained on {self.encoder_name!r} features "
                             f"with {self.encoder_params}, but the encoder is {name!r} with {params}")

    def predict_images(self, images, encoder) -> Dict[str, np.ndarray]:
        """Encode, pool (as at training time) and predict: -> target -> float64 [len(images)]."""
        self.check_encoder(encoder)
        X = pool_features(encoder.encode_many(list(images)), **self.pooling)
        return self.predict(X)

    def feature_importance(self, target: str, kind: str = "gain") -> Dict[str, float]:
        """Feature name -> importance ("gain" or "split") in the booster for `target`, largest first."""
        if target not in self.boosters:
            raise ValueError(f"feature_importance: no fitted booster for target {target!r}")
        imp = self.boosters[target].feature_importance(importance_type=kind)
        pairs = sorted(zip(self.feature_names, imp.tolist()), key=lambda kv: -kv[1])
        return {k: float(v) for k, v in pairs}

    verdict = staticmethod(verdict)

    # -- evaluation -----------------------------------------------------------------------------

    def cross_validate(self, X: ArrayLike, y: Mapping[str, ArrayLike], groups, n_splits: int = 5,
                       seed: int = 0, *, threshold: float = 0.1, n_bootstrap: int = 1000,
                       ci: float = 0.95) -> CVReport:
        """Grouped k-fold cross-validation with this predictor's settings (the predictor itself
        is not fitted or changed).

        X: [n, F]; y: target -> [n]; groups: [n] source ids (None: every sample its own group);
        folds from group_kfold(groups, n_splits, seed). For every target: Pearson, Spearman, MAE
        and the AUC of the predictions for "label > threshold", each with a cluster-bootstrap
        interval (n_bootstrap resamples of whole groups, level ci), plus the out-of-fold
        predictions.
        """
        X = self._check_X(X, "cross_validate")
        n = X.shape[0]
        y = self._check_y(y, n, "cross_validate")
        if not 0.0 < ci < 1.0:
            raise ValueError(f"cross_validate: ci must lie in (0, 1), got {ci}")
        if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
            raise ValueError(f"cross_validate: n_bootstrap must be an int >= 1, got {n_bootstrap!r}")
        codes = np.arange(n, dtype=np.int64) if groups is None else _group_codes(groups, n, "cross_validate: groups")
        folds = group_kfold(codes, n_splits, seed)
        oof = {t: np.empty(n, dtype=np.float64) for t in self.targets}
        for f in range(n_splits):
            test = folds == f
            boosters = self._train(X[~test], {t: v[~test] for t, v in y.items()})
            for t in self.targets:
                oof[t][test] = np.clip(boosters[t].predict(X[test]), 0.0, 1.0)
        reports = {t: TargetReport(bootstrap_metrics(y[t], oof[t], codes, threshold=threshold,
                                                     n_bootstrap=n_bootstrap, ci=ci, seed=seed), y[t], oof[t])
                   for t in self.targets}
        return CVReport(reports, folds, n_splits, seed, int(codes.max() + 1), float(threshold), n_bootstrap, ci)

    # -- persistence ----------------------------------------------------------------------------

    def header(self) -> Dict[str, Any]:
        """The JSON header written by save (without the "models" entry)."""
        return {
            "format_version": FORMAT_VERSION,
            "colkern_version": _colkern_version(),
            "lightgbm_version": lgb.__version__,
            "encoder": {"name": self.encoder_name, "params": self.encoder_params, "pooling": self.pooling},
            "feature_names": self.feature_names,
            "engine": {"name": self.engine, "config": self.engine_config},
            "targets": list(self.targets),
            "lgbm_params": _jsonable(self.lgbm_params, "lgbm_params"),
            "num_rounds": self.num_rounds,
            "training": self.training,
            "verdict_thresholds": list(VERDICT_THRESHOLDS),
        }

    def save(self, path: PathLike) -> None:
        """Write the fitted model to `path` atomically (see the module docstring for the format)."""
        if not self.is_fitted:
            raise RuntimeError("QualityPredictor.save: the model is not fitted")
        texts = [self.boosters[t].model_to_string().encode("utf-8") for t in self.targets]
        head = self.header()
        head["models"] = [{"target": t, "nbytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                          for t, b in zip(self.targets, texts)]
        line = json.dumps(head, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
        atomic_write_bytes(path, MAGIC + line + b"\n" + b"".join(texts))
        self.path = os.fspath(path)

    @classmethod
    def load(cls, path: PathLike) -> "QualityPredictor":
        """Read a model written by save. Raises FileNotFoundError for a missing file and
        ModelFormatError for anything else wrong with it."""
        path = os.fspath(path)
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(MAGIC):
            raise ModelFormatError(f"{path!r} is not a colkern quality model (bad magic)")
        end = data.find(b"\n", len(MAGIC))
        if end < 0:
            raise ModelFormatError(f"quality model {path!r} is truncated: no complete header")
        try:
            head = json.loads(data[len(MAGIC):end].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFormatError(f"quality model {path!r} is corrupt: bad header ({e})") from None
        if not isinstance(head, dict):
            raise ModelFormatError(f"quality model {path!r} is corrupt: the header is not a JSON object")
        version = head.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ModelFormatError(f"quality model {path!r} is corrupt: no format_version")
        if version > FORMAT_VERSION:
            raise ModelFormatError(f"quality model {path!r} has format version {version}, newer than this "
                                   f"colkern ({_colkern_version()}) reads ({FORMAT_VERSION}); upgrade colkern")
        if version != FORMAT_VERSION:
            raise ModelFormatError(f"quality model {path!r} has unknown format version {version}")
        try:
            model = cls._from_header(head)
            boosters = _read_boosters(head["models"], data, end + 1, model.targets)
        except ModelFormatError as e:
            raise ModelFormatError(f"quality model {path!r} is corrupt: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFormatError(f"quality model {path!r} is corrupt: bad header ({type(e).__name__}: {e})") from None
        for t, b in boosters.items():
            if b.num_feature() != len(model.feature_names):
                raise ModelFormatError(f"quality model {path!r} is corrupt: the {t} booster takes "
                                       f"{b.num_feature()} features, the header names {len(model.feature_names)}")
        model.boosters = boosters
        model.path = path
        return model

    @classmethod
    def _from_header(cls, head: Dict[str, Any]) -> "QualityPredictor":
        enc, eng = head["encoder"], head["engine"]
        names = head["feature_names"]
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            raise ValueError("feature_names must be a list of strings")
        params = dict(head["lgbm_params"])
        params["n_estimators"] = head["num_rounds"]
        model = cls(enc["name"], eng["name"], head["targets"], params, encoder_params=enc["params"],
                    pooling=enc["pooling"], feature_names=names, engine_config=eng["config"])
        # The stored params are complete: do not let today's defaults add keys to an old model.
        model.lgbm_params, model.num_rounds = dict(head["lgbm_params"]), int(head["num_rounds"])
        model.training = dict(head["training"])
        return model


def _read_boosters(entries, data: bytes, pos: int, targets: Sequence[str]) -> Dict[str, lgb.Booster]:
    if not isinstance(entries, list) or [e.get("target") for e in entries] != list(targets):
        raise ModelFormatError("the model list does not match the targets")
    boosters = {}
    for e in entries:
        nbytes = e["nbytes"]
        if not isinstance(nbytes, int) or nbytes <= 0 or pos + nbytes > len(data):
            raise ModelFormatError(f"truncated: the {e['target']} booster needs {nbytes} bytes at {pos}, "
                                   f"the file has {len(data)}")
        blob = data[pos:pos + nbytes]
        if hashlib.sha256(blob).hexdigest() != e["sha256"]:
            raise ModelFormatError(f"checksum mismatch in the {e['target']} booster")
        try:
            boosters[e["target"]] = lgb.Booster(model_str=blob.decode("utf-8"))
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as err:
            raise ModelFormatError(f"LightGBM cannot read the {e['target']} booster ({err})") from None
        pos += nbytes
    if pos != len(data):
        raise ModelFormatError(f"{len(data) - pos} unexpected bytes after the last booster")
    return boosters


def _training_summary(X: np.ndarray, y: Dict[str, np.ndarray], n_groups: Optional[int]) -> Dict[str, Any]:
    summary: Dict[str, Any] = {"n_samples": int(X.shape[0]), "n_groups": n_groups, "n_features": int(X.shape[1]),
                               "labels": {}}
    for t, v in y.items():
        q10, q50, q90 = np.percentile(v, [10, 50, 90])
        summary["labels"][t] = {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
                                "max": float(v.max()), "q10": float(q10), "q50": float(q50), "q90": float(q90),
                                "frac_above_0.1": float((v > 0.1).mean())}
    return summary


def _check_pooling(pooling: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """-> {"content": bool or None, "globals": bool}, the keyword arguments of pool_features
    (content None: pool content patches when the pages carry masks, as pool_features does)."""
    pooling = dict(pooling or {})
    unknown = set(pooling) - {"content", "globals"}
    if unknown:
        raise ValueError(f"QualityPredictor: pooling takes 'content' and 'globals', got {sorted(unknown)}")
    content = pooling.get("content")
    return {"content": None if content is None else bool(content), "globals": bool(pooling.get("globals", True))}


def _jsonable(obj: Any, arg: str) -> Any:
    """A JSON round trip: plain types only, so a header compares equal after save/load."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{arg} must be JSON-serialisable: {e}") from None


# -- files --------------------------------------------------------------------------------------

def save_scatter(y_true: ArrayLike, y_pred: ArrayLike, out_png: PathLike, title: str = "",
                 *, threshold: Optional[float] = 0.1, label: str = "CER") -> None:
    """Scatter of predicted against true error rates (e.g. a CVReport target's y and oof) with
    the diagonal, the `threshold` lines and Pearson / Spearman / MAE in the corner; PNG written
    atomically. Uses matplotlib's Agg canvas directly (no pyplot state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y, p = _vector(y_true).reshape(-1), _vector(y_pred).reshape(-1)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"save_scatter: y_true and y_pred must be non-empty and of one length, "
                         f"got {y.size} and {p.size}")
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(y, p, s=8, alpha=0.5, linewidths=0)
    ax.plot([0, 1], [0, 1], color="0.4", lw=1, ls="--")
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", lw=0.8, alpha=0.6)
        ax.axhline(threshold, color="tab:red", lw=0.8, alpha=0.6)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(title)
    ax.text(0.03, 0.97, f"n = {y.size}\nPearson {pearson(y, p):.3f}\nSpearman {spearman(y, p):.3f}\n"
                        f"MAE {mae(y, p):.3f}", transform=ax.transAxes, va="top", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out_png, buf.getvalue())
