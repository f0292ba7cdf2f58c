"""Source pages for OCR labels: generated documents with exact ground truth, or real pages + text.

    page = generate_page(7, lang="jpn", layout="receipt")      # deterministic in the seed
    page.image       # PIL "L" image rendered at page.dpi (image.info["dpi"] is set)
    page.text        # the text written on the page, one line per "\n", in reading order, NFKC
    pages = pages_from_pdf("scan.pdf", lang="eng")             # real PDFs with a text layer
    page = SourcePage.from_image_file("scan.png", text, lang="eng", source_id="scan-1")

Generated pages are drawn line by line with PyMuPDF (`page.insert_text`), so the ground truth is
exactly what was written, in the order a single-column reader (Tesseract --psm 6) reads it: top to
bottom, and left to right within a line (a receipt line "Milk 1L .... 2.49" is "Milk 1L 2.49").
Layouts:
  receipt  80 mm wide: shop name, address, date, item lines with right-aligned prices, totals;
  form     A6: a title and "label: value" fields, values underlined, the field group framed;
  prose    A6: a title and wrapped paragraphs.
Fonts: English uses the PDF base-14 fonts helv / hebo (bold), tiro / tibo, cour / cobo; Japanese
uses PyMuPDF's built-in CJK font "japan" (Droid Sans Fallback; it also draws Latin and digits).
Sizes 7-14 pt (Japanese 8-14 pt: below that the strokes of a kanji at 150 dpi merge). All text
comes from the built-in word lists below: nothing is downloaded, and one seed always gives the
same page.
"""
from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
from PIL import Image

__all__ = ["SourcePage", "generate_page", "pages_from_pdf", "LAYOUTS", "LANGS", "FONTS"]

LAYOUTS = ("receipt", "form", "prose")
LANGS = ("eng", "jpn")
FONTS = {"eng": ("helv", "hebo", "tiro", "tibo", "cour", "cobo"), "jpn": ("japan",)}
FONT_SIZES = {"eng": (7, 14), "jpn": (8, 14)}
# Page sizes in PDF points (1/72 inch). Small pages keep Tesseract well under a second per page.
PAGE_SIZES = {"receipt": (227.0, 420.0), "form": (298.0, 420.0), "prose": (298.0, 420.0)}
MARGIN = 16.0
LINE_SPACING = 1.4  # baseline-to-baseline distance as a multiple of the font size
# Forms get more room: each value is underlined, and a rule that touches the glyphs above it
# makes Tesseract's jpn model drop the whole line (a rendering artefact, not "image quality").
FORM_LINE_SPACING = 1.9
UNDERLINE_DROP = 0.45  # underline position below the baseline, in ems

PathLike = Union[str, "os.PathLike[str]"]


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
        if dpi is None and isinstance(image.info.get("dpi"), tuple):
            dpi = int(round(float(image.info["dpi"][0]))) or None
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
            yield SourcePage(_render(page, dpi), text, lang, f"{os.path.basename(path)}#p{n}", dpi,
                             {"file": os.path.abspath(path), "page": n})


def _render(page, dpi: int) -> Image.Image:
    import pymupdf

    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    image = Image.frombuffer("L", (pix.width, pix.height), bytes(pix.samples), "raw", "L", pix.stride, 1)
    image.info["dpi"] = (dpi, dpi)
    return image


# ---------------------------------------------------------------------------------------------
# Built-in text sources (deterministic, no downloads)

_EN_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there been one all we their has would when if so no will more out "
    "can who what time up some other into two could only new these may first then do any like my now "
    "over such our man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good very make world "
    "still own see men work long get here between both life being under never day same another know "
    "while last might us great old year off come since against go came right used take three states "
    "himself few house use during without again place around however home small found thought went say "
    "part once general high upon school every does got united left number course war until always away "
    "something fact though water less public put think almost hand enough far took head yet government "
    "system better set told nothing night end why called didn eyes find going look asked later knew point "
    "next program city business give group toward young days let room president side social given present "
    "several order national possible rather second face per among form important often things looked early "
    "white case john become large big need four within felt along children saw best church ever least "
    "power development light thing seemed family interest want members mind country area others done "
    "turned although open problem true century toward report market price office service account payment "
    "invoice customer total amount balance delivery order receipt quantity supplier contract schedule "
    "meeting project budget review quarter monthly annual support request approval document record"
).split()
_EN_FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
             "Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark "
             "Sandra Paul Ashley Steven Emily Andrew Donna Kevin Michelle Brian Carol George Amanda").split()
_EN_LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
            "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
            "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill").split()
_EN_STREETS = ("Maple Oak Pine Cedar Elm Washington Lake Hill Park Main Church Mill River Spring "
               "Sunset Highland Forest Meadow Ridge Valley").split()
_EN_STREET_TYPES = ("Street", "Avenue", "Road", "Lane", "Drive", "Court", "Boulevard", "Way")
_EN_CITIES = ("Springfield", "Riverside", "Fairview", "Madison", "Georgetown", "Franklin", "Clinton",
              "Salem", "Greenville", "Bristol", "Oxford", "Ashland", "Burlington", "Dover", "Milton")
_EN_SHOP_A = ("Green", "Corner", "Sunny", "Blue", "Golden", "Fresh", "Happy", "Urban", "Village", "Royal")
_EN_SHOP_B = ("Market", "Deli", "Grocer", "Bakery", "Cafe", "Pharmacy", "Foods", "Store", "Mart", "Kitchen")
_EN_ITEMS = ("Coffee beans 250g", "Whole milk 1L", "Sourdough bread", "Free range eggs", "Bananas",
             "Red apples 1kg", "Orange juice", "Greek yogurt", "Cheddar cheese", "Butter 250g",
             "Pasta 500g", "Tomato sauce", "Olive oil", "Chicken breast", "Ground beef", "Salmon fillet",
             "Brown rice 2kg", "Oat cereal", "Green tea", "Dark chocolate", "Paper towels", "Dish soap",
             "Toothpaste", "Shampoo", "Batteries AA", "Notebook A5", "Ballpoint pens", "Sparkling water",
             "Potato chips", "Frozen peas", "Carrots 1kg", "Onions", "Garlic", "Lemons", "Avocado",
             "Croissant", "Bagels 6pk", "Honey 350g", "Peanut butter", "Strawberry jam")
_EN_FORM_FIELDS = ("Full name", "Date of birth", "Address", "City", "Phone", "Account number",
                   "Customer ID", "Invoice no", "Date", "Amount due", "Payment method", "Reference",
                   "Department", "Employee no", "Start date", "Policy number", "Postal code", "Occupation")
_EN_FORM_TITLES = ("Application Form", "Customer Registration", "Payment Request", "Claim Form",
                   "Account Update", "Employee Details", "Order Form", "Change of Address")
_EN_PAYMENT = ("Cash", "Credit card", "Debit card", "Bank transfer", "Cheque")
_EN_OCCUPATIONS = ("Engineer", "Teacher", "Nurse", "Accountant", "Designer", "Technician", "Manager")

_JA_SURNAMES = "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 清水 山崎".split()
_JA_GIVEN = "太郎 花子 健一 美咲 翔太 陽子 大輔 由美 誠 恵子 直樹 真由美 拓也 愛 浩二 明美 修 裕子 隆 幸子".split()
_JA_PREFS = ("東京都新宿区", "東京都港区", "大阪府大阪市北区", "神奈川県横浜市中区", "愛知県名古屋市中区",
             "京都府京都市左京区", "福岡県福岡市博多区", "北海道札幌市中央区", "兵庫県神戸市中央区", "埼玉県さいたま市")
_JA_TOWNS = ("西新宿", "芝公園", "梅田", "山下町", "栄", "吉田本町", "博多駅前", "大通西", "三宮町", "高砂")
_JA_SHOPS = ("さくらストア", "まるやま商店", "ひかり書店", "青葉ベーカリー", "みどり薬局", "こだま食堂",
             "ふじ珈琲店", "あおぞらマート", "つばさ文具", "やまと酒店")
_JA_BRANCHES = ("新宿店", "渋谷店", "梅田店", "駅前店", "本店", "中央店", "北口店", "南口店")
_JA_ITEMS = ("牛乳", "食パン", "りんご", "バナナ", "卵", "豆腐", "納豆", "醤油", "味噌", "緑茶",
             "コーヒー", "弁当", "おにぎり", "鶏肉", "豚肉", "鮭", "白米", "うどん", "そば", "野菜ジュース",
             "ボールペン", "ノート", "電池", "洗剤", "歯ブラシ", "トマト", "玉ねぎ", "にんじん", "キャベツ", "チョコレート")
_JA_FORM_FIELDS = ("氏名", "フリガナ", "生年月日", "住所", "電話番号", "会社名", "部署", "申請日", "金額",
                   "支払方法", "社員番号", "郵便番号", "契約番号", "備考")
_JA_FORM_TITLES = ("申込書", "登録申請書", "経費精算書", "住所変更届", "請求書", "見積書", "注文書", "入会申込書")
_JA_KANA_NAMES = ("サトウ タロウ", "スズキ ハナコ", "タカハシ ケンイチ", "タナカ ミサキ", "イトウ ショウタ",
                  "ワタナベ ヨウコ", "ヤマモト ダイスケ", "ナカムラ ユミ")
_JA_DEPTS = ("営業部", "総務部", "経理部", "人事部", "開発部", "企画部", "製造部", "広報部")
_JA_PAYMENT = ("現金", "クレジットカード", "銀行振込", "電子マネー")
_JA_COMPANIES = ("株式会社山田製作所", "東和商事株式会社", "株式会社ひまわり", "日本電機工業株式会社",
                 "株式会社青空システム", "中央物産株式会社")
_JA_TIME = ("今日", "昨日", "明日", "今週", "先月", "来年", "毎朝", "週末", "午後", "夕方")
_JA_PEOPLE = ("私", "先生", "学生", "部長", "友人", "家族", "担当者", "お客様", "社員", "子供")
_JA_PLACES = ("会社", "学校", "駅", "図書館", "病院", "公園", "銀行", "会議室", "工場", "店")
_JA_OBJECTS = ("資料", "手紙", "報告書", "本", "新聞", "写真", "計画", "予算", "商品", "書類")
_JA_VERBS = ("を読みました", "を確認しました", "を送りました", "を準備します", "を作成しました",
             "を受け取りました", "を提出しました", "について話しました", "を調べています", "を届けました")
_JA_ADJ = ("新しい", "大切な", "簡単な", "難しい", "便利な", "静かな", "有名な", "重要な", "古い", "小さな")
_JA_TOPICS = ("天気", "会議", "予定", "結果", "問題", "方法", "経済", "環境", "技術", "文化")
_JA_STATES = ("とても良いです", "少し心配です", "まだ分かりません", "順調に進んでいます", "大きく変わりました",
              "予定通りです", "注目されています", "改善が必要です")


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _en_sentence(rng: np.random.Generator) -> str:
    n = int(rng.integers(6, 15))
    words = [_pick(rng, _EN_WORDS) for _ in range(n)]
    if rng.random() < 0.25:
        words.insert(int(rng.integers(1, n)), str(int(rng.integers(2, 2000))))
    if n > 8 and rng.random() < 0.4:
        k = int(rng.integers(3, n - 3))
        words[k] += ","
    words[0] = words[0].capitalize()
    return " ".join(words) + _pick(rng, (".", ".", ".", "?", "!"))


def _ja_sentence(rng: np.random.Generator) -> str:
    kind = int(rng.integers(4))
    if kind == 0:
        s = f"{_pick(rng, _JA_TIME)}、{_pick(rng, _JA_PEOPLE)}は{_pick(rng, _JA_PLACES)}で{_pick(rng, _JA_OBJECTS)}{_pick(rng, _JA_VERBS)}"
    elif kind == 1:
        s = f"{_pick(rng, _JA_TOPICS)}の{_pick(rng, _JA_TOPICS)}は{_pick(rng, _JA_STATES)}"
    elif kind == 2:
        s = f"{_pick(rng, _JA_PEOPLE)}が{_pick(rng, _JA_ADJ)}{_pick(rng, _JA_OBJECTS)}{_pick(rng, _JA_VERBS)}"
    else:
        s = f"{_pick(rng, _JA_PLACES)}の{_pick(rng, _JA_OBJECTS)}は{int(rng.integers(2, 99))}件あり、{_pick(rng, _JA_STATES)}"
    return s + "。"


def _en_name(rng):
    return f"{_pick(rng, _EN_FIRST)} {_pick(rng, _EN_LAST)}"


def _en_date(rng):
    return f"{int(rng.integers(2015, 2026))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"


def _en_address(rng):
    return f"{int(rng.integers(1, 9999))} {_pick(rng, _EN_STREETS)} {_pick(rng, _EN_STREET_TYPES)}"


def _en_phone(rng):
    return f"({int(rng.integers(200, 999))}) {int(rng.integers(200, 999))}-{int(rng.integers(0, 10000)):04d}"


def _ja_date(rng):
    return f"{int(rng.integers(2015, 2026))}年{int(rng.integers(1, 13))}月{int(rng.integers(1, 29))}日"


def _ja_phone(rng):
    return f"0{int(rng.integers(3, 99))}-{int(rng.integers(100, 9999))}-{int(rng.integers(0, 10000)):04d}"


def _ja_address(rng):
    return f"{_pick(rng, _JA_PREFS)}{_pick(rng, _JA_TOWNS)}{int(rng.integers(1, 9))}-{int(rng.integers(1, 30))}-{int(rng.integers(1, 20))}"


def _yen(value: int) -> str:
    return f"{value:,}円"


def _form_value(rng: np.random.Generator, label: str, lang: str) -> str:
    if lang == "eng":
        table = {
            "Full name": lambda: _en_name(rng), "Date of birth": lambda: _en_date(rng),
            "Address": lambda: _en_address(rng), "City": lambda: _pick(rng, _EN_CITIES),
            "Phone": lambda: _en_phone(rng), "Date": lambda: _en_date(rng),
            "Start date": lambda: _en_date(rng), "Amount due": lambda: f"${rng.integers(100, 500000) / 100:,.2f}",
            "Payment method": lambda: _pick(rng, _EN_PAYMENT), "Department": lambda: _pick(rng, _EN_SHOP_B),
            "Occupation": lambda: _pick(rng, _EN_OCCUPATIONS),
            "Postal code": lambda: f"{int(rng.integers(10000, 99999))}",
        }
        default = lambda: f"{_pick(rng, ('AC', 'INV', 'ID', 'PN', 'REF'))}-{int(rng.integers(100000, 9999999))}"
    else:
        table = {
            "氏名": lambda: f"{_pick(rng, _JA_SURNAMES)} {_pick(rng, _JA_GIVEN)}",
            "フリガナ": lambda: _pick(rng, _JA_KANA_NAMES), "生年月日": lambda: _ja_date(rng),
            "住所": lambda: _ja_address(rng), "電話番号": lambda: _ja_phone(rng),
            "会社名": lambda: _pick(rng, _JA_COMPANIES), "部署": lambda: _pick(rng, _JA_DEPTS),
            "申請日": lambda: _ja_date(rng), "金額": lambda: _yen(int(rng.integers(100, 500000))),
            "支払方法": lambda: _pick(rng, _JA_PAYMENT),
            "郵便番号": lambda: f"{int(rng.integers(100, 999))}-{int(rng.integers(0, 10000)):04d}",
            "備考": lambda: f"{_pick(rng, _JA_TOPICS)}について{_pick(rng, _JA_STATES)}",
        }
        default = lambda: f"{int(rng.integers(100000, 9999999))}"
    return table.get(label, default)()


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


def _receipt_lines(rng, w: _Writer, lang: str, max_lines: int) -> List[_Line]:
    lines: List[_Line] = []
    if lang == "eng":
        lines.append(_Line(f"{_pick(rng, _EN_SHOP_A)} {_pick(rng, _EN_SHOP_B)}", size_scale=1.3, centred=True))
        lines.append(_Line(_en_address(rng), centred=True))
        lines.append(_Line(f"{_pick(rng, _EN_CITIES)}  Tel {_en_phone(rng)}", centred=True))
        lines.append(_Line(f"{_en_date(rng)}  {int(rng.integers(7, 22)):02d}:{int(rng.integers(0, 60)):02d}"))
    else:
        lines.append(_Line(f"{_pick(rng, _JA_SHOPS)} {_pick(rng, _JA_BRANCHES)}", size_scale=1.3, centred=True))
        lines.append(_Line(_ja_address(rng), centred=True))
        lines.append(_Line(f"TEL {_ja_phone(rng)}", centred=True))
        lines.append(_Line(f"{_ja_date(rng)} {int(rng.integers(7, 22)):02d}:{int(rng.integers(0, 60)):02d}"))
    footer = 5
    n_items = max(1, min(int(rng.integers(3, 16)), max_lines - len(lines) - footer))
    subtotal = 0
    for _ in range(n_items):
        cents = int(rng.integers(50, 5000))
        if lang == "eng":
            qty = int(rng.integers(1, 4))
            name = _pick(rng, _EN_ITEMS) + (f" x{qty}" if qty > 1 else "")
            cents *= qty
            lines.append(_Line(name, f"{cents / 100:.2f}"))
        else:
            cents = int(rng.integers(80, 3000))
            lines.append(_Line(_pick(rng, _JA_ITEMS), _yen(cents)))
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
        lines += [_Line("小計", _yen(subtotal)), _Line("消費税(10%)", _yen(tax)),
                  _Line("合計", _yen(subtotal + tax)), _Line("お預り", _yen(paid)),
                  _Line("ありがとうございました", centred=True)]
    return lines[:max_lines]


def _form_lines(rng, w: _Writer, lang: str, max_lines: int) -> List[_Line]:
    titles, fields = (_EN_FORM_TITLES, _EN_FORM_FIELDS) if lang == "eng" else (_JA_FORM_TITLES, _JA_FORM_FIELDS)
    lines = [_Line(_pick(rng, titles), size_scale=1.4, centred=True), _Line("")]  # blank: room for the frame
    n = min(int(rng.integers(5, len(fields) + 1)), max_lines - 2)
    chosen = [fields[i] for i in sorted(rng.choice(len(fields), size=n, replace=False))]
    colon = ": " if lang == "eng" else "："
    label_w = max(w.length(f + colon) for f in chosen) + w.fontsize * 0.8
    for f in chosen:
        lines.append(_Line(f + colon, _form_value(rng, f, lang), underline=True, value_x=label_w))
    return lines


def _prose_lines(rng, w: _Writer, lang: str, max_lines: int) -> List[_Line]:
    cjk = lang == "jpn"
    if cjk:
        title = f"{_pick(rng, _JA_TOPICS)}に関する{_pick(rng, ('報告', 'お知らせ', '説明', '記録'))}"
    else:
        title = " ".join(_pick(rng, _EN_WORDS).capitalize() for _ in range(int(rng.integers(2, 6))))
    lines = [_Line(title, size_scale=1.3)]
    while len(lines) < max_lines:
        n_sent = int(rng.integers(2, 6))
        para = ("" if cjk else " ").join(_ja_sentence(rng) if cjk else _en_sentence(rng) for _ in range(n_sent))
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


def generate_page(seed: int, *, lang: Optional[str] = None, layout: Optional[str] = None,
                  font: Optional[str] = None, fontsize: Optional[float] = None, dpi: int = 150) -> SourcePage:
    """Generate one page; every argument left as None is drawn from `seed`.

    seed: non-negative int; the same arguments always give the same page (image and text).
    lang: "eng" | "jpn"; layout: "receipt" | "form" | "prose"; font: one of FONTS[lang];
    fontsize: points (FONT_SIZES[lang] is the drawn range); dpi: render resolution (72..600).
    -> SourcePage with a grey "L" image of the page at `dpi` and its ground truth; source_id
       "synth-<lang>-<layout>-<seed>"; meta holds every drawn choice.
    """
    import pymupdf

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"generate_page: seed must be a non-negative int, got {seed!r}")
    if not isinstance(dpi, (int, np.integer)) or not 72 <= dpi <= 600:
        raise ValueError(f"generate_page: dpi must be an int in 72..600, got {dpi!r}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    lang = lang or _pick(rng, LANGS)
    if lang not in LANGS:
        raise ValueError(f"generate_page: lang must be one of {LANGS}, got {lang!r}")
    layout = layout or _pick(rng, LAYOUTS)
    if layout not in LAYOUTS:
        raise ValueError(f"generate_page: layout must be one of {LAYOUTS}, got {layout!r}")
    font = font or _pick(rng, FONTS[lang])
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
    build = {"receipt": _receipt_lines, "form": _form_lines, "prose": _prose_lines}[layout]
    lines = build(rng, writer, lang, max_lines)

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
        image = _render(page, int(dpi))
    finally:
        doc.close()

    text = _clean_text("\n".join(truth))
    meta = {"generator": "colkern.quality.synth", "seed": int(seed), "layout": layout, "font": font,
            "fontsize": fontsize, "ink": round(ink, 4), "page_size_pt": [width, height]}
    return SourcePage(image, text, lang, f"synth-{lang}-{layout}-{int(seed)}", int(dpi), meta)


def _fit_width(writer: _Writer, text: str, width: float, scale: float = 1.0) -> str:
    """`text` cut (at a word boundary when there is one) to fit in `width` points."""
    while text and writer.length(text, scale) > width:
        cut = text.rfind(" ")
        text = text[:cut] if cut > 0 else text[:-1]
    return text.rstrip(" ,、")
