"""Documents in: PDF rendering (pages, tiles), text-free image extraction with the junk-image
filter, and per-file / per-page failures. Shared by the ColPali layer and the OCR-quality layer
(PyMuPDF loads on first use)."""
from .._lazy import lazy_getattr

_NAMES = ("ExtractedImage", "FileFailure", "PageFailure", "PdfError", "PdfWarning", "RenderedPage", "Tile",
          "collect_pdfs", "extract_images", "is_junk_image", "iter_pdf_pages", "render_open_page", "render_page_image",
          "render_pdf",
          "split_tiles", "tile_boxes", "tile_grid")
__getattr__ = lazy_getattr(__name__, {name: (".pdf", name) for name in _NAMES})

__all__ = list(_NAMES)
