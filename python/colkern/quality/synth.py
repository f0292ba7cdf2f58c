"""Source pages for OCR labels: generated documents with exact ground truth, or real pages + text.

    page = generate_page(7, lang="jpn", layout="receipt")      # deterministic in the seed
    page.image       # PIL "L" image rendered at page.dpi (image.info["dpi"] is set)
    page.text        # the text written on the page, one line per "\n", in reading order, NFKC
    pages = pages_from_pdf("scan.pdf", lang="eng")             # real PDFs with a text layer
    page = SourcePage.from_image_file("scan.png", text, lang="eng", source_id="scan-1")

Generated pages are drawn line by line with PyMuPDF (a TextWriter), so the ground truth is
exactly what was written, in the order a single-column reader (Tesseract --psm 6) reads it: top to
bottom, and left to right within a line (a receipt line "Milk 1L .... 2.49" is "Milk 1L 2.49").
Layouts:
  receipt  80 mm wide: shop name, address, date, item lines with right-aligned prices, totals;
           half of them print the shop name small (6-8 pt, as real receipts often do) and most
           end with a small-print line (the operating company and its registration number);
  form     A6: a title and "label: value" fields, values underlined, the field group framed;
  prose    A6: a title and wrapped paragraphs;
  invoice  A6: title, client, number, dates, issuer with a small-print registration number, an
           item table (name, quantity, unit price, amount), totals and bank details;
  vertical A6, Japanese only: prose written in vertical columns (tategaki), right to left. The
           ground truth has one line per column, right to left; these pages carry the Tesseract
           settings that read vertical text (`jpn_vert`, --psm 5) in meta["ocr"].
Fonts: English uses the PDF base-14 fonts helv / hebo (bold), tiro / tibo, cour / cobo; Japanese
uses PyMuPDF's built-in CJK font "japan" (Droid Sans Fallback; it also draws Latin and digits).
Sizes 7-14 pt (Japanese 8-14 pt: below that the strokes of a kanji at 150 dpi merge). All text
comes from the built-in word lists of colkern.quality.synth_text: nothing is downloaded, and one
seed always gives the same page. Pages are rendered by colkern.documents.pdf.
"""
from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np
from PIL import Image

from .._types import PathLike
from ._images import image_dpi
from .synth_layouts import (
    MARGIN,
    _draw_vertical,
    _fit_width,
    _form_lines,
    _invoice_lines,
    _prose_lines,
    _receipt_lines,
    _small_print,
    _vertical_columns,
    _Writer,
)
from .synth_text import (
    pick,
)

__all__ = ["SourcePage", "generate_page", "pages_from_pdf", "LAYOUTS", "LANG_LAYOUTS", "LANGS", "FONTS"]

LAYOUTS = ("receipt", "form", "prose", "invoice", "vertical")
LANGS = ("eng", "jpn")
# The layouts each language is generated in (vertical writing is Japanese only).
LANG_LAYOUTS = {"eng": ("receipt", "form", "prose", "invoice"), "jpn": LAYOUTS}
# OCR settings a layout needs beyond the language (stored in SourcePage.meta["ocr"], applied by
# the data set builder): vertical Japanese is read by Tesseract's jpn_vert model as one
# vertical block.
LAYOUT_OCR = {"vertical": {"tesseract": {"lang": "jpn_vert", "psm": 5}}}
FONTS = {"eng": ("helv", "hebo", "tiro", "tibo", "cour", "cobo"), "jpn": ("japan",)}
FONT_SIZES = {"eng": (7, 14), "jpn": (8, 14)}
# Page sizes in PDF points (1/72 inch). Small pages keep Tesseract well under a second per page.
PAGE_SIZES = {"receipt": (227.0, 420.0), "form": (298.0, 420.0), "prose": (298.0, 420.0),
              "invoice": (298.0, 420.0), "vertical": (298.0, 420.0)}
LINE_SPACING = 1.4  # baseline-to-baseline distance as a multiple of the font size
# Forms get more room: each value is underlined, and a rule that touches the glyphs above it
# makes Tesseract's jpn model drop the whole line (a rendering artefact, not "image quality").
FORM_LINE_SPACING = 1.9
UNDERLINE_DROP = 0.45  # underline position below the baseline, in ems


@dataclass
class SourcePage:
    """One clean page and its ground truth.

    image: PIL image (any mode; generated pages are "L"), the clean page;
    text: ground-truth text in reading order (lines separated by "\n");
    lang: "eng" or "jpn" (Tesseract-style codes, also used by the metrics);
    source_id: unique id of the source document page; all degraded variants of it share it, and
      grouped cross-validation keeps them in one fold;
    dpi: resolution the image was rendered / scanned at, or None if unknown;
    meta: provenance (layout, font, size, seed, file name, ...), JSON-serialisable.
    """

    image: Image.Image
    text: str
    lang: str
    source_id: str
    dpi: Optional[int] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.image, Image.Image):
            raise TypeError(f"SourcePage: image must be a PIL.Image.Image, got {type(self.image).__name__}")
        if self.image.width < 1 or self.image.height < 1:
            raise ValueError(f"SourcePage {self.source_id!r}: image is empty")
        if not isinstance(self.text, str):
            raise TypeError(f"SourcePage {self.source_id!r}: text must be str, got {type(self.text).__name__}")
        if self.lang not in LANGS:
            raise ValueError(f"SourcePage {self.source_id!r}: lang must be one of {LANGS}, got {self.lang!r}")
        if not isinstance(self.source_id, str) or not self.source_id:
            raise ValueError(f"SourcePage: source_id must be a non-empty string, got {self.source_id!r}")
        if self.dpi is not None:
            self.image.info["dpi"] = (self.dpi, self.dpi)

    @classmethod
    def from_image_file(cls, path: PathLike, text: str, *, lang: str, source_id: Optional[str] = None,
                        dpi: Optional[int] = None) -> "SourcePage":
        """A scanned / photographed page with its transcription. dpi defaults to the file's own."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SourcePage.from_image_file: no such file {path!r}")
        with Image.open(path) as im:
            im.load()
            image = im.copy()
        if dpi is None:
            dpi = image_dpi(image)
        return cls(image, _clean_text(text), lang, source_id or os.path.basename(path), dpi,
                   {"file": os.path.abspath(path)})


def _clean_text(text: str) -> str:
    lines = unicodedata.normalize("NFKC", text).splitlines()
    return "\n".join(ln.rstrip() for ln in lines if ln.strip())


def pages_from_pdf(path: PathLike, *, lang: str, dpi: int = 150, pages: Optional[Sequence[int]] = None,
                   min_chars: int = 20) -> Iterator[SourcePage]:
    """Render the pages of a real PDF and take the ground truth from its text layer.

    The text comes from PyMuPDF's `get_text(sort=True)` (blocks sorted top-left to bottom-right),
    which matches a single-column reader; pages with fewer than `min_chars` characters of text
    (scans without a text layer, blank pages) are skipped. source_id is "<file name>#p<n>" (0-based).
    """
    import pymupdf

    from ..documents.pdf import render_open_page

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pages_from_pdf: no such file {path!r}")
    try:
        doc = pymupdf.open(path)
    except Exception as e:
        raise ValueError(f"pages_from_pdf: cannot open {path!r} as a PDF: {e}") from e
    with doc:
        indices = range(doc.page_count) if pages is None else pages
        for n in indices:
            if not 0 <= n < doc.page_count:
                raise ValueError(f"pages_from_pdf: page {n} out of range for {path!r} ({doc.page_count} pages)")
            page = doc[n]
            text = _clean_text(page.get_text("text", sort=True))
            if len(text) < min_chars:
                continue
            yield SourcePage(render_open_page(page, dpi, gray=True), text, lang, f"{os.path.basename(path)}#p{n}", dpi,
                             {"file": os.path.abspath(path), "page": n})


def generate_page(seed: int, *, lang: Optional[str] = None, layout: Optional[str] = None,
                  font: Optional[str] = None, fontsize: Optional[float] = None, dpi: int = 150,
                  small_print: Optional[bool] = None) -> SourcePage:
    """Generate one page; every argument left as None is drawn from `seed`.

    seed: non-negative int; the same arguments always give the same page (image and text).
    lang: "eng" | "jpn"; layout: one of LANG_LAYOUTS[lang]; font: one of FONTS[lang];
    fontsize: points (FONT_SIZES[lang] is the drawn range); dpi: render resolution (72..600).
    small_print: receipts only: None draws it (60% of receipts print the shop name at 6-8 pt, 70%
      end with a 6-8 pt registration line), False gives the receipt without small print (the
      page earlier versions generated for the seed), True draws sizes but prints both small.
    -> SourcePage with a grey "L" image of the page at `dpi` and its ground truth; source_id
       "synth-<lang>-<layout>-<seed>"; meta holds every drawn choice.
    """
    import pymupdf

    from ..documents.pdf import render_open_page

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"generate_page: seed must be a non-negative int, got {seed!r}")
    if not isinstance(dpi, (int, np.integer)) or not 72 <= dpi <= 600:
        raise ValueError(f"generate_page: dpi must be an int in 72..600, got {dpi!r}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    lang = lang or pick(rng, LANGS)
    if lang not in LANGS:
        raise ValueError(f"generate_page: lang must be one of {LANGS}, got {lang!r}")
    layout = layout or pick(rng, LANG_LAYOUTS[lang])
    if layout not in LANG_LAYOUTS[lang]:
        raise ValueError(f"generate_page: layout for lang {lang!r} must be one of {LANG_LAYOUTS[lang]}, "
                         f"got {layout!r}")
    font = font or pick(rng, FONTS[lang])
    if font not in FONTS[lang]:
        raise ValueError(f"generate_page: font for lang {lang!r} must be one of {FONTS[lang]}, got {font!r}")
    lo, hi = FONT_SIZES[lang]
    fontsize = float(fontsize) if fontsize is not None else float(rng.integers(lo, hi + 1))
    if not 4 <= fontsize <= 40:
        raise ValueError(f"generate_page: fontsize must be in 4..40 pt, got {fontsize!r}")
    ink = float(rng.uniform(0.0, 0.25))  # near-black text, a little variety in stroke darkness

    width, height = PAGE_SIZES[layout]
    writer = _Writer(font, fontsize, width - 2 * MARGIN)
    spacing = FORM_LINE_SPACING if layout == "form" else LINE_SPACING
    step = fontsize * spacing
    max_lines = max(1, int((height - 2 * MARGIN) / step) - 1)  # -1: titles are taller
    if layout == "vertical":
        columns = _vertical_columns(rng, writer.font, fontsize, width, height)
        lines = []
    else:
        build = {"receipt": _receipt_lines, "form": _form_lines, "prose": _prose_lines,
                 "invoice": _invoice_lines}[layout]
        small = None
        if layout == "receipt" and small_print is not False:
            small = _small_print(seed)
            if small_print:
                small["shop"] = small["footer"] = True
        lines = build(rng, writer, lang, max_lines, small)

    doc = pymupdf.open()
    try:
        page = doc.new_page(width=width, height=height)
        color = (ink, ink, ink)
        # TextWriter draws with the Font object's own metrics, so what `writer.length` measures is
        # what lands on the page (insert_text(fontname="japan") gives every glyph a 1-em advance).
        tw = pymupdf.TextWriter(page.rect, color=color)
        y = MARGIN
        truth: List[str] = []
        last_y = y
        if layout == "vertical":
            truth = _draw_vertical(page, tw, writer.font, fontsize, width, height, columns)
        for ln in lines:
            scale = ln.size_scale
            y += step * scale
            if y > height - MARGIN:
                break
            last_y = y
            left, right = ln.left, ln.right
            x_right = width - MARGIN
            if ln.underline:
                right = _fit_width(writer, right, writer.width - ln.value_x)
            elif right:
                # Keep at least one em between the item text and the right-aligned price.
                left = _fit_width(writer, left, writer.width - writer.length(right) - fontsize)
            else:
                left = _fit_width(writer, left, writer.width, scale)
            if not left and not right:
                continue
            x = (width - writer.length(left, scale)) / 2 if ln.centred else MARGIN
            tw.append((x, y), left, font=writer.font, fontsize=fontsize * scale)
            if ln.underline:
                vx = MARGIN + ln.value_x
                if right:
                    tw.append((vx, y), right, font=writer.font, fontsize=fontsize)
                rule_y = y + fontsize * UNDERLINE_DROP
                page.draw_line((vx, rule_y), (x_right, rule_y), color=color, width=0.5)
            elif right:
                tw.append((x_right - writer.length(right), y), right, font=writer.font, fontsize=fontsize)
            truth.append(f"{left} {right}".strip() if right else left)
        if any(ln.underline for ln in lines):  # the frame around the field group of a form
            top = min(i for i, ln in enumerate(lines) if ln.underline)
            # baseline of the first field minus one line: inside the blank line below the title
            first_y = MARGIN + sum(step * ln.size_scale for ln in lines[:top + 1])
            page.draw_rect(pymupdf.Rect(MARGIN / 2, first_y - fontsize * 1.4, width - MARGIN / 2,
                                        last_y + fontsize * 1.0), color=color, width=0.8)
        tw.write_text(page)
        image = render_open_page(page, int(dpi), gray=True)
    finally:
        doc.close()

    text = _clean_text("\n".join(truth))
    meta = {"generator": "colkern.quality.synth", "seed": int(seed), "layout": layout, "font": font,
            "fontsize": fontsize, "ink": round(ink, 4), "page_size_pt": [width, height]}
    if layout in LAYOUT_OCR:
        meta["ocr"] = LAYOUT_OCR[layout]
    if layout == "receipt":
        meta["small_print"] = {k: v for k, v in (small or {"shop": False, "footer": False}).items()
                               if k != "footer_text"}
    return SourcePage(image, text, lang, f"synth-{lang}-{layout}-{int(seed)}", int(dpi), meta)
