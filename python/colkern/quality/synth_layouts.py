"""The generated pages' layouts: each layout writes a list of lines (text plus how it is drawn),
measured and wrapped with the page's font, whose ground truth is exactly the text drawn.
colkern.quality.synth.generate_page draws these lines on a PyMuPDF page and renders it.

Receipts, forms, prose and invoices are horizontal lines (`_Line`); vertical Japanese is columns
written right to left (`_vertical_columns`, drawn by `_draw_vertical`). Small print on receipts
comes from a random stream of its own (`_small_print`), so the rest of a receipt is the same page
with or without it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

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

# Small print: receipt shop names and registration lines at these sizes (points), whatever the
# body size; at 150 dpi a 6 pt kanji is 12 px tall, where OCR engines start to lose strokes.
SMALL_PRINT_PT = (6.0, 8.0)
MARGIN = 16.0


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


def _fit_width(writer: _Writer, text: str, width: float, scale: float = 1.0) -> str:
    """`text` cut (at a word boundary when there is one) to fit in `width` points."""
    while text and writer.length(text, scale) > width:
        cut = text.rfind(" ")
        text = text[:cut] if cut > 0 else text[:-1]
    return text.rstrip(" ,、")
