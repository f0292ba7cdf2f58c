"""The images of a PDF for the SigLIP route: colkern.documents.extract_images (decoding, the
junk-image filter) plus where each image sits on its page.

    for im in iter_pdf_images("manual.pdf"):
        im.file, im.page, im.bbox, im.image       # bbox in PDF points, origin top left

Junk (icons, rules, logos: under 5 KB stored, shorter side under 32 px, or an aspect ratio over
8, see colkern.documents.is_junk_image) is dropped before decoding; keep_junk=True yields it with
junk=True. An image is yielded once, on the first page that shows it, with the first place it is
drawn there (page.get_image_rects); an image that is listed on a page but never drawn gets the
whole page as its box.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Tuple

from .._types import PathLike

BBox = Tuple[float, float, float, float]


@dataclass(frozen=True)
class PdfImage:
    """An embedded raster image, decoded to RGB, with file, 0-based page, bbox on the page
    (PDF points), its PDF object number (xref), pixel size and stored size in bytes."""

    file: str
    page: int
    bbox: BBox
    xref: int
    width: int
    height: int
    nbytes: int
    image: object  # PIL.Image.Image
    junk: bool = False


def iter_pdf_images(path: PathLike, *, keep_junk: bool = False, **junk_thresholds) -> Iterator[PdfImage]:
    """Images of one PDF with their boxes (see the module doc). junk_thresholds: min_bytes,
    min_side, max_aspect (colkern.documents.extract_images). Opens the file at call time:
    FileNotFoundError / PdfError as colkern.documents.render_pdf; undecodable images are
    skipped with a PdfWarning."""
    import pymupdf

    from ..documents.pdf import extract_images

    file = os.fspath(path)
    images = extract_images(file, keep_junk=keep_junk, **junk_thresholds)  # checks the file first
    doc = pymupdf.open(file, filetype="pdf")
    return _with_boxes(images, doc, file)


def _with_boxes(images, doc, file: str) -> Iterator[PdfImage]:
    try:
        for im in images:
            page = doc.load_page(im.page)
            rects = [r for r in page.get_image_rects(im.xref) if not r.is_empty]
            box = rects[0] if rects else page.rect
            bbox = tuple(round(float(v), 2) for v in (box.x0, box.y0, box.x1, box.y1))
            yield PdfImage(file, im.page, bbox, im.xref, im.width, im.height, im.nbytes, im.image, im.junk)
    finally:
        doc.close()
