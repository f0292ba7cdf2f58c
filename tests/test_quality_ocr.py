"""OCR labels: bounded CER / WER, Japanese whitespace, real Tesseract (and RapidOCR) with timeouts."""
import re
import shutil
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colkern.quality.degrade import apply_steps
from colkern.quality.ocr import (
    OcrEngineError,
    OcrLabel,
    RapidOcrEngine,
    TesseractEngine,
    available_engines,
    get_engine,
    label_page,
)
from colkern.quality.synth import generate_page
from colkern.quality.text_metrics import cer, normalize_text, tokenize_words, wer

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract binary not installed")


# ---------------------------------------------------------------------------------------------
# Metrics


def test_cer_one_substitution_in_ten_chars():
    ref = "abcdefghij"
    hyp = ref[:9] + "X"
    assert cer(ref, hyp) == pytest.approx(1 / len(ref))


def test_wer_one_wrong_word_in_four():
    assert wer("the quick brown fox", "the quick brown box") == pytest.approx(1 / 4)
    assert wer("the quick brown fox", "the quick brown fox") == 0.0


def test_rates_divide_by_the_longer_string():
    # One insertion: the textbook CER would be 1/3; bounded by the longer string it is 1/4.
    assert cer("abc", "abcd") == pytest.approx(1 / 4)
    # Invented text: 50 characters of OCR noise for a 2-character reference.
    assert cer("ab", "x" * 50) == pytest.approx(50 / 50)
    assert wer("total", "a b c d e f") == pytest.approx(6 / 6)


def test_empty_strings():
    assert cer("", "") == 0.0 and wer("", "") == 0.0
    assert cer("", "noise") == 1.0 and wer("", "noise") == 1.0
    assert cer("text", "") == 1.0 and wer("text", "") == 1.0
    assert cer("   \n", " ") == 0.0  # whitespace only normalises to empty


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=120))
def test_rates_stay_in_unit_interval(ref, hyp):
    for lang in (None, "eng", "jpn"):
        assert 0.0 <= cer(ref, hyp, lang=lang) <= 1.0
        assert 0.0 <= wer(ref, hyp, lang=lang) <= 1.0
    assert cer(ref, ref) == 0.0 and wer(ref, ref) == 0.0


def test_normalisation_nfkc_and_whitespace():
    assert normalize_text("  Hello \n\t world  ") == "Hello world"
    assert cer("Hello world", "Hello   world\n") == 0.0
    assert cer("ABC123:", "ＡＢＣ１２３：") == 0.0  # full-width forms fold under NFKC
    assert normalize_text("東 京\n都", cjk=True) == "東京都"


def test_japanese_ignores_whitespace():
    ref, tess = "東京都の天気は晴れです。", "東京 都 の 天 気 は 晴れ で す 。"
    assert cer(ref, tess, lang="jpn") == 0.0
    assert cer(ref, tess) == 0.0  # detected as CJK from the reference
    assert cer(ref, tess, lang="eng") > 0.2  # with English rules the spaces count as insertions
    # One wrong kanji among 12 characters, whatever the spacing.
    assert cer(ref, "東京都の天気は晴れで寸。".replace("", " "), lang="jpn") == pytest.approx(1 / 12)


def test_japanese_wer_tokens():
    assert tokenize_words("合計 1,280円", cjk=True) == ["合", "計", "1,280", "円"]
    # One misread price among 4 tokens, one token like in English.
    assert wer("合計 1,280円", "合 計 1.280 円", lang="jpn") == pytest.approx(1 / 4)
    assert wer("東京都", "東京部", lang="jpn") == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------------
# Engines


def test_registry():
    assert set(available_engines()) >= {"tesseract", "rapidocr"}
    with pytest.raises(ValueError, match="unknown engine 'abbyy'"):
        get_engine("abbyy")


@pytest.mark.ocr
@needs_tesseract
def test_tesseract_rejects_bad_settings():
    with pytest.raises(OcrEngineError, match="not installed"):
        TesseractEngine("xyz")
    with pytest.raises(ValueError, match="psm"):
        TesseractEngine("eng", psm=42)
    with pytest.raises(OcrEngineError, match="not found"):
        TesseractEngine("eng", binary="no-such-tesseract-binary")
    with pytest.raises(ValueError, match="timeout"):
        TesseractEngine("eng").recognize(generate_page(0).image, timeout=0)
    with pytest.raises(TypeError, match="PIL"):
        TesseractEngine("eng").recognize("page.png", timeout=5)


@pytest.fixture(scope="module")
def eng_page():
    return generate_page(3, lang="eng", layout="prose", font="helv", fontsize=11)


@pytest.mark.ocr
@needs_tesseract
def test_tesseract_reads_clean_page_and_degraded_is_worse(eng_page):
    engine = get_engine("tesseract", lang="eng", psm=4)
    clean = label_page(engine, eng_page.image, eng_page.text, timeout=30)
    assert not clean.timed_out and clean.error is None
    assert clean.cer < 0.1, clean.text
    noisy, _ = apply_steps(eng_page.image, [("blur", 1.0), ("noise", 0.8)], seed=0)
    bad = label_page(engine, noisy, eng_page.text, timeout=30)
    assert bad.cer > clean.cer + 0.3


@pytest.mark.ocr
@needs_tesseract
def test_label_records_engine_version_and_config(eng_page):
    engine = TesseractEngine("jpn", psm=4)
    assert re.fullmatch(r"\d+\.\d+[\w.\-]*", engine.version)
    label = label_page(engine, eng_page.image, eng_page.text, timeout=30)
    assert (label.engine, label.version, label.lang) == ("tesseract", engine.version, "jpn")
    assert label.config["psm"] == 4 and label.config["oem"] == 1 and label.config["lang"] == "jpn"
    assert label.config["dpi"] == eng_page.dpi == 150  # taken from the image
    assert label.seconds > 0 and label.text
    back = OcrLabel.from_dict(label.to_dict())
    assert back == label
    bad = label.to_dict()
    bad["cer"] = 3.5
    with pytest.raises(ValueError, match="cer"):
        OcrLabel.from_dict(bad)


@pytest.mark.ocr
@needs_tesseract
def test_tesseract_timeout_is_total_failure(eng_page):
    engine = TesseractEngine("eng")
    start = time.perf_counter()
    result = engine.recognize(eng_page.image, timeout=0.001)
    assert time.perf_counter() - start < 5.0
    assert result.timed_out and result.text == "" and result.error is None
    label = label_page(engine, eng_page.image, eng_page.text, timeout=0.001)
    assert label.timed_out and label.cer == 1.0 and label.wer == 1.0


@pytest.fixture(scope="module")
def rapid():
    try:
        engine = RapidOcrEngine("eng", start_timeout=60)
        engine._start()  # pay the start-up here so the tests time only recognition
    except OcrEngineError as e:
        pytest.skip(f"RapidOCR does not start on this machine: {e}")
    yield engine
    engine.close()


@pytest.mark.ocr
def test_rapidocr_reads_clean_page(rapid, eng_page):
    label = label_page(rapid, eng_page.image, eng_page.text, timeout=60)
    assert (label.engine, label.config["det"]) == ("rapidocr", "PP-OCRv6_det_small")
    assert not label.timed_out and label.error is None
    assert label.cer < 0.1, label.text


@pytest.mark.ocr
def test_rapidocr_timeout_does_not_hang(rapid, eng_page):
    start = time.perf_counter()
    result = rapid.recognize(eng_page.image, timeout=0.001)
    assert time.perf_counter() - start < 10.0
    assert result.timed_out and result.text == ""
    assert rapid._proc is None  # the busy worker was killed; the next call starts a new one
