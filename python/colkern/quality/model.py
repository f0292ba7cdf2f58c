"""QualityPredictor: an OCR engine's error rates (CER, WER) on a page predicted from pooled
image features, one LightGBM booster per target.

    enc = PixelPatchEncoder()
    X = page_features(images, enc)                                     # float32 [n, F]
    model = QualityPredictor.for_encoder(enc, "tesseract", engine_config={"lang": "eng", "psm": 3})
    report = model.cross_validate(X, {"cer": cer, "wer": wer}, groups=source_ids)
    model.fit(X, {"cer": cer, "wer": wer}, groups=source_ids).save("tesseract.colkq")
    QualityPredictor.load("tesseract.colkq").predict_images([page], enc)["cer"]   # [1] in [0, 1]

One model per OCR engine (a model of "how badly will *this* engine read this page": another
engine or configuration needs its own labels and model).

Labels are error rates in [0, 1] (colkern.quality.text_metrics normalises by the longer string).
The default objective is LightGBM's "cross_entropy" (logistic loss with fractional labels):
its sigmoid output stays in [0, 1] and it fits the bimodal label distributions OCR produces
(many pages at 0 or 1) better than squared error. Predictions are clipped to [0, 1] whatever
the objective.

Calibration: the boosters' raw outputs are ranked well but not on the CER scale (a clean page
came out at ~0.02, the "good" threshold, because the cross-entropy fit hedges towards the mean).
`calibrate` fits, per target, an isotonic regression of the true labels on out-of-fold raw
predictions (grouped k-fold, so no page is calibrated by a booster that saw it) and stores it as
knots (x = raw prediction, y = calibrated value); `predict` maps raw outputs through the knots
by linear interpolation (flat beyond the first and last knot), which is monotone non-decreasing
and stays in [0, 1] (every knot value is a mean of labels in [0, 1]). `predict(..., raw=True)`
skips it. A model without knots (files written before calibration existed) predicts raw outputs.

Cross-validation uses grouped k-fold and a cluster bootstrap over the same groups
(colkern.quality.stats). The file format is colkern.quality.model_format's.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import lightgbm as lgb
import numpy as np
import torch

from .._types import PathLike
from .._version import __version__
from .encoders.pooling import pool_features, pooled_feature_names
from .model_format import FORMAT_VERSION, ModelFormatError, read_boosters, read_model_file, write_model_file
from .report import CVReport, TargetReport
from .stats import ArrayLike, as_float64, bootstrap_metrics, group_codes, group_kfold
from .verdict import VERDICT_THRESHOLDS, verdict

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
        self.calibration: Optional[Dict[str, Dict[str, List[float]]]] = None
        self.path: Optional[str] = None

    @classmethod
    def for_encoder(cls, encoder, engine: str, targets: Sequence[str] = ("cer", "wer"),
                    lgbm_params: Optional[Mapping[str, Any]] = None, *, content: Optional[bool] = None,
                    globals: bool = True, engine_config: Optional[Mapping[str, Any]] = None) -> "QualityPredictor":
        """A predictor for features made by page_features(images, encoder, content=...,
        globals=...): name, params, pooling and feature names come from the encoder."""
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
            v = as_float64(y[t])
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
        n_groups = int(group_codes(groups, X.shape[0]).max() + 1) if groups is not None else None
        if self.feature_names is None:
            self.feature_names = [f"f{i}" for i in range(X.shape[1])]
        self.boosters = self._train(X, y)
        self.training = _training_summary(X, y, n_groups)
        return self

    # -- prediction -----------------------------------------------------------------------------

    def predict(self, X: ArrayLike, *, raw: bool = False) -> Dict[str, np.ndarray]:
        """X: [n, F] page features -> target -> float64 [n] predicted error rates in [0, 1],
        calibrated when the model has a calibration (raw=True: the boosters' own outputs)."""
        if not self.is_fitted:
            raise RuntimeError("QualityPredictor.predict: the model is not fitted (call fit or load)")
        X = self._check_X(X, "predict")
        nt = int(self.lgbm_params.get("num_threads", 0) or 0)
        out = {t: np.clip(self.boosters[t].predict(X, num_threads=nt), 0.0, 1.0) for t in self.targets}
        return out if raw else self.apply_calibration(out)

    @property
    def is_calibrated(self) -> bool:
        return bool(self.calibration)

    def apply_calibration(self, raw: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Raw predictions (target -> [n]) through the stored knots; targets without knots, or a
        model without calibration, pass unchanged."""
        cal = self.calibration or {}
        return {t: (np.interp(v, cal[t]["x"], cal[t]["y"]) if t in cal else np.asarray(v, np.float64))
                for t, v in raw.items()}

    def calibrate(self, X: ArrayLike, y: Mapping[str, ArrayLike], groups, n_splits: int = 5, seed: int = 0,
                  **cv_kwargs) -> CVReport:
        """Fit the calibration from out-of-fold predictions (grouped k-fold with this model's
        settings, as cross_validate) and store it; -> the CVReport of the raw out-of-fold
        predictions (report.targets[t].oof). Call fit before or after: calibration and boosters are
        independent (the final boosters are trained on all samples, the knots on out-of-fold ones)."""
        report = self.cross_validate(X, y, groups, n_splits=n_splits, seed=seed, **cv_kwargs)
        self.calibration = {t: fit_isotonic(r.oof, r.y) for t, r in report.targets.items()}
        return report

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
        codes = np.arange(n, dtype=np.int64) if groups is None else group_codes(groups, n, "cross_validate: groups")
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
            "colkern_version": __version__,
            "lightgbm_version": lgb.__version__,
            "encoder": {"name": self.encoder_name, "params": self.encoder_params, "pooling": self.pooling},
            "feature_names": self.feature_names,
            "engine": {"name": self.engine, "config": self.engine_config},
            "targets": list(self.targets),
            "lgbm_params": _jsonable(self.lgbm_params, "lgbm_params"),
            "num_rounds": self.num_rounds,
            "training": self.training,
            "verdict_thresholds": list(VERDICT_THRESHOLDS),
            # Added after format version 1 shipped: readers that predate it ignore the key, and
            # files without it load with calibration None (raw predictions).
            "calibration": self.calibration,
        }

    def save(self, path: PathLike) -> None:
        """Write the fitted model to `path` atomically (format: colkern.quality.model_format)."""
        if not self.is_fitted:
            raise RuntimeError("QualityPredictor.save: the model is not fitted")
        write_model_file(path, self.header(), {t: self.boosters[t] for t in self.targets})
        self.path = os.fspath(path)

    @classmethod
    def load(cls, path: PathLike) -> "QualityPredictor":
        """Read a model written by save. Raises FileNotFoundError for a missing file and
        ModelFormatError for anything else wrong with it."""
        path = os.fspath(path)
        head, data, pos = read_model_file(path)
        try:
            model = cls._from_header(head)
            boosters = read_boosters(head["models"], data, pos, model.targets)
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
        model.calibration = _check_calibration(head.get("calibration"), model.targets)
        return model


def fit_isotonic(pred: ArrayLike, label: ArrayLike, *, max_knots: int = 64) -> Dict[str, List[float]]:
    """Isotonic (monotone non-decreasing) regression of `label` on `pred`, as interpolation knots.

    pred, label: [n] (out-of-fold predictions and true labels in [0, 1]). The pool-adjacent-
    violators fit (scipy.optimize.isotonic_regression, on labels sorted by prediction; tied
    predictions are averaged first) gives blocks of equal fitted value; each block becomes one knot
    at (mean prediction of the block, its fitted value). Interpolating between block centres keeps
    the map monotone but continuous (a step function would tie every page of a block).
    max_knots: adjacent blocks are merged (weighted) down to this many knots, so a file stores at
    most 2 x max_knots numbers per target. -> {"x": [...], "y": [...]}, x strictly increasing."""
    from scipy.optimize import isotonic_regression

    p, v = as_float64(pred).reshape(-1), as_float64(label).reshape(-1)
    if p.shape != v.shape or p.size < 2:
        raise ValueError(f"fit_isotonic: need two [n] arrays of one length n >= 2, got {p.size} and {v.size}")
    if not (np.isfinite(p).all() and np.isfinite(v).all()):
        raise ValueError("fit_isotonic: predictions and labels must be finite")
    ux, inv = np.unique(p, return_inverse=True)
    w = np.bincount(inv).astype(np.float64)
    mean_label = np.bincount(inv, weights=v) / w
    fitted = isotonic_regression(mean_label, weights=w, increasing=True).x
    # blocks of equal fitted value -> one knot each (weighted mean position)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) > 1e-12])
    bw = np.add.reduceat(w, starts)
    bx = np.add.reduceat(ux * w, starts) / bw
    by = fitted[starts]
    while bx.size > max_knots:  # merge the adjacent pair with the least weight
        i = int(np.argmin(bw[:-1] + bw[1:]))
        tw = bw[i] + bw[i + 1]
        bx[i], by[i], bw[i] = (bx[i] * bw[i] + bx[i + 1] * bw[i + 1]) / tw, (by[i] * bw[i] + by[i + 1] * bw[i + 1]) / tw, tw
        bx, by, bw = np.delete(bx, i + 1), np.delete(by, i + 1), np.delete(bw, i + 1)
    return {"x": [float(a) for a in bx], "y": [float(min(max(b, 0.0), 1.0)) for b in by]}


def _check_calibration(cal: Any, targets: Sequence[str]) -> Optional[Dict[str, Dict[str, List[float]]]]:
    if cal is None:
        return None
    if not isinstance(cal, dict) or not set(cal) <= set(targets):
        raise ValueError(f"calibration must map targets {list(targets)} to knots")
    out = {}
    for t, k in cal.items():
        x, y = np.asarray(k["x"], np.float64), np.asarray(k["y"], np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size < 1 or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"calibration of {t!r}: x and y must be finite lists of one length")
        if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any() or y.min() < 0 or y.max() > 1:
            raise ValueError(f"calibration of {t!r}: knots must increase (x strictly) and lie in [0, 1]")
        out[t] = {"x": x.tolist(), "y": y.tolist()}
    return out


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
