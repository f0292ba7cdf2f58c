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
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from .._atomic import atomic_write_bytes
from .dataset.store import Dataset
from .encoders.glyph import GlyphPatchEncoder
from .encoders.pixel import PixelPatchEncoder
from .encoders.pooling import page_features, pool_features
from .model import QualityPredictor
from .report import save_scatter
from .resolution import at_model_dpi
from .stats import bootstrap_metrics
from .verdict import verdict

# The shipped predictors, one per OCR engine and page language (colkern.quality.models/).
SHIPPED_MODELS = {("tesseract", "eng"): "tesseract-eng.colq", ("tesseract", "jpn"): "tesseract-jpn.colq",
                  ("rapidocr", "eng"): "rapidocr-eng.colq", ("rapidocr", "jpn"): "rapidocr-jpn.colq"}
DEFAULT_DPI = 150
_BATCH = 32  # pages encoded per patch_pool call


def shipped_models() -> List[tuple]:
    """(engine, lang) of every shipped predictor present in this installation."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
    return sorted(key for key, name in SHIPPED_MODELS.items() if os.path.isfile(os.path.join(here, name)))


def shipped_model_path(engine: str, lang: str = "eng") -> str:
    """Path of the predictor trained by the project for `engine` ("tesseract" or "rapidocr") on
    pages in `lang` ("eng" or "jpn")."""
    key = (engine, lang)
    if key not in SHIPPED_MODELS:
        known = ", ".join(f"{e}/{l}" for e, l in sorted(SHIPPED_MODELS))
        engines = sorted({e for e, _ in SHIPPED_MODELS})
        if engine not in engines:
            raise ValueError(f"no shipped model for engine {engine!r}; engines: {', '.join(engines)} "
                             f"(shipped: {known})")
        raise ValueError(f"no shipped {engine} model for language {lang!r}; languages: "
                         f"{', '.join(sorted(l for e, l in SHIPPED_MODELS if e == engine))} (shipped: {known})")
    path = resources.files("colkern.quality") / "models" / SHIPPED_MODELS[key]
    if not path.is_file():
        raise FileNotFoundError(f"the shipped {engine}/{lang} model {path} is missing from this installation")
    return str(path)


def load_model(model: Optional[str] = None, engine: str = "tesseract", lang: str = "eng") -> QualityPredictor:
    """A predictor from a model file, or the shipped one for `engine` and `lang` when `model` is None."""
    return QualityPredictor.load(model if model is not None else shipped_model_path(engine, lang))


DEFAULT_ENCODER = "glyph"


def _encoder_classes() -> Dict[str, type]:
    from .encoders.border import BorderPatchEncoder
    from .encoders.lines import LinePatchEncoder
    from .encoders.ppocr import PPOCRPatchEncoder
    from .encoders.skew import SkewPatchEncoder

    return {"glyph": GlyphPatchEncoder, "pixel": PixelPatchEncoder, "ppocr": PPOCRPatchEncoder,
            "lines": LinePatchEncoder, "skew": SkewPatchEncoder, "border": BorderPatchEncoder}


BUILT_IN_ENCODERS = ("glyph", "pixel", "ppocr", "lines", "skew", "border", "concat")


def make_encoder(name: str = DEFAULT_ENCODER, params: Optional[dict] = None):
    """The encoder a model names, built from its stored params: "glyph" (the default,
    GlyphPatchEncoder), "pixel" (PixelPatchEncoder), "ppocr" (PPOCRPatchEncoder: the PP-OCR
    detector's feature map), "lines" (LinePatchEncoder: text-line direction and paper lighting),
    "skew" (SkewPatchEncoder: page and tile skew by projection profile), "border"
    (BorderPatchEncoder: a scanner's or the desk's dark band along the page edges) or "concat"
    (ConcatPatchEncoder; params {"parts": [{"name", "params"}, ...]}). A ColPali encoder needs a
    model directory: build it with colkern.quality.encoders.ColPaliFeatureEncoder."""
    if name == "concat":
        from .encoders.combined import ConcatPatchEncoder

        parts = (params or {}).get("parts")
        if not isinstance(parts, list) or not parts:
            raise ValueError(f"encoder 'concat' needs params {{'parts': [...]}}, got {params!r}")
        return ConcatPatchEncoder([make_encoder(p["name"], p.get("params")) for p in parts])
    classes = _encoder_classes()
    if name not in classes:
        raise ValueError(f"encoder {name!r} is not built in (built in: {', '.join(BUILT_IN_ENCODERS)}); "
                         f"ColPali features need colkern.quality.encoders.ColPaliFeatureEncoder and a model")
    return classes[name](**(params or {}))


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
    langs = sorted(build.get("langs") or {}) or sorted({s.lang for s in dataset})
    if len(langs) == 1:
        config["lang"] = langs[0]  # the page language the model is for (predict --lang)
    return config


# -- training and evaluation -------------------------------------------------------------------


def train_predictor(dataset: Dataset, engine: str, *, encoder=None, cv_folds: int = 0, seed: int = 0,
                    lgbm_params: Optional[dict] = None, calibrate: bool = True, progress: bool = False):
    """Fits a QualityPredictor on every sample of `dataset` for `engine`'s CER and WER.
    cv_folds >= 2 also runs grouped k-fold cross-validation first and, with `calibrate`, fits the
    model's calibration on its out-of-fold predictions (QualityPredictor.calibrate).
    -> (model, CVReport of the raw out-of-fold predictions, or None)."""
    encoder = encoder or make_encoder()
    if engine not in dataset.engines:
        raise ValueError(f"the data set at {dataset.root} has no {engine!r} labels (it has {dataset.engines})")
    X = dataset_features(dataset, encoder, progress=progress)
    y = dataset_labels(dataset, engine)
    groups = dataset.groups()
    model = QualityPredictor.for_encoder(encoder, engine, lgbm_params=lgbm_params,
                                         engine_config=engine_config(dataset, engine))
    cv = None
    if cv_folds >= 2:
        run = model.calibrate if calibrate else model.cross_validate
        cv = run(X, y, groups, n_splits=cv_folds, seed=seed)
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
    groups: np.ndarray  # int64 [n]: source document of each page (pooled sets: distinct per set)

    def summary(self) -> str:
        lines = [f"{self.n} held-out pages from {self.sources} source documents"]
        for target, ms in self.metrics.items():
            lines.append(f"  {target}: " + ", ".join(f"{name} {_ci_text(m)}" for name, m in ms.items()))
        return "\n".join(lines)


def _ci_text(m: dict) -> str:
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def evaluate_predictor(model: QualityPredictor, dataset: Union[Dataset, Sequence[Dataset]],
                       report_dir: Optional[str] = None, *, threshold: float = 0.1, n_bootstrap: int = 1000,
                       progress: bool = False) -> Evaluation:
    """Predicts every page of a held-out data set (or of several, pooled: their source documents
    stay distinct clusters) and scores the predictions: Pearson, Spearman, MAE and AUC of
    "label > threshold", each with a 95% bootstrap interval over source documents.
    report_dir: also write report.json, report.md and a predicted-vs-actual scatter PNG per target."""
    datasets = [dataset] if isinstance(dataset, Dataset) else list(dataset)
    if not datasets:
        raise ValueError("evaluate_predictor: dataset must be a Dataset or a non-empty list of them")
    encoder = make_encoder(model.encoder_name, model.encoder_params)
    preds, truths, groups = [], [], []
    offset = 0
    for ds in datasets:
        preds.append(model.predict(dataset_features(ds, encoder, progress=progress)))
        truths.append({t: ds.targets(model.engine, t) for t in model.targets})
        g = ds.groups()
        groups.append(g + offset)
        offset += int(g.max() + 1) if len(g) else 0
    pred = {t: np.concatenate([p[t] for p in preds]) for t in model.targets}
    truth = {t: np.concatenate([y[t] for y in truths]) for t in model.targets}
    groups = np.concatenate(groups)
    metrics = {}
    for t in model.targets:
        cis = bootstrap_metrics(truth[t], pred[t], groups, threshold=threshold, n_bootstrap=n_bootstrap)
        metrics[t] = {name: {"value": ci.value, "low": ci.low, "high": ci.high} for name, ci in cis.items()}
    ev = Evaluation(len(groups), offset, metrics, truth, pred, groups)
    if report_dir:
        _write_report(ev, model, datasets, report_dir)
    return ev


def _write_report(ev: Evaluation, model: QualityPredictor, datasets: List[Dataset], report_dir: str) -> None:
    os.makedirs(report_dir, exist_ok=True)
    for t in model.targets:
        save_scatter(ev.y_true[t], ev.y_pred[t], os.path.join(report_dir, f"scatter-{t}.png"),
                     title=f"{model.engine} {t.upper()}: predicted vs actual\n{ev.n} held-out pages")
    doc = {"model": model.path, "engine": model.engine, "encoder": model.encoder_name,
           "dataset": [ds.root for ds in datasets] if len(datasets) > 1 else datasets[0].root,
           "pages": ev.n, "sources": ev.sources, "metrics": ev.metrics}
    atomic_write_bytes(os.path.join(report_dir, "report.json"), json.dumps(doc, indent=2).encode())
    rows = ["| target | pearson | spearman | MAE | AUC (> 0.1) |", "|---|---:|---:|---:|---:|"]
    for t, ms in ev.metrics.items():
        cells = [_ci_text(ms[k]) for k in ("pearson", "spearman", "mae", "auc")]
        rows.append(f"| {t} | " + " | ".join(cells) + " |")
    text = f"# OCR quality predictor, held-out evaluation\n\n{ev.summary()}\n\n" + "\n".join(rows) + "\n"
    atomic_write_bytes(os.path.join(report_dir, "report.md"), text.encode())


# -- prediction on pages ------------------------------------------------------------------------


@dataclass
class PagePrediction:
    """One page's prediction. file: the path, or None for an in-memory image; page: 0-based page
    of a PDF, None for an image; cer / wer: predicted (calibrated) error rates, None when the page
    could not be read or holds no text; verdict: "good" / "fair" / "poor" (colkern.quality.verdict),
    "empty" (no text) or "error"; overlay: path of the written overlay PNG; error: why there is no
    prediction; input: index of the input the page came from."""

    file: Optional[str]
    page: Optional[int]
    cer: Optional[float]
    wer: Optional[float]
    verdict: str
    overlay: Optional[str] = None
    error: Optional[str] = None
    input: Optional[int] = None

    def to_dict(self) -> dict:
        """JSON-able, pages 1-based as the CLI prints them."""
        return {"file": self.file, "page": None if self.page is None else self.page + 1, "cer": self.cer,
                "wer": self.wer, "verdict": self.verdict, "overlay": self.overlay, "error": self.error}


def _check_pages(pages) -> Optional[List[int]]:
    if pages is None:
        return None
    pages = [pages] if isinstance(pages, int) else list(pages)
    if not pages or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0 for p in pages):
        raise ValueError(f"pages must be non-negative 0-based page numbers, got {pages!r}")
    return [int(p) for p in pages]


def iter_pdf(path: str, dpi: int, pages: Optional[Sequence[int]] = None):
    """(page or None, grey PIL image or None, error or None) for the selected pages of a PDF (all
    when pages is None; numbers past the end are skipped); a file that cannot be opened yields one
    (None, None, error), a page that cannot be rendered its error."""
    import pymupdf

    from ..documents.pdf import render_open_page

    try:
        doc = pymupdf.open(path)
    except Exception as e:  # PyMuPDF raises its own types for damaged files
        yield None, None, f"not a readable PDF ({e})"
        return
    with doc:
        if doc.needs_pass:
            yield None, None, "the PDF is encrypted"
            return
        for n in (range(doc.page_count) if pages is None else [p for p in pages if p < doc.page_count]):
            try:
                image = render_open_page(doc[n], dpi, gray=True)
                image.info["dpi"] = (dpi, dpi)
                yield n, image, None
            except Exception as e:
                yield n, None, f"cannot render page {n + 1} ({e})"


def iter_input_pages(paths: Sequence[str], dpi: int, pages: Optional[Sequence[int]] = None):
    """(file, page or None, PIL image or None, error or None) for every page of the PDFs and every
    image file in `paths`; a file or page that cannot be read yields its error and the rest go on.
    pages: 0-based page numbers to take from each PDF (None: all)."""
    from PIL import Image

    for path in paths:
        path = os.fspath(path)
        if not os.path.exists(path):
            yield path, None, None, "no such file"
            continue
        if path.lower().endswith(".pdf"):
            for page, image, error in iter_pdf(path, dpi, pages):
                yield path, page, image, error
            continue
        try:
            with Image.open(path) as im:
                im.load()
                yield path, None, im.copy(), None
        except (OSError, ValueError) as e:
            yield path, None, None, f"not a readable image ({e})"


def model_dpi(model: QualityPredictor) -> int:
    """The resolution the model's training pages were rendered at (engine_config["dpi"])."""
    dpi = model.engine_config.get("dpi")
    return int(dpi) if isinstance(dpi, (int, float)) and not isinstance(dpi, bool) and dpi > 0 else DEFAULT_DPI


def predict_page(model: QualityPredictor, encoder, image, *, file: Optional[str] = None,
                 page: Optional[int] = None, overlay_dir: Optional[str] = None,
                 overlay_name: Optional[str] = None, input: Optional[int] = None) -> PagePrediction:
    """One page image -> its PagePrediction (and overlay PNG in overlay_dir, named overlay_name).
    An image that declares another resolution than the model's is resampled first (at_model_dpi);
    the overlay is drawn on the resampled page."""
    from .overlay import patch_quality_map, save_overlay

    image, _ = at_model_dpi(image, model_dpi(model))
    try:
        feats = encoder.encode(image)
    except (TypeError, ValueError) as e:
        return PagePrediction(file, page, None, None, "error", error=f"not a usable page image ({e})", input=input)
    if feats.content is not None and not bool(feats.content.any()):
        return PagePrediction(file, page, None, None, "empty", error="no text on the page", input=input)
    pred = model.predict(pool_features([feats], **model.pooling))
    cer = float(pred["cer"][0])
    wer = float(pred["wer"][0]) if "wer" in pred else None
    row = PagePrediction(file, page, cer, wer, verdict(cer), input=input)
    if overlay_dir:
        os.makedirs(overlay_dir, exist_ok=True)
        row.overlay = os.path.join(overlay_dir, overlay_name or f"page-{input}.png")
        save_overlay(image, patch_quality_map(model, feats), row.overlay, patch=feats.patch)
    return row


def overlay_stem(file: Optional[str], page: Optional[int], index: int) -> str:
    stem = os.path.splitext(os.path.basename(file))[0] if file else f"image-{index + 1}"
    return stem + (f"-p{page + 1}" if page is not None else "") + ".png"


def predict_files(paths: Iterable[str], model: QualityPredictor, *, overlay_dir: Optional[str] = None,
                  dpi: Optional[int] = None, pages: Optional[Sequence[int]] = None) -> List[PagePrediction]:
    """Predicted CER / WER and a verdict for every page of the given PDFs and images.
    pages: 0-based page numbers to take from each PDF (None: all). See also colkern.quality.predict,
    which also takes in-memory images and picks the shipped model by engine and language."""
    encoder = make_encoder(model.encoder_name, model.encoder_params)
    dpi = dpi or model_dpi(model)
    out: List[PagePrediction] = []
    for index, path in enumerate(paths):
        for file, page, image, error in iter_input_pages([path], int(dpi), _check_pages(pages)):
            if image is None:
                out.append(PagePrediction(file, page, None, None, "error", error=error, input=index))
                continue
            out.append(predict_page(model, encoder, image, file=file, page=page, overlay_dir=overlay_dir,
                                    overlay_name=overlay_stem(file, page, index), input=index))
    return out
