"""The hybrid multimodal index: ColPali for pages whose layout carries meaning, a dense text
embedding (e.g. all-MiniLM-L6-v2) for the text layer, SigLIP for natural images, and one query
over all three with the rankings fused.

    index = HybridIndex.build(["docs/"], "docs.hybrid", colpali=..., siglip=..., text_model=...)
    hits = HybridIndex.open("docs.hybrid").search("wiring diagram", k=10)   # kind, file, page, bbox, score

Modules, one job each:
    router      which pages get ColPali (PageRouter, page_features): the rule and its thresholds
    text_route  text-layer chunks and the sentence-transformers encoder (TextEncoder)
    images      a PDF's images with their boxes, after the junk-image filter
    fusion      reciprocal rank fusion and score-normalised fusion
    build       PDFs -> the three sub-indexes (BuildReport)
    store       the index directory on disk
    index       HybridIndex: open, search, heatmaps
    evaluate    Recall@k / nDCG@k per route and fused
    cli         `colkern index --hybrid`, `colkern search` on a hybrid index
    sample      the bundled sample manual (data/manual.pdf) of the demo

Importing it loads neither PyMuPDF, transformers nor sentence-transformers.
"""
from .._lazy import lazy_getattr

_MODULES = {
    ".router": ("PageFeatures", "PageRouter", "RouteDecision", "page_features"),
    ".text_route": ("TextChunk", "TextEncoder", "check_text_model_dir", "chunk_blocks", "chunk_page"),
    ".images": ("PdfImage", "iter_pdf_images"),
    ".fusion": ("fuse", "normalize_scores", "reciprocal_rank_fusion", "score_fusion"),
    ".build": ("BuildReport",),
    ".store": ("HybridIndexError", "is_hybrid_dir"),
    ".index": ("HybridHit", "HybridIndex"),
    ".evaluate": ("evaluate_hybrid", "route_runs"),
}
_LAZY = {name: (module, name) for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = sorted(_LAZY)
