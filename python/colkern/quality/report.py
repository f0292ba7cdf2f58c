"""What cross-validation reports (CVReport, one TargetReport per target) and the predicted-vs-true
scatter plot (save_scatter)."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from .._atomic import atomic_write_bytes
from .._types import PathLike
from .stats import ArrayLike, MetricCI, as_float64, mae, pearson, spearman


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


def save_scatter(y_true: ArrayLike, y_pred: ArrayLike, out_png: PathLike, title: str = "",
                 *, threshold: Optional[float] = 0.1, label: str = "CER") -> None:
    """Scatter of predicted against true error rates (e.g. a CVReport target's y and oof) with
    the diagonal, the `threshold` lines and Pearson / Spearman / MAE in the corner; PNG written
    atomically. Uses matplotlib's Agg canvas directly (no pyplot state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    y, p = as_float64(y_true).reshape(-1), as_float64(y_pred).reshape(-1)
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
