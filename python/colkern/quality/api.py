"""The one-call API: predicted OCR quality for pages and for regions of a page.

    rows = predict(["scan.pdf", "receipt.png", pil_image, gray_array], engine="tesseract", lang="jpn")
    rows[0].file, rows[0].page, rows[0].cer, rows[0].wer, rows[0].verdict      # one row per page
    regions = predict_regions(page_image, [(40, 20, 430, 60), {"box": [...], "name": "total"}])
    regions[0].cer, regions[0].verdict

`predict` takes PDF paths, image paths, PIL images and numpy arrays (grey [H, W], RGB / RGBA
[H, W, 3|4]; uint8, uint16, bool, or float in [0, 1]) - one input or a list - and returns one
PagePrediction per page, the rows `colkern quality predict` prints. The model is the shipped
predictor for (engine, lang) unless `model` names a file or is a loaded QualityPredictor.
PDF pages are rendered at the model's training DPI; an image that declares another resolution
(a PNG's pHYs, a TIFF's tags: PIL's info["dpi"]) is resampled to it first, and so is a large
image shaped like a whole page that declares none (a phone photo, a 300-dpi scan as a numpy
array: taken as 8.4 inches wide); other images are taken as they are
(colkern.quality.resolution.at_model_dpi: a model trained at 150 dpi reads 150-dpi pages best).

`predict_regions` predicts the CER of given boxes of one page: the page is encoded once, and each
box's patches (every patch the box overlaps) are pooled and scored exactly as the overlay scores a
patch's window (colkern.quality.overlay: the page model applied to the pooled neighbourhood, with
the page's resolution feature). Boxes are (x0, y0, x1, y1) in pixels of the page image (of the
rendered page for a PDF), x1 / y1 exclusive; a box must lie inside the page. A page that declares
another resolution than the model's is resampled for the encoder, its boxes with it.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from .model import QualityPredictor
from .pipeline import (
    PagePrediction,
    _check_pages,
    iter_input_pages,
    iter_pdf,
    make_encoder,
    model_dpi,
    overlay_stem,
    predict_page,
    shipped_model_path,
)
from .resolution import at_model_dpi
from .verdict import verdict

__all__ = ["predict", "predict_regions", "RegionPrediction", "parse_boxes", "resolve_model"]

ModelLike = Union[None, str, os.PathLike, QualityPredictor]


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int) -> QualityPredictor:
    return QualityPredictor.load(path)


def resolve_model(model: ModelLike = None, engine: str = "tesseract", lang: str = "eng") -> QualityPredictor:
    """A loaded QualityPredictor: `model` itself, the file it names, or the shipped model for
    (engine, lang). Files are loaded once per process (cached by path and modification time)."""
    if isinstance(model, QualityPredictor):
        return model
    if model is None:
        path = shipped_model_path(engine, lang)
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such model file {path!r}")
    else:
        raise TypeError(f"model must be None, a path or a QualityPredictor, got {type(model).__name__}")
    return _load_cached(os.path.abspath(path), os.stat(path).st_mtime_ns)


def _is_image(x: Any) -> bool:
    from PIL import Image

    return isinstance(x, (Image.Image, np.ndarray))


def predict(inputs, engine: str = "tesseract", lang: str = "eng", *, model: ModelLike = None,
            dpi: Optional[int] = None, pages: Optional[Sequence[int]] = None,
            overlay_dir: Optional[str] = None) -> List[PagePrediction]:
    """Predicted CER / WER and a verdict for every page of `inputs` (see the module docstring).

    inputs: one PDF path, image path, PIL image or numpy array, or a list of them.
    engine, lang: which shipped model ("tesseract" / "rapidocr", "eng" / "jpn"); ignored when
      `model` is given. An unknown pair raises ValueError naming the shipped ones.
    dpi: render DPI for PDFs (default: the model's); pages: 0-based page numbers to take from
      each PDF (default all); overlay_dir: also write a per-patch quality overlay PNG per page
      (PagePrediction.overlay is its path).
    A file that cannot be read, or an image that cannot be used, gives a row with verdict "error"
    and the error; a page without text gives "empty". Argument errors raise.
    """
    predictor = resolve_model(model, engine, lang)
    encoder = make_encoder(predictor.encoder_name, predictor.encoder_params)
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) or _is_image(inputs) else list(inputs)
    page_list = _check_pages(pages)
    render_dpi = int(dpi or model_dpi(predictor))
    rows: List[PagePrediction] = []
    for index, item in enumerate(items):
        if _is_image(item):
            rows.append(predict_page(predictor, encoder, item, overlay_dir=overlay_dir,
                                     overlay_name=overlay_stem(None, None, index), input=index))
            continue
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"predict: inputs[{index}] must be a path, a PIL image or a numpy array, "
                            f"got {type(item).__name__}")
        for file, page, image, error in iter_input_pages([item], render_dpi, page_list):
            if image is None:
                rows.append(PagePrediction(file, page, None, None, "error", error=error, input=index))
            else:
                rows.append(predict_page(predictor, encoder, image, file=file, page=page, overlay_dir=overlay_dir,
                                         overlay_name=overlay_stem(file, page, index), input=index))
    return rows


# -- regions -----------------------------------------------------------------------------------


@dataclass
class RegionPrediction:
    """One box's prediction. box: (x0, y0, x1, y1) pixels; name: the box's name or None;
    cer / wer: predicted error rates (None for a box without text); verdict: "good" / "fair" /
    "poor" or "empty"; n_patches / n_content: patches the box covers / those holding ink."""

    box: Tuple[int, int, int, int]
    name: Optional[str]
    cer: Optional[float]
    wer: Optional[float]
    verdict: str
    n_patches: int
    n_content: int

    def to_dict(self) -> dict:
        return {"name": self.name, "box": list(self.box), "cer": self.cer, "wer": self.wer,
                "verdict": self.verdict, "n_patches": self.n_patches, "n_content": self.n_content}


def parse_boxes(boxes, width: int, height: int) -> List[Tuple[Tuple[int, int, int, int], Optional[str]]]:
    """[(x0, y0, x1, y1), name] from a list of 4-number sequences or {"box": [...], "name": str}
    dicts, checked against a width x height page: numbers finite, x0 < x1, y0 < y1, the box inside
    [0, width] x [0, height]. Raises ValueError naming the bad box."""
    if isinstance(boxes, dict) or (isinstance(boxes, (list, tuple)) and len(boxes) == 4
                                   and all(isinstance(v, (int, float)) for v in boxes)):
        boxes = [boxes]  # one box
    if not isinstance(boxes, (list, tuple)) or not boxes:
        raise ValueError(f"boxes must be a non-empty list of (x0, y0, x1, y1) boxes, got {boxes!r}")
    out = []
    for i, b in enumerate(boxes):
        name = None
        if isinstance(b, dict):
            if "box" not in b:
                raise ValueError(f"box {i}: a dict box needs a 'box' entry [x0, y0, x1, y1], got keys {sorted(b)}")
            name = b.get("name")
            if name is not None and not isinstance(name, str):
                raise ValueError(f"box {i}: name must be a string, got {name!r}")
            b = b["box"]
        if not isinstance(b, (list, tuple, np.ndarray)) or len(b) != 4:
            raise ValueError(f"box {i}: expected 4 numbers (x0, y0, x1, y1), got {b!r}")
        try:
            x0, y0, x1, y1 = (float(v) for v in b)
        except (TypeError, ValueError):
            raise ValueError(f"box {i}: expected 4 numbers (x0, y0, x1, y1), got {b!r}") from None
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise ValueError(f"box {i}: coordinates must be finite, got {b!r}")
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"box {i}: needs x0 < x1 and y0 < y1, got {b!r}")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"box {i} {tuple(b)} lies outside the {width} x {height} page "
                             f"(boxes are (x0, y0, x1, y1) in pixels of the page image)")
        out.append(((int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)), int(math.ceil(y1))), name))
    return out


def _load_page(image, page: Optional[int], dpi: int):
    from .encoders.patches import to_gray

    if _is_image(image):
        return image
    if not isinstance(image, (str, os.PathLike)):
        raise TypeError(f"predict_regions: image must be a PIL image, a numpy array or a path, "
                        f"got {type(image).__name__}")
    path = os.fspath(image)
    if not os.path.exists(path):
        raise FileNotFoundError(f"predict_regions: no such file {path!r}")
    if path.lower().endswith(".pdf"):
        for n, img, error in iter_pdf(path, dpi, [page or 0]):
            if img is None:
                raise ValueError(f"predict_regions: {path}: {error}")
            return img
        raise ValueError(f"predict_regions: {path} has no page {(page or 0) + 1}")
    for _, _, img, error in iter_input_pages([path], dpi):
        if img is None:
            raise ValueError(f"predict_regions: {path}: {error}")
        to_gray(img)  # raises a clear error for an unusable image
        return img
    raise AssertionError("unreachable")


def predict_regions(image, boxes, engine: str = "tesseract", lang: str = "eng", *, model: ModelLike = None,
                    page: Optional[int] = None, dpi: Optional[int] = None) -> List[RegionPrediction]:
    """Predicted CER / WER of each box of one page (see the module docstring).

    image: PIL image, numpy array, image path, or PDF path (with `page`, 0-based, default 0,
      rendered at `dpi`, default the model's). boxes: see parse_boxes.
    -> one RegionPrediction per box, in order."""
    import torch

    from .encoders.patches import PatchFeatures, to_gray
    from .encoders.pooling import pool_features

    predictor = resolve_model(model, engine, lang)
    encoder = make_encoder(predictor.encoder_name, predictor.encoder_params)
    img = _load_page(image, page, int(dpi or model_dpi(predictor)))
    H, W = to_gray(img).shape
    parsed = parse_boxes(boxes, W, H)  # checked before the encoder runs, in the caller's pixels
    img, scale = at_model_dpi(img, model_dpi(predictor))
    if scale != 1.0:
        W, H = img.size  # at_model_dpi hands back a PIL image when it resamples
    pf = encoder.encode(img)
    rows, cols = pf.grid
    if pf.patch is None:  # a grid stretched over the page (ColPali): cell edges in pixels
        ys, xs = np.linspace(0, H, rows + 1), np.linspace(0, W, cols + 1)
    else:
        ys, xs = np.arange(rows + 1) * pf.patch, np.arange(cols + 1) * pf.patch
    n_page = pf.n_patches
    out: List[RegionPrediction] = []
    for (x0, y0, x1, y1), name in parsed:
        # The box on the (possibly resampled) page; the row reports it as given.
        r_sel = np.flatnonzero((ys[1:] > y0 * scale) & (ys[:-1] < y1 * scale))
        c_sel = np.flatnonzero((xs[1:] > x0 * scale) & (xs[:-1] < x1 * scale))
        idx = torch.from_numpy((r_sel[:, None] * cols + c_sel[None, :]).reshape(-1))
        content = pf.content[idx] if pf.content is not None else None
        n_content = int(content.sum()) if content is not None else int(idx.numel())
        if n_content == 0:
            out.append(RegionPrediction((x0, y0, x1, y1), name, None, None, "empty", int(idx.numel()), 0))
            continue
        sub = PatchFeatures(pf.features[idx].contiguous(), (1, int(idx.numel())), pf.patch, content)
        X = pool_features([sub], **predictor.pooling)
        if predictor.pooling.get("globals", True):
            X[:, -2] = float(np.log2(max(n_page, 1)))  # the page's resolution proxy, as the overlay does
        pred = predictor.predict(X)
        cer = float(pred["cer"][0])
        wer = float(pred["wer"][0]) if "wer" in pred else None
        out.append(RegionPrediction((x0, y0, x1, y1), name, cer, wer, verdict(cer), int(idx.numel()), n_content))
    return out
