"""OCR quality prediction: how well will an OCR engine read this page (CER / WER), learnt from real
OCR labels on generated and degraded pages.

    rows = predict(["scan.pdf", "receipt.png", pil_image], engine="tesseract", lang="jpn")
    rows[0].file, rows[0].page, rows[0].cer, rows[0].wer, rows[0].verdict    # one row per page
    predict_regions(page_image, [(x0, y0, x1, y1), ...])     # predicted CER of boxes of a page

Modules, from the labels up:
    ocr, text_metrics     OCR engines (Tesseract, RapidOCR) and the bounded CER / WER they are scored by
    synth, degrade        generated source pages with exact ground truth; seeded degradations
    capture               how a scanner or phone camera moves and lights a page (skew, shadow, ...)
    dataset/              build (resumable), steer (target CERs), store (the format on disk, loading)
    encoders/             page images -> patch features (glyph, pixel, ColPali) -> pooled page vectors
    model, model_format   QualityPredictor (LightGBM per target) and its .colq file
    stats, report, verdict  metrics, grouped folds, bootstrap intervals; CV reports; good / fair / poor
    pipeline, overlay     data set -> trained model -> predictions on files; per-patch quality maps
    resolution            a page's declared or implied DPI, and the page brought to the model's
    api                   predict / predict_regions: the one-call API over the shipped models
    sample, cli           the bundled demo PDF; `colkern quality ...`

Names load on first use: `import colkern.quality` imports neither LightGBM, OpenCV nor PyMuPDF.
"""
from .._lazy import lazy_getattr

# The module degrade.py and its function share the name `degrade`. Loading a submodule sets the
# package attribute of that name to the module, so a lazy `degrade` would turn into the module once
# anything imported colkern.quality.degrade; bound here, before that can happen, it stays the
# function (a submodule already loaded is not set again). It costs numpy and PIL, not more.
from .degrade import degrade as degrade

_MODULES = {
    ".ocr": ("OcrEngine", "OcrEngineError", "OcrLabel", "OcrResult", "RapidOcrEngine", "TesseractEngine",
             "available_engines", "get_engine", "label_page"),
    ".text_metrics": ("cer", "normalize_text", "wer"),
    ".synth": ("SourcePage", "generate_page", "pages_from_pdf"),
    ".degrade": ("apply_steps", "sample_recipe"),
    ".dataset": ("BuildReport", "Dataset", "DatasetError", "Sample", "build_dataset", "load_dataset"),
    ".encoders": ("ColPaliFeatureEncoder", "ConcatPatchEncoder", "GlyphPatchEncoder", "PatchFeatures",
                  "PixelPatchEncoder", "PPOCRPatchEncoder", "page_features", "pool_features",
                  "pooled_feature_names"),
    ".model": ("QualityPredictor", "fit_isotonic"),
    ".model_format": ("ModelFormatError",),
    ".stats": ("MetricCI", "bootstrap_metrics", "group_kfold", "mae", "pearson", "roc_auc", "spearman"),
    ".report": ("CVReport", "TargetReport", "save_scatter"),
    ".verdict": ("VERDICT_THRESHOLDS", "verdict"),
    ".pipeline": ("Evaluation", "PagePrediction", "dataset_features", "evaluate_predictor", "load_model",
                  "make_encoder", "predict_files", "shipped_model_path", "shipped_models", "train_predictor"),
    ".api": ("RegionPrediction", "predict", "predict_regions"),
    ".overlay": ("overlay_image", "patch_quality_map", "save_overlay", "window_features"),
    ".sample": ("sample_pdf_path",),
}
_LAZY = {name: (module, name) for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = sorted(["degrade", *_LAZY])
