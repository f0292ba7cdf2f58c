"""The ColPali layer: page and query encoding over colpali-engine, the colpali-engine drop-in,
PDF page indexing and search, similarity heatmaps, and the `colkern index` / `search` commands.

Importing it does not import colpali-engine, transformers, PIL or PyMuPDF: the scoring drop-in is
plain torch, everything else loads on first use.
"""
from .._lazy import lazy_getattr
from .engine import (
                     ColPaliEnginePatch,
                     is_colpali_engine_patched,
                     patch_colpali_engine,
                     score_multi_vector,
                     unpatch_colpali_engine,
)

_LAZY = {
    **{name: (".encoder", name) for name in ("ColPaliEncoder", "PageEmbedding", "check_model_dir")},
    **{name: (".heatmap", name) for name in ("aggregate", "overlay_heatmap", "save_heatmap",
                                             "save_token_heatmaps", "similarity_maps")},
    **{name: ("._torchvision_compat", name) for name in ("apply_torchvision_shim", "import_colpali_engine")},
    **{name: (".indexing", name) for name in ("IndexingReport", "PageHit", "index_pdfs", "page_id",
                                              "parse_page_id", "save_page_heatmap", "search_pages")},
}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = ["ColPaliEnginePatch", "is_colpali_engine_patched", "patch_colpali_engine", "score_multi_vector",
           "unpatch_colpali_engine", *_LAZY]
