"""Patch encoders: page images -> per-patch features (PatchFeatures) -> one pooled vector per page.

    GlyphPatchEncoder      connected components of the binarised page (the default: what an OCR
                           engine sees after binarisation); glyph.py
    PixelPatchEncoder      intensity, gradient, noise and JPEG statistics of the raw pixels; pixel.py
    PPOCRPatchEncoder      the fused feature map of RapidOCR's pretrained PP-OCR text detector
                           (ONNX, an intermediate output exposed in memory); ppocr.py
    LinePatchEncoder       text-line direction (skew, bending) and paper lighting (shadows
                           against a global threshold); lines.py
    SkewPatchEncoder       page and tile skew of the text lines by projection profile, as OCR
                           engines deskew; skew.py
    BorderPatchEncoder     dark bands along the page's edges (a scanner lid, the desk beyond a
                           photographed page); border.py
    ConcatPatchEncoder     several encoders' features side by side on one grid; combined.py
    ColPaliFeatureEncoder  ColPali's projection or hidden states of each image patch; colpali.py
    pool_features / page_features   [mean | max | std] pooling into page vectors; pooling.py
    PatchFeatures / to_gray         what every encoder produces and accepts; patches.py
    TiledPatchEncoder               the square-grid encoders' shared grid, names, repr and
                                    encode_many; tiled.py

An encoder has `name`, `has_content_mask`, `params()` (JSON-able, stored in a model file),
`feature_names()`, `encode(image)` and `encode_many(images)`. Names load on first use, so importing
this package does not import OpenCV.
"""
from ..._lazy import lazy_getattr

_LAZY = {
    "ColPaliFeatureEncoder": (".colpali", "ColPaliFeatureEncoder"),
    **{name: (".combined", name) for name in ("ConcatPatchEncoder", "concat_patch_features")},
    **{name: (".ppocr", name) for name in ("PPOCRPatchEncoder", "PPOCR_PROB_FEATURES")},
    **{name: (".glyph", name) for name in ("GLYPH_FEATURES", "GlyphPatchEncoder")},
    **{name: (".lines", name) for name in ("LINE_FEATURES", "LinePatchEncoder")},
    **{name: (".patches", name) for name in ("ImageLike", "PatchFeatures", "to_gray")},
    **{name: (".pixel", name) for name in ("PIXEL_FEATURES", "PixelPatchEncoder")},
    **{name: (".skew", name) for name in ("SKEW_FEATURES", "SkewPatchEncoder")},
    **{name: (".border", name) for name in ("BORDER_FEATURES", "BorderPatchEncoder")},
    **{name: (".pooling", name) for name in ("GLOBAL_FEATURES", "POOL_STATS", "global_features", "page_features",
                                             "pool_features", "pooled_feature_names")},
}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = list(_LAZY)
