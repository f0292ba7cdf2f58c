"""Japanese pages: generated receipts with small print, invoices and vertical text; labels from the
real Tesseract (jpn, jpn_vert) on known strings; the builder applies a layout's OCR settings."""
import shutil

import numpy as np
import pytest

pytest.importorskip("pymupdf")

from colkern.quality import synth_layouts  # noqa: E402
from colkern.quality.synth import generate_page  # noqa: E402
from colkern.quality.text_metrics import cer, wer  # noqa: E402


def _tesseract_langs():
    if shutil.which("tesseract") is None:
        return set()
    from colkern.quality.ocr import _tesseract_info

    return set(_tesseract_info(shutil.which("tesseract"))[1])


needs_jpn = pytest.mark.skipif("jpn" not in _tesseract_langs(), reason="needs tesseract-ocr-jpn")
needs_vert = pytest.mark.skipif("jpn_vert" not in _tesseract_langs(), reason="needs tesseract-ocr-jpn-vert")


def test_japanese_metrics_on_known_strings():
    # Tesseract spaces Japanese characters out: not an error; NFKC folds full-width digits.
    assert cer("合計 1,234円", "合 計 １,２３４ 円", lang="jpn") == 0.0
    assert cer("さくらストア 新宿店", "さくらストア 新宿庄", lang="jpn") == pytest.approx(1 / 9)  # spaces removed
    assert wer("東京都の天気", "東京都の天氣", lang="jpn") == pytest.approx(1 / 6)
    assert wer("TEL 03-1234-5678", "TEL 03-1234-5679", lang="jpn") == pytest.approx(1 / 2)


@pytest.mark.parametrize("layout", ["invoice", "vertical"])
def test_new_japanese_layouts(layout):
    a, b = generate_page(7, lang="jpn", layout=layout, dpi=100), generate_page(7, lang="jpn", layout=layout, dpi=100)
    assert a.text == b.text and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.meta["layout"] == layout and len(a.text.splitlines()) >= 5
    if layout == "vertical":
        assert a.meta["ocr"] == {"tesseract": {"lang": "jpn_vert", "psm": 5}}
        # columns are narrow and tall: far more rows of ink than a line of horizontal text
        ink = np.asarray(a.image) < 128
        assert ink.any(axis=1).mean() > 0.7
    else:
        assert a.text.startswith("請求書") and "登録番号 T" in a.text and "合計" in a.text


def test_receipt_small_print():
    p = generate_page(9103, lang="jpn", layout="receipt", small_print=True)
    sp = p.meta["small_print"]
    lo, hi = synth_layouts.SMALL_PRINT_PT
    assert sp["shop"] and sp["footer"] and lo <= sp["shop_pt"] <= hi and lo <= sp["footer_pt"] <= hi
    assert "登録番号 T" in p.text.splitlines()[-1]
    plain = generate_page(9103, lang="jpn", layout="receipt", small_print=False)
    assert plain.meta["small_print"] == {"shop": False, "footer": False} and "登録番号" not in plain.text
    with pytest.raises(ValueError, match="layout for lang 'eng'"):
        generate_page(1, lang="eng", layout="vertical")


def test_english_sample_pages_are_the_earlier_ones():
    """small_print=False reproduces the receipts earlier versions generated (the sample PDF's
    English receipt page is unchanged)."""
    import pymupdf

    from colkern.quality.degrade import apply_steps
    from colkern.quality.sample import DPI, PAGES, sample_pdf_path

    i = next(k for k, p in enumerate(PAGES) if p[1] == "receipt" and p[3] == "eng")
    seed, layout, steps, lang = PAGES[i]
    img, _ = apply_steps(generate_page(seed, lang=lang, layout=layout, dpi=DPI, small_print=False).image, steps,
                         seed=seed)
    with pymupdf.open(sample_pdf_path()) as doc:
        pix = doc[i].get_pixmap(dpi=DPI, colorspace=pymupdf.csGRAY)
        assert np.array_equal(np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width), np.asarray(img))


@pytest.mark.ocr
@needs_jpn
def test_tesseract_jpn_labels_on_known_strings():
    from colkern.quality.ocr import get_engine, label_page

    engine = get_engine("tesseract", lang="jpn", psm=4)
    page = generate_page(3, lang="jpn", layout="form", dpi=150)
    label = label_page(engine, page.image, page.text, timeout=60)
    assert label.lang == "jpn" and label.config["lang"] == "jpn" and label.cer < 0.05, label.text
    # the same page read against a wrong reference: the label says so
    wrong = label_page(engine, page.image, "まったく別の文章です。", timeout=60)
    assert wrong.cer > 0.8


@pytest.mark.ocr
@needs_vert
def test_vertical_pages_are_labelled_with_jpn_vert(tmp_path):
    from colkern.quality.dataset import build_dataset, load_dataset

    root = tmp_path / "vert"
    build_dataset(root, n_sources=1, variants_per_source=1, engines=("tesseract",), langs="jpn",
                  layouts=("vertical",), dpi=150, seed=3, workers=0, progress=False, steer=False)
    (s,) = load_dataset(root)
    lab = s.labels["tesseract"]
    assert s.source["layout"] == "vertical" and lab.config["lang"] == "jpn_vert" and lab.config["psm"] == 5
    assert lab.lang == "jpn"  # the metric rules follow the page language
    clean = generate_page(s.source["seed"], lang="jpn", layout="vertical", dpi=150)
    from colkern.quality.ocr import get_engine

    text = get_engine("tesseract", lang="jpn_vert", psm=5).recognize(clean.image, timeout=60).text
    assert cer(clean.text, text, lang="jpn") < 0.05, text
