"""OCR quality prediction: real OCR labels (CER / WER) on generated and degraded pages.

Submodules: ocr (engines, labels), metrics (bounded CER / WER), synth (source pages),
degrade (seeded degradations), dataset (build / load the on-disk data set). Names are imported
lazily, so `import colkern.quality` stays cheap until one is used.
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "OcrEngine": "ocr", "OcrResult": "ocr", "OcrLabel": "ocr", "OcrEngineError": "ocr",
    "TesseractEngine": "ocr", "RapidOcrEngine": "ocr", "get_engine": "ocr", "available_engines": "ocr",
    "label_page": "ocr",
    "cer": "metrics", "wer": "metrics", "normalize_text": "metrics",
    "SourcePage": "synth", "generate_page": "synth", "pages_from_pdf": "synth",
    "degrade": "degrade", "apply_steps": "degrade", "sample_recipe": "degrade",
    "build_dataset": "dataset", "load_dataset": "dataset", "Dataset": "dataset", "Sample": "dataset",
    "BuildReport": "dataset", "DatasetError": "dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
