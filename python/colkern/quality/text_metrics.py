"""Character and word error rates of OCR output against ground truth, bounded to [0, 1].

    cer("invoice total", "invoice tota1")          # 1 substitution / 13 characters
    wer("invoice total", "invoice tota1")          # 1 substitution / 2 words = 0.5
    cer("東京都の天気", "東 京 都 の 天気", lang="jpn")  # 0.0: whitespace is ignored in Japanese

Both rates are a Levenshtein distance divided by the LONGER of the two sequences (not by the
reference length, the textbook definition): OCR that invents text (noise read as characters) makes
the textbook CER unbounded, and a regression target that can be 37.5 on one page and 0.2 on the
next is useless. With the longer length the rate is a true fraction of the aligned sequence:
0 = identical, 1 = nothing in common (or one side empty).

Normalisation, applied to both sides before counting (`normalize_text`):
  1. Unicode NFKC (full-width "：" and "１" become ":" and "1", ligatures are split);
  2. every run of whitespace (newlines included) becomes one space, ends are stripped, so line
     breaks and the column alignment of receipts never count as errors;
  3. Japanese / CJK text (lang "jpn" or "ja", or a reference that `is_cjk_text`): all whitespace is
     removed for the CER. Japanese has no word spaces, and Tesseract's jpn model emits a space
     between most characters ("東京 都 の 天気"), which would otherwise count as insertions.

WER tokens: whitespace-separated words. For CJK text, where there are no word separators, every
CJK character is one token and each run of other non-space characters (a number, a Latin word,
"03-1234-5678") is one token, so a misread price costs one token like it does in English.

Edge cases: empty reference and empty hypothesis give 0; exactly one side empty gives 1.
"""
from __future__ import annotations

import re
import unicodedata
from typing import List, Optional

from rapidfuzz.distance import Levenshtein

__all__ = ["METRIC_VERSION", "cer", "wer", "normalize_text", "is_cjk_text", "is_cjk_lang", "tokenize_words"]

# Bumped whenever normalisation or tokenisation changes, so stored labels can be told apart.
METRIC_VERSION = 1

_WS = re.compile(r"\s+")
# Han, Hiragana, Katakana (+ phonetic extensions, half-width forms), CJK symbols and punctuation,
# full-width forms, Hangul. Enough to decide "this is CJK text" and to split CJK tokens.
_CJK_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation (。、「」)
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half-width and full-width forms
    (0x20000, 0x2FA1F),  # supplementary ideographs
)
_CJK_LANGS = {"jpn", "ja", "japan", "jpn_vert", "chi_sim", "chi_tra", "zh", "ch", "kor", "ko"}
# A reference counts as CJK when at least this fraction of its non-space characters are CJK:
# Japanese receipts carry many digits and some Latin brand names.
_CJK_FRACTION = 0.3


def _is_cjk_char(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_cjk_lang(lang: Optional[str]) -> bool:
    """True for Japanese / Chinese / Korean language codes ("jpn", "ja", "jpn+eng", ...)."""
    if not lang:
        return False
    return any(part.strip().lower() in _CJK_LANGS for part in lang.split("+"))


def is_cjk_text(text: str) -> bool:
    """True when at least 30% of the non-space characters of `text` are CJK characters."""
    chars = [c for c in unicodedata.normalize("NFKC", text) if not c.isspace()]
    if not chars:
        return False
    return sum(_is_cjk_char(c) for c in chars) >= _CJK_FRACTION * len(chars)


def _use_cjk_rules(reference: str, lang: Optional[str]) -> bool:
    # Decided from the reference (the ground truth), never from the OCR output, so both sides of
    # one comparison always get the same rule.
    return is_cjk_lang(lang) if lang else is_cjk_text(reference)


def normalize_text(text: str, *, cjk: bool = False) -> str:
    """NFKC, whitespace runs -> one space, stripped; with cjk=True all whitespace is removed."""
    if not isinstance(text, str):
        raise TypeError(f"normalize_text: text must be str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    return _WS.sub("", text) if cjk else _WS.sub(" ", text).strip()


def tokenize_words(text: str, *, cjk: bool = False) -> List[str]:
    """Word tokens of normalised text: whitespace split; with cjk=True each CJK character is a
    token and each run of other non-space characters is a token."""
    text = unicodedata.normalize("NFKC", text)
    if not cjk:
        return text.split()
    tokens: List[str] = []
    for word in text.split():
        run = ""
        for ch in word:
            if _is_cjk_char(ch):
                if run:
                    tokens.append(run)
                    run = ""
                tokens.append(ch)
            else:
                run += ch
        if run:
            tokens.append(run)
    return tokens


def _bounded_rate(ref, hyp) -> float:
    longer = max(len(ref), len(hyp))
    if longer == 0:
        return 0.0
    return Levenshtein.distance(ref, hyp) / longer


def cer(reference: str, hypothesis: str, *, lang: Optional[str] = None) -> float:
    """Character error rate in [0, 1]: edit distance / max(len(ref), len(hyp)) after normalisation.

    lang: the page language ("eng", "jpn", ...); None decides CJK rules from the reference text.
    """
    cjk = _use_cjk_rules(reference, lang)
    return _bounded_rate(normalize_text(reference, cjk=cjk), normalize_text(hypothesis, cjk=cjk))


def wer(reference: str, hypothesis: str, *, lang: Optional[str] = None) -> float:
    """Word error rate in [0, 1]: token edit distance / max(#ref tokens, #hyp tokens).

    Tokens as in `tokenize_words` (CJK characters count one token each).
    """
    cjk = _use_cjk_rules(reference, lang)
    return _bounded_rate(tokenize_words(reference, cjk=cjk), tokenize_words(hypothesis, cjk=cjk))
