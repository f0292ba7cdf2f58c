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

import functools
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .._types import PathLike
from ._images import image_dpi
from .synth_text import (
    EN_BANKS,
    EN_CITIES,
    EN_COMPANIES,
    EN_FORM_FIELDS,
    EN_FORM_TITLES,
    EN_ITEMS,
    EN_SHOP_A,
    EN_SHOP_B,
    EN_WORDS,
    JA_BANKS,
    JA_BRANCHES,
    JA_COMPANIES,
    JA_FORM_FIELDS,
    JA_FORM_TITLES,
    JA_ITEMS,
    JA_SHOPS,
    JA_TOPICS,
    en_address,
    en_date,
    en_phone,
    en_sentence,
    form_value,
    ja_address,
    ja_date,
    ja_phone,
    ja_sentence,
    pick,
    yen,
)

__all__ = ["SourcePage", "generate_page", "pages_from_pdf", "LAYOUTS", "LANG_LAYOUTS", "LANGS", "FONTS"]

LAYOUTS = ("receipt", "form", "prose", "invoice", "vertical")
LANGS = ("eng", "jpn")
# The layouts each language is generated in (vertical writing is Japanese only).
LANG_LAYOUTS = {"eng": ("receipt", "form", "prose", "invoice"), "jpn": LAYOUTS}
# Small print: receipt shop names and registration lines at these sizes (points), whatever the
# body size; at 150 dpi a 6 pt kanji is 12 px tall, where OCR engines start to lose strokes.
SMALL_PRINT_PT = (6.0, 8.0)
# OCR settings a layout needs beyond the language (stored in SourcePage.meta["ocr"], applied by
# the data set builder): vertical Japanese is read by Tesseract's jpn_vert model as one
# vertical block.
LAYOUT_OCR = {"vertical": {"tesseract": {"lang": "jpn_vert", "psm": 5}}}
FONTS = {"eng": ("helv", "hebo", "tiro", "tibo", "cour", "cobo"), "jpn": ("japan",)}
FONT_SIZES = {"eng": (7, 14), "jpn": (8, 14)}
# Page sizes in PDF points (1/72 inch). Small pages keep Tesseract well under a second per page.
PAGE_SIZES = {"receipt": (227.0, 420.0), "form": (298.0, 420.0), "prose": (298.0, 420.0),
              "invoice": (298.0, 420.0), "vertical": (298.0, 420.0)}
MARGIN = 16.0
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


# ---------------------------------------------------------------------------------------------
# Layout: a list of drawn lines, each with its ground-truth text


@dataclass
class _Line:
    left: str                     # drawn at the left margin (or centred)
    right: str = ""               # drawn right-aligned
    size_scale: float = 1.0       # titles are larger
    centred: bool = False
    underline: bool = False       # a rule under the value of a form field
    value_x: float = 0.0          # where the underlined value starts (forms)


_NO_LINE_START = set("、。，．・：；？！」』）〕］｝〉》ー")


@functools.lru_cache(maxsize=None)
def _font(fontname: str):
    import pymupdf

    return pymupdf.Font(fontname)  # "japan" is a 4 MB font: load it once per process


class _Writer:
    """Measures and wraps text for one font; knows the usable width of the page."""

    def __init__(self, fontname: str, fontsize: float, width: float):
        self.font = _font(fontname)
        self.fontname, self.fontsize, self.width = fontname, fontsize, width

    def length(self, text: str, scale: float = 1.0) -> float:
        return self.font.text_length(text, fontsize=self.fontsize * scale)

    def wrap(self, text: str, cjk: bool) -> List[str]:
        """Greedy line breaking: at spaces for Latin text, between any characters for Japanese."""
        units = list(text) if cjk else text.split(" ")
        joiner = "" if cjk else " "
        lines, cur = [], ""
        for u in units:
            cand = u if not cur else cur + joiner + u
            # Kinsoku: closing punctuation never starts a line; it may overhang the margin.
            if cur and self.length(cand) > self.width and not (cjk and u in _NO_LINE_START):
                lines.append(cur)
                cur = u
            else:
                cur = cand
        if cur:
            lines.append(cur)
        return lines


def _receipt_lines(rng, w: _Writer, lang: str, max_lines: int, small: Optional[dict] = None) -> List[_Line]:
    lines: List[_Line] = []
    # Small print (drawn by generate_page from its own stream, so receipts without it are the
    # pages earlier versions generated): the shop name at 6-8 pt, a registration line at the end.
    small = small or {}
    shop_scale = small["shop_pt"] / w.fontsize if small.get("shop") else 1.3
    footer_small = bool(small.get("footer"))
    if lang == "eng":
        lines.append(_Line(f"{pick(rng, EN_SHOP_A)} {pick(rng, EN_SHOP_B)}", size_scale=shop_scale, centred=True))
        lines.append(_Line(en_address(rng), centred=True))
        lines.append(_Line(f"{pick(rng, EN_CITIES)}  Tel {en_phone(rng)}", centred=True))
        lines.append(_Line(f"{en_date(rng)}  {int(rng.integers(7, 22)):02d}:{int(rng.integers(0, 60)):02d}"))
    else:
        lines.append(_Line(f"{pick(rng, JA_SHOPS)} {pick(rng, JA_BRANCHES)}", size_scale=shop_scale, centred=True))
        lines.append(_Line(ja_address(rng), centred=True))
        lines.append(_Line(f"TEL {ja_phone(rng)}", centred=True))
        lines.append(_Line(f"{ja_date(rng)} {int(rng.integers(7, 22)):02d}:{int(rng.integers(0, 60)):02d}"))
    footer = 6 if footer_small else 5
    n_items = max(1, min(int(rng.integers(3, 16)), max_lines - len(lines) - footer))
    subtotal = 0
    for _ in range(n_items):
        cents = int(rng.integers(50, 5000))
        if lang == "eng":
            qty = int(rng.integers(1, 4))
            name = pick(rng, EN_ITEMS) + (f" x{qty}" if qty > 1 else "")
            cents *= qty
            lines.append(_Line(name, f"{cents / 100:.2f}"))
        else:
            cents = int(rng.integers(80, 3000))
            lines.append(_Line(pick(rng, JA_ITEMS), yen(cents)))
        subtotal += cents
    if lang == "eng":
        tax = int(round(subtotal * 0.08))
        paid = (subtotal + tax + 999) // 1000 * 1000
        lines += [_Line("Subtotal", f"{subtotal / 100:.2f}"), _Line("Tax 8%", f"{tax / 100:.2f}"),
                  _Line("TOTAL", f"{(subtotal + tax) / 100:.2f}"), _Line("Cash", f"{paid / 100:.2f}"),
                  _Line("Thank you for shopping!", centred=True)]
    else:
        tax = int(subtotal * 0.1)
        paid = (subtotal + tax + 999) // 1000 * 1000
        lines += [_Line("小計", yen(subtotal)), _Line("消費税(10%)", yen(tax)),
                  _Line("合計", yen(subtotal + tax)), _Line("お預り", yen(paid)),
                  _Line("ありがとうございました", centred=True)]
    if footer_small:
        scale = small["footer_pt"] / w.fontsize
        lines.append(_Line(small["footer_text"][lang], size_scale=scale, centred=True))
    return lines[:max_lines]


def _form_lines(rng, w: _Writer, lang: str, max_lines: int, small=None) -> List[_Line]:
    titles, fields = (EN_FORM_TITLES, EN_FORM_FIELDS) if lang == "eng" else (JA_FORM_TITLES, JA_FORM_FIELDS)
    lines = [_Line(pick(rng, titles), size_scale=1.4, centred=True), _Line("")]  # blank: room for the frame
    n = min(int(rng.integers(5, len(fields) + 1)), max_lines - 2)
    chosen = [fields[i] for i in sorted(rng.choice(len(fields), size=n, replace=False))]
    colon = ": " if lang == "eng" else "："
    label_w = max(w.length(f + colon) for f in chosen) + w.fontsize * 0.8
    for f in chosen:
        lines.append(_Line(f + colon, form_value(rng, f, lang), underline=True, value_x=label_w))
    return lines


def _prose_lines(rng, w: _Writer, lang: str, max_lines: int, small=None) -> List[_Line]:
    cjk = lang == "jpn"
    if cjk:
        title = f"{pick(rng, JA_TOPICS)}に関する{pick(rng, ('報告', 'お知らせ', '説明', '記録'))}"
    else:
        title = " ".join(pick(rng, EN_WORDS).capitalize() for _ in range(int(rng.integers(2, 6))))
    lines = [_Line(title, size_scale=1.3)]
    while len(lines) < max_lines:
        n_sent = int(rng.integers(2, 6))
        para = ("" if cjk else " ").join(ja_sentence(rng) if cjk else en_sentence(rng) for _ in range(n_sent))
        if cjk:
            para = "\u3000" + para  # ideographic-space paragraph indent, as Japanese prose does
        for ln in w.wrap(para, cjk):
            if len(lines) >= max_lines:
                break
            lines.append(_Line(ln))
        if len(lines) < max_lines:
            lines.append(_Line(""))  # blank line between paragraphs
    while lines and not lines[-1].left:
        lines.pop()
    return lines


def _invoice_lines(rng, w: _Writer, lang: str, max_lines: int, small=None) -> List[_Line]:
    small = float(rng.uniform(*SMALL_PRINT_PT)) / w.fontsize
    if lang == "eng":
        lines = [_Line("INVOICE", size_scale=1.5, centred=True),
                 _Line(f"Bill to: {pick(rng, EN_COMPANIES)}"),
                 _Line(f"Invoice no INV-{int(rng.integers(10000, 999999))}"),
                 _Line(f"Date {en_date(rng)}  Due {en_date(rng)}"),
                 _Line(f"{pick(rng, EN_COMPANIES)}, {en_address(rng)}"),
                 _Line(f"Company reg. {int(rng.integers(10**7, 10**8))} VAT {int(rng.integers(10**8, 10**9))}",
                       size_scale=small),
                 _Line("Description", "Qty  Price  Amount")]
    else:
        lines = [_Line("請求書", size_scale=1.5, centred=True),
                 _Line(f"{pick(rng, JA_COMPANIES)} 御中"),
                 _Line(f"請求番号 {int(rng.integers(10000, 999999))}"),
                 _Line(f"請求日 {ja_date(rng)}"),
                 _Line(f"{pick(rng, JA_COMPANIES)} {ja_address(rng)}"),
                 _Line(f"登録番号 T{int(rng.integers(10**12, 10**13))}", size_scale=small),
                 _Line("品名", "数量  単価  金額")]
    footer = 4
    n_items = max(1, min(int(rng.integers(3, 10)), max_lines - len(lines) - footer))
    subtotal = 0
    for _ in range(n_items):
        qty = int(rng.integers(1, 20))
        if lang == "eng":
            unit = int(rng.integers(100, 50000))
            subtotal += qty * unit
            lines.append(_Line(pick(rng, EN_ITEMS), f"{qty}  {unit / 100:,.2f}  {qty * unit / 100:,.2f}"))
        else:
            unit = int(rng.integers(50, 20000))
            subtotal += qty * unit
            lines.append(_Line(pick(rng, JA_ITEMS), f"{qty}  {unit:,}  {qty * unit:,}"))
    if lang == "eng":
        tax = int(round(subtotal * 0.1))
        lines += [_Line("Subtotal", f"{subtotal / 100:,.2f}"), _Line("Tax 10%", f"{tax / 100:,.2f}"),
                  _Line("Total due", f"{(subtotal + tax) / 100:,.2f}"),
                  _Line(f"Bank: {pick(rng, EN_BANKS)} account {int(rng.integers(10**7, 10**8))}")]
    else:
        tax = int(subtotal * 0.1)
        lines += [_Line("小計", yen(subtotal)), _Line("消費税(10%)", yen(tax)), _Line("合計", yen(subtotal + tax)),
                  _Line(f"振込先 {pick(rng, JA_BANKS)} 普通 {int(rng.integers(10**6, 10**7))}")]
    return lines[:max_lines]


# Vertical writing: the punctuation that sits in the upper right of its cell, and the marks
# drawn turned by 90 degrees (here: replaced by their vertical presentation forms).
_VERTICAL_PUNCT = set("、。，．")
_VERTICAL_FORMS = {"ー": "\ufe31", "「": "\ufe41", "」": "\ufe42", "（": "\ufe35", "）": "\ufe36",
                   "(": "\ufe35", ")": "\ufe36"}


def _vertical_columns(rng, font, fontsize: float, width: float, height: float) -> List[Tuple[str, float]]:
    """(column text, scale) right to left: a title column, then paragraphs wrapped into columns."""
    per_col = max(4, int((height - 2 * MARGIN) / (fontsize * 1.05)))
    n_cols = max(2, int((width - 2 * MARGIN) / (fontsize * 1.6)))
    title = f"{pick(rng, JA_TOPICS)}に関する{pick(rng, ('報告', 'お知らせ', '説明', '記録'))}"
    cols: List[Tuple[str, float]] = [(title[: int(per_col / 1.2)], 1.2)]
    while len(cols) < n_cols:
        para = "\u3000" + "".join(ja_sentence(rng) for _ in range(int(rng.integers(2, 5))))
        cur = ""
        for ch in para:
            if len(cur) >= per_col and ch not in _NO_LINE_START:
                cols.append((cur, 1.0))
                cur = ""
                if len(cols) >= n_cols:
                    break
            cur += ch
        if cur and len(cols) < n_cols:
            cols.append((cur, 1.0))
    return cols[:n_cols]


def _draw_vertical(page, tw, font, fontsize: float, width: float, height: float, cols) -> List[str]:
    """Draw the columns right to left, each top to bottom, one glyph per cell; -> the ground truth
    lines (one per column, NFKC of what was drawn)."""
    x = width - MARGIN
    truth = []
    for text, scale in cols:
        fs = fontsize * scale
        x -= fs * (1.6 if scale == 1.0 else 1.8)
        if x < MARGIN / 2:
            break
        y = MARGIN
        for ch in text:
            y += fs * 1.05
            if y > height - MARGIN:
                break
            glyph = _VERTICAL_FORMS.get(ch, ch)
            if ch == "\u3000":
                continue
            dx = dy = 0.0
            if ch in _VERTICAL_PUNCT:
                dx, dy = 0.55 * fs, -0.55 * fs  # upper right of the cell, as vertical type sets it
            elif ord(ch) < 0x3000:  # Latin / digits: centred in the cell
                dx = (fs - font.text_length(ch, fontsize=fs)) / 2
            tw.append((x + dx, y + dy), glyph, font=font, fontsize=fs)
        truth.append(text.replace("\u3000", ""))
    return truth


def _small_print(seed: int) -> dict:
    """The small-print choices of a receipt, from a stream of their own (see _receipt_lines)."""
    side = np.random.default_rng([int(seed), 0x5A11])
    return {"shop": bool(side.random() < 0.6), "shop_pt": round(float(side.uniform(*SMALL_PRINT_PT)), 2),
            "footer": bool(side.random() < 0.7), "footer_pt": round(float(side.uniform(*SMALL_PRINT_PT)), 2),
            "footer_text": {"eng": f"{pick(side, EN_COMPANIES)} VAT {int(side.integers(10**8, 10**9))}",
                            "jpn": f"{pick(side, JA_COMPANIES)} 登録番号 T{int(side.integers(10**12, 10**13))}"}}


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


def _fit_width(writer: _Writer, text: str, width: float, scale: float = 1.0) -> str:
    """`text` cut (at a word boundary when there is one) to fit in `width` points."""
    while text and writer.length(text, scale) > width:
        cut = text.rfind(" ")
        text = text[:cut] if cut > 0 else text[:-1]
    return text.rstrip(" ,、")
