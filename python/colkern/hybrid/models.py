"""The hybrid index's models and OCR engine, given as local directories, names or objects:
loaded (or used as they are) and checked before a build starts."""
from __future__ import annotations

import os
from typing import Any


def load_model(kind: str, value: Any, device=None):
    """(encoder, its directory or None) for a model given as a local directory or as an encoder
    object (used as is). kind: "colpali" | "siglip" | "text"."""
    if value is None:
        return None, None
    if not isinstance(value, (str, os.PathLike)):
        path = getattr(value, "path", None)
        return value, (os.path.abspath(path) if path else None)
    path = os.path.abspath(os.fspath(value))
    if kind == "colpali":
        from ..colpali.encoder import ColPaliEncoder

        return ColPaliEncoder.load(path, device=device), path
    if kind == "siglip":
        from ..siglip.encoder import SiglipEncoder

        return SiglipEncoder.load(path, device=device), path
    if kind == "text":
        from .text_route import TextEncoder

        return TextEncoder.load(path, device=device), path
    raise ValueError(f"load_model: unknown kind {kind!r}")


def check_model_paths(colpali, siglip, text_model) -> None:
    """Fails at once, naming the directory, for a model path that is not a usable local model."""
    from ..colpali.encoder import check_model_dir
    from ..siglip.encoder import check_siglip_dir
    from .text_route import check_text_model_dir

    for value, check in ((colpali, check_model_dir), (siglip, check_siglip_dir), (text_model, check_text_model_dir)):
        if isinstance(value, (str, os.PathLike)):
            check(value)


def resolve_ocr(ocr):
    """(engine or None, its name, whether we own it). ocr: None, an engine name for
    colkern.quality.get_engine ("tesseract", "rapidocr"), or an object with recognize()."""
    if ocr is None:
        return None, None, False
    if isinstance(ocr, str):
        from ..quality.ocr import get_engine

        try:
            engine = get_engine(ocr)
        except (RuntimeError, OSError) as e:  # OcrEngineError: a missing binary, language or model
            raise ValueError(f"ocr={ocr!r} cannot start: {e}") from e
        return engine, ocr, True
    if not callable(getattr(ocr, "recognize", None)):
        raise TypeError(f"ocr must be an engine name or an object with recognize(image, timeout=...), "
                        f"got {type(ocr).__name__}")
    return ocr, getattr(ocr, "name", type(ocr).__name__), False
