"""The OCR quality data set: degraded page images with real OCR labels, built resumably and stored
one file per sample.

    report = build_dataset("data/ocrq", n_sources=200, variants_per_source=8,
                           engines=("tesseract",), langs={"eng": 0.6, "jpn": 0.4}, seed=0)
    ds = load_dataset("data/ocrq")
    y, groups = ds.targets("tesseract"), ds.groups()     # for GROUPED k-fold (one source = one group)

build.py builds (and resumes) it, steer.py aims each variant's severity at a target CER,
store.py is the format on disk and loading. Names load on first use.
"""
from ..._lazy import lazy_getattr

_LAZY = {
    **{name: (".build", name) for name in ("BuildReport", "DEFAULT_ENGINE_OPTIONS", "build_dataset",
                                           "cer_histogram")},
    **{name: (".steer", name) for name in ("PRIOR_KNEE", "choose_severity", "variant_target")},
    **{name: (".store", name) for name in ("FORMAT_VERSION", "Dataset", "DatasetError", "Sample", "load_dataset")},
}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = list(_LAZY)
