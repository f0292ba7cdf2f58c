"""From a data set to a trained, evaluated predictor, and from pages to predictions.

    X = dataset_features(load_dataset("data/train"), GlyphPatchEncoder())   # cached per encoder
    model = train_predictor(load_dataset("data/train"), engine="tesseract")
    report = evaluate_predictor(model, load_dataset("data/heldout"), "reports/")
    for row in predict_files(["scan.pdf"], model, overlay_dir="overlays/"): print(row)

Features of a data set are cached beside it (features-<encoder>-<digest>.npz, written
atomically, keyed by sample id): training, cross-validation and evaluation encode each page once.
A model records the DPI its pages were rendered at (engine_config["dpi"]); predict_files renders
PDF pages at that DPI, because the pixel features (stroke widths, noise per patch) depend on it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from .dataset import Dataset
from .features import PixelPatchEncoder, page_features
from .glyphs import GlyphPatchEncoder
from .._atomic import atomic_write_bytes
from .predictor import QualityPredictor, bootstrap_metrics, save_scatter, verdict

SHIPPED_MODELS = {"tesseract": "tesseract-eng.colq", "rapidocr": "rapidocr-eng.colq"}
DEFAULT_DPI = 150
_BATCH = 32  # pages encoded per patch_pool call


def shipped_model_path(engine: str) -> str:
    """Path of the predictor trained by the project for `engine` ("tesseract" or "rapidocr")."""
    if engine not in SHIPPED_MODELS:
        raise ValueError(f"no shipped model for engine {engine!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    path = resources.files("colkern.quality") / "models" / SHIPPED_MODELS[engine]
    if not path.is_file():
        raise FileNotFoundError(f"the shipped {engine} model {path} is missing from this installation")
    return str(path)


def load_model(model: Optional[str] = None, engine: str = "tesseract") -> QualityPredictor:
    """A predictor from a model file, or the shipped one for `engine` when `model` is None."""
    return QualityPredictor.load(model if model is not None else shipped_model_path(engine))


WEIGHT_FREE_ENCODERS = {"glyph": GlyphPatchEncoder, "pixel": PixelPatchEncoder}
DEFAULT_ENCODER = "glyph"


def make_encoder(name: str = DEFAULT_ENCODER, params: Optional[dict] = None):
    """The weight-free feature encoder a model names: "glyph" (the default, GlyphPatchEncoder)
    or "pixel" (PixelPatchEncoder). A ColPali encoder needs a model directory: build it with
    colkern.quality.features.ColPaliFeatureEncoder."""
    if name not in WEIGHT_FREE_ENCODERS:
        raise ValueError(f"encoder {name!r} is not built in (built in: {', '.join(WEIGHT_FREE_ENCODERS)}); "
                         f"ColPali features need colkern.quality.features.ColPaliFeatureEncoder and a model")
    return WEIGHT_FREE_ENCODERS[name](**(params or {}))


# -- features of a data set ----------------------------------------------------------------------


def _cache_path(dataset: Dataset, encoder) -> str:
    # The feature names are part of the key: a new colkern version that adds a feature must not
    # read an old cache.
    key = json.dumps({"encoder": encoder.name, "params": encoder.params(), "features": encoder.feature_names(),
                      "pooling": "default"}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(dataset.root, f"features-{encoder.name}-{digest}.npz")


def dataset_features(dataset: Dataset, encoder=None, *, progress: bool = False) -> np.ndarray:
    """float32 [len(dataset), F]: pooled page features of every sample, in dataset order.
    Cached in the data set directory; only samples missing from the cache are encoded."""
    encoder = encoder or make_encoder()
    path = _cache_path(dataset, encoder)
    cached: Dict[str, np.ndarray] = {}
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                cached = dict(zip(z["ids"].tolist(), z["X"]))
        except (OSError, ValueError, KeyError):
            cached = {}  # a damaged cache is only a cache: recompute
    todo = [s for s in dataset if s.sample_id not in cached]
    if todo:
        batches = range(0, len(todo), _BATCH)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="encoding pages", unit="batch")
        for i in batches:
            chunk = todo[i:i + _BATCH]
            X = page_features([s.load_image() for s in chunk], encoder).numpy()
            cached.update({s.sample_id: x for s, x in zip(chunk, X)})
        ids = np.array(sorted(cached))
        buf = io.BytesIO()
        np.savez(buf, ids=ids, X=np.stack([cached[i] for i in ids]))
        atomic_write_bytes(path, buf.getvalue())
    return np.stack([cached[s.sample_id] for s in dataset]).astype(np.float32)


def dataset_labels(dataset: Dataset, engine: str) -> Dict[str, np.ndarray]:
    return {"cer": dataset.targets(engine, "cer"), "wer": dataset.targets(engine, "wer")}


def engine_config(dataset: Dataset, engine: str) -> dict:
    """The OCR configuration behind a data set's labels for `engine`, plus its render DPI."""
    build = dataset.meta.get("build", {})
    config = dataset.engine_info(engine)
    dpi = build.get("dpi")
    config["dpi"] = dpi[0] if isinstance(dpi, list) and len(dpi) == 1 else dpi
    config["langs"] = build.get("langs")
    return config


# -- training and evaluation -------------------------------------------------------------------


def train_predictor(dataset: Dataset, engine: str, *, encoder=None, cv_folds: int = 0, seed: int = 0,
                    lgbm_params: Optional[dict] = None, progress: bool = False):
    """Fits a QualityPredictor on every sample of `dataset` for `engine`'s CER and WER.
    cv_folds >= 2 also runs grouped k-fold cross-validation first. -> (model, CVReport or None)."""
    encoder = encoder or make_encoder()
    if engine not in dataset.engines:
        raise ValueError(f"the data set at {dataset.root} has no {engine!r} labels (it has {dataset.engines})")
    X = dataset_features(dataset, encoder, progress=progress)
    y = dataset_labels(dataset, engine)
    groups = dataset.groups()
    model = QualityPredictor.for_encoder(encoder, engine, lgbm_params=lgbm_params,
                                         engine_config=engine_config(dataset, engine))
    cv = model.cross_validate(X, y, groups, n_splits=cv_folds, seed=seed) if cv_folds >= 2 else None
    model.fit(X, y, groups=groups)
    model.training["dataset"] = {"path": os.path.basename(dataset.root), "samples": len(dataset),
                                 "sources": int(groups.max() + 1) if len(groups) else 0,
                                 "seed": dataset.meta.get("build", {}).get("seed")}
    return model, cv


@dataclass
class Evaluation:
    """Held-out metrics per target: {"pearson", "spearman", "mae", "auc"} -> MetricCI-like dicts."""

    n: int
    sources: int
    metrics: Dict[str, Dict[str, dict]]
    y_true: Dict[str, np.ndarray]
    y_pred: Dict[str, np.ndarray]

    def summary(self) -> str:
        lines = [f"{self.n} held-out pages from {self.sources} source documents"]
        for target, ms in self.metrics.items():
            parts = [f"{name} {m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]" for name, m in ms.items()]
            lines.append(f"  {target}: " + ", ".join(parts))
        return "\n".join(lines)


def evaluate_predictor(model: QualityPredictor, dataset: Dataset, report_dir: Optional[str] = None, *,
                       threshold: float = 0.1, n_bootstrap: int = 1000, progress: bool = False) -> Evaluation:
    """Predicts every page of a held-out data set and scores the predictions: Pearson, Spearman,
    MAE and AUC of "label > threshold", each with a 95% bootstrap interval over source documents.
    report_dir: also write report.json, report.md and a predicted-vs-actual scatter PNG per target."""
    encoder = make_encoder(model.encoder_name, model.encoder_params)
    X = dataset_features(dataset, encoder, progress=progress)
    pred = model.predict(X)
    groups = dataset.groups()
    truth = {t: dataset.targets(model.engine, t) for t in model.targets}
    metrics = {}
    for t in model.targets:
        cis = bootstrap_metrics(truth[t], pred[t], groups, threshold=threshold, n_bootstrap=n_bootstrap)
        metrics[t] = {name: {"value": ci.value, "low": ci.low, "high": ci.high} for name, ci in cis.items()}
    ev = Evaluation(len(dataset), int(groups.max() + 1) if len(groups) else 0, metrics, truth, pred)
    if report_dir:
        _write_report(ev, model, dataset, report_dir)
    return ev


def _write_report(ev: Evaluation, model: QualityPredictor, dataset: Dataset, report_dir: str) -> None:
    os.makedirs(report_dir, exist_ok=True)
    for t in model.targets:
        save_scatter(ev.y_true[t], ev.y_pred[t], os.path.join(report_dir, f"scatter-{t}.png"),
                     title=f"{model.engine} {t.upper()}: predicted vs actual\n{ev.n} held-out pages")
    doc = {"model": model.path, "engine": model.engine, "encoder": model.encoder_name,
           "dataset": dataset.root, "pages": ev.n, "sources": ev.sources, "metrics": ev.metrics}
    atomic_write_bytes(os.path.join(report_dir, "report.json"), json.dumps(doc, indent=2).encode())
    rows = ["| target | pearson | spearman | MAE | AUC (> 0.1) |", "|---|---:|---:|---:|---:|"]
    for t, ms in ev.metrics.items():
        cells = [f"{ms[k]['value']:.3f} [{ms[k]['low']:.3f}, {ms[k]['high']:.3f}]" for k in ("pearson", "spearman", "mae", "auc")]
        rows.append(f"| {t} | " + " | ".join(cells) + " |")
    text = f"# OCR quality predictor, held-out evaluation\n\n{ev.summary()}\n\n" + "\n".join(rows) + "\n"
    atomic_write_bytes(os.path.join(report_dir, "report.md"), text.encode())


# -- prediction on files -----------------------------------------------------------------------


@dataclass
class PagePrediction:
    file: str
    page: Optional[int]  # 0-based page of a PDF; None for an image file
    cer: Optional[float]
    wer: Optional[float]
    verdict: str
    overlay: Optional[str] = None
    error: Optional[str] = None


def iter_input_pages(paths: Sequence[str], dpi: int):
    """(file, page or None, PIL image or None, error or None) for every page of the PDFs and every
    image file in `paths`; a file or page that cannot be read yields its error and the rest go on."""
    from PIL import Image

    from ..pdf import FileFailure, PageFailure, iter_pdf_pages

    for path in paths:
        if not os.path.exists(path):
            yield path, None, None, "no such file"
            continue
        if path.lower().endswith(".pdf"):
            for item in iter_pdf_pages([path], dpi=dpi):
                if isinstance(item, FileFailure):
                    yield item.file, None, None, item.error
                elif isinstance(item, PageFailure):
                    yield item.file, item.page, None, item.error
                else:
                    yield item.file, item.page, item.image, None
            continue
        try:
            with Image.open(path) as im:
                im.load()
                yield path, None, im.copy(), None
        except (OSError, ValueError) as e:
            yield path, None, None, f"not a readable image ({e})"


def predict_files(paths: Iterable[str], model: QualityPredictor, *, overlay_dir: Optional[str] = None,
                  dpi: Optional[int] = None) -> List[PagePrediction]:
    """Predicted CER / WER and a verdict for every page of the given PDFs and images."""
    from .features import pool_features
    from .overlay import patch_quality_map, save_overlay

    encoder = make_encoder(model.encoder_name, model.encoder_params)
    dpi = dpi or model.engine_config.get("dpi") or DEFAULT_DPI
    out: List[PagePrediction] = []
    for file, page, image, error in iter_input_pages(list(paths), int(dpi)):
        if image is None:
            out.append(PagePrediction(file, page, None, None, "error", error=error))
            continue
        feats = encoder.encode(image)
        if feats.content is not None and not bool(feats.content.any()):
            out.append(PagePrediction(file, page, None, None, "empty", error="no text on the page"))
            continue
        pred = model.predict(pool_features([feats], **model.pooling))
        cer = float(pred["cer"][0])
        wer = float(pred["wer"][0]) if "wer" in pred else None
        row = PagePrediction(file, page, cer, wer, verdict(cer))
        if overlay_dir:
            os.makedirs(overlay_dir, exist_ok=True)
            stem = os.path.splitext(os.path.basename(file))[0] + (f"-p{page + 1}" if page is not None else "")
            row.overlay = os.path.join(overlay_dir, stem + ".png")
            save_overlay(image, patch_quality_map(model, feats), row.overlay, patch=feats.patch)
        out.append(row)
    return out
