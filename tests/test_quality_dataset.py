"""Source pages, degradations, severity steering and the on-disk OCR quality data set."""
import json
import os
import shutil
import unicodedata

import numpy as np
import pytest
from PIL import Image

from colkern.quality import synth, synth_layouts
from colkern.quality.capture import CAPTURE_KINDS, CAPTURE_OPS, sample_capture
from colkern.quality.dataset import (
    DatasetError,
    build_dataset,
    cer_histogram,
    choose_severity,
    load_dataset,
    variant_target,
)
from colkern.quality.degrade import OPS, STRONG_OPS, apply_steps, degrade, region_mask, sample_recipe, sample_region
from colkern.quality.synth import SourcePage, generate_page

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract binary not installed")


# ---------------------------------------------------------------------------------------------
# Source pages


def test_generate_page_is_deterministic():
    a, b = generate_page(11), generate_page(11)
    assert a.text == b.text and a.source_id == b.source_id and a.meta == b.meta
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    c = generate_page(12)
    assert c.text != a.text


@pytest.mark.parametrize("lang", ["eng", "jpn"])
@pytest.mark.parametrize("layout", ["receipt", "form", "prose"])
def test_generate_page_layouts(lang, layout):
    page = generate_page(5, lang=lang, layout=layout, dpi=100)
    assert page.lang == lang and page.meta["layout"] == layout and page.dpi == 100
    assert page.image.mode == "L" and page.image.info["dpi"] == (100, 100)
    w_pt, h_pt = synth.PAGE_SIZES[layout]
    assert abs(page.image.width - w_pt * 100 / 72) <= 1 and abs(page.image.height - h_pt * 100 / 72) <= 1
    assert len(page.text.splitlines()) >= 4
    assert page.text == unicodedata.normalize("NFKC", page.text)
    pixels = np.asarray(page.image)
    assert pixels.min() < 100 and np.median(pixels) == 255  # dark text on white paper
    if lang == "jpn":
        assert any("\u3040" <= ch <= "\u9fff" for ch in page.text)
    else:
        assert page.text.isascii()


def test_japanese_word_lists_have_glyphs():
    font = synth_layouts._font("japan")
    text = "".join(generate_page(s, lang="jpn").text for s in range(12))
    missing = sorted({ch for ch in text if not ch.isspace() and not font.has_glyph(ord(ch))})
    assert missing == []


def test_generate_page_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lang"):
        generate_page(1, lang="fra")
    with pytest.raises(ValueError, match="layout"):
        generate_page(1, layout="poster")
    with pytest.raises(ValueError, match="seed"):
        generate_page(-1)
    with pytest.raises(ValueError, match="font"):
        generate_page(1, lang="jpn", font="helv")


def test_source_page_from_image_file(tmp_path):
    path = tmp_path / "scan.png"
    generate_page(2, lang="eng", layout="prose").image.save(path, dpi=(150, 150))
    page = SourcePage.from_image_file(path, "Ｈello\n\n world  \n", lang="eng", source_id="scan-1")
    assert page.text == "Hello\n world" and page.dpi == 150 and page.source_id == "scan-1"
    with pytest.raises(FileNotFoundError):
        SourcePage.from_image_file(tmp_path / "nope.png", "x", lang="eng")
    with pytest.raises(ValueError, match="lang"):
        SourcePage(page.image, "x", "fra", "s")


def test_pages_from_pdf(tmp_path):
    import pymupdf

    path = tmp_path / "doc.pdf"
    doc = pymupdf.open()
    doc.new_page(width=300, height=200).insert_text((20, 40), "Invoice 42 total 17.50 paid in full", fontsize=11)
    doc.new_page(width=300, height=200)  # blank: skipped
    doc.save(path)
    doc.close()
    pages = list(synth.pages_from_pdf(path, lang="eng", dpi=100))
    assert len(pages) == 1
    page = pages[0]
    assert page.text == "Invoice 42 total 17.50 paid in full" and page.source_id == "doc.pdf#p0"
    assert page.image.size == (417, 278) and page.dpi == 100
    with pytest.raises(ValueError, match="out of range"):
        list(synth.pages_from_pdf(path, lang="eng", pages=[5]))
    with pytest.raises(FileNotFoundError):
        list(synth.pages_from_pdf(tmp_path / "none.pdf", lang="eng"))


# ---------------------------------------------------------------------------------------------
# Degradations


@pytest.fixture(scope="module")
def clean():
    return generate_page(4, lang="eng", layout="receipt", dpi=100).image


@pytest.mark.parametrize("op", OPS)
def test_each_op_changes_pixels_deterministically(clean, op):
    a, rec = apply_steps(clean, [(op, 0.7)], seed=3)
    b, _ = apply_steps(clean, [(op, 0.7)], seed=3)
    assert a.size == clean.size and a.mode == clean.mode and a.info["dpi"] == clean.info["dpi"]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(clean))
    assert rec[0]["op"] == op and rec[0]["severity"] == 0.7 and rec[0]["params"]


def test_severity_zero_is_identity_and_params_grow(clean):
    same, rec = apply_steps(clean, [("blur", 0.0), ("noise", 0.0)], seed=0)
    assert rec == [] and np.array_equal(np.asarray(same), np.asarray(clean))
    sigmas = [apply_steps(clean, [("blur", s)], seed=0)[1][0]["params"]["sigma_px"] for s in (0.2, 0.5, 0.9)]
    assert sigmas == sorted(sigmas) and sigmas[0] < sigmas[-1]
    # Pixel sizes scale with the DPI: at 100 dpi the blur is 100/150 of the 150-dpi blur.
    hi = clean.copy()
    hi.info["dpi"] = (150, 150)
    assert apply_steps(hi, [("blur", 0.5)], seed=0)[1][0]["params"]["sigma_px"] == pytest.approx(sigmas[1] * 1.5, rel=1e-3)


def test_degrade_rejects_bad_input(clean):
    with pytest.raises(ValueError, match="unknown op 'smudge'"):
        apply_steps(clean, [("smudge", 0.5)], seed=0)
    with pytest.raises(ValueError, match="severity"):
        apply_steps(clean, [("blur", 1.5)], seed=0)
    with pytest.raises(ValueError, match="mode"):
        apply_steps(clean.convert("RGBA"), [("blur", 0.5)], seed=0)


def test_recipes_and_regions(clean):
    for k in range(30):
        recipe = sample_recipe(k, max_ops=3)
        assert 1 <= len(recipe) <= 3 and any(op in STRONG_OPS and w == 1.0 for op, w in recipe)
        assert [op for op, _ in recipe] == [op for op in OPS if op in dict(recipe)]
    ramp = {"kind": "ramp", "angle": 0.0, "band": 0.2}  # a front moving left to right
    m = region_mask(ramp, clean.size, 0.4)  # front at 0.4 * 1.2 = 0.48 of the width
    assert m.shape == (clean.height, clean.width)
    assert m[:, : int(0.28 * clean.width)].min() == 1 and m[:, int(0.49 * clean.width):].max() == 0
    assert region_mask(ramp, clean.size, 1.0).min() == 1  # severity 1 covers the page
    img, _ = degrade(clean, (("noise", 1.0),), 0.4, seed=1, region=ramp)
    a, c = np.asarray(img), np.asarray(clean)
    right = slice(int(0.5 * clean.width), None)
    assert np.array_equal(a[:, right], c[:, right]) and not np.array_equal(a[:, :20], c[:, :20])
    assert {sample_region(k)["kind"] for k in range(40)} == {"full", "ramp", "blob"}


@pytest.mark.parametrize("op", CAPTURE_OPS)
def test_each_capture_op_is_deterministic_and_grows(clean, op):
    a, rec = apply_steps(clean, [(op, 0.7)], seed=3)
    b, _ = apply_steps(clean, [(op, 0.7)], seed=3)
    assert a.size == clean.size and a.mode == clean.mode and a.info["dpi"] == clean.info["dpi"]
    assert np.array_equal(np.asarray(a), np.asarray(b)) and rec[0]["op"] == op and rec[0]["params"]
    c = np.asarray(clean, dtype=np.float64)
    diffs = [np.abs(np.asarray(apply_steps(clean, [(op, s)], seed=3)[0], dtype=np.float64) - c).mean()
             for s in (0.2, 0.6, 1.0)]
    # More severity moves more pixels (not strictly in between for the ops that move lines: a row
    # shifted by about a line pitch lands on ink again).
    assert 0 < diffs[0] < diffs[2] and (op in ("warp", "skew") or diffs[1] < diffs[2])
    rgb, _ = apply_steps(clean.convert("RGB"), [(op, 0.7)], seed=3)
    assert rgb.mode == "RGB" and rgb.size == clean.size


def test_capture_geometry(clean):
    """The ops do what their names say: a skew rotates by the recorded angle (the ink's principal
    axis turns with it), a perspective puts the desk around the page, a shadow only darkens."""
    page = Image.new("L", (400, 300), 255)
    page.paste(0, (50, 145, 350, 155))                     # one horizontal bar
    out, rec = apply_steps(page, [("skew", 0.5)], seed=1)
    ys, xs = np.nonzero(np.asarray(out) < 128)
    slope = np.polyfit(xs, ys, 1)[0]
    assert np.degrees(np.arctan(-slope)) == pytest.approx(rec[0]["params"]["angle_deg"], abs=0.3)
    assert abs(rec[0]["params"]["angle_deg"]) == pytest.approx(4.0)
    out, rec = apply_steps(clean, [("perspective", 1.0)], seed=2)
    a = np.asarray(out)
    assert a[0, 0] == int(rec[0]["params"]["desk"]) and a[-1, -1] == int(rec[0]["params"]["desk"])
    dark, _ = apply_steps(clean, [("shadow", 1.0)], seed=4)
    assert (np.asarray(dark) <= np.asarray(clean)).all() and np.asarray(dark).mean() < np.asarray(clean).mean() - 10


def test_scanner_ops_do_what_they_say(clean):
    """Faded ink is lighter and spread ink darker, tinted paper darkens the paper but not the ink
    much, bleed-through darkens only where the mirrored page has ink, the border is dark at an
    edge, a binarized page has two levels."""
    c = np.asarray(clean, dtype=np.float64)
    ink = c < 100
    modes = {}
    for seed in range(8):
        out, rec = apply_steps(clean, [("ink", 1.0)], seed=seed)
        modes[rec[0]["params"]["mode"]] = np.asarray(out, dtype=np.float64)[ink].mean()
    assert set(modes) == {"fade", "spread"} and modes["fade"] > c[ink].mean() + 20 and modes["spread"] <= c[ink].mean()
    out, rec = apply_steps(clean, [("paper", 1.0)], seed=1)
    a = np.asarray(out, dtype=np.float64)
    paper = c > 250
    assert a[paper].mean() < c[paper].mean() - 30 and a[ink].mean() - c[ink].mean() < 15
    out, rec = apply_steps(clean, [("bleed_through", 1.0)], seed=1)
    a = np.asarray(out, dtype=np.float64)
    assert (a <= c + 0.5).all() and a.mean() < c.mean() - 0.5
    dx, dy = rec[0]["params"]["shift_px"]
    verso_ink = np.roll(c[:, ::-1], (dy, dx), axis=(0, 1)) < 100
    untouched = ~_dilate(verso_ink, 12)
    assert np.abs(a - c)[untouched].mean() < 0.2 < np.abs(a - c)[~untouched].mean()
    out, rec = apply_steps(clean, [("border", 1.0)], seed=2)
    a = np.asarray(out)
    strip = {"left": a[:, :3], "right": a[:, -3:], "top": a[:3], "bottom": a[-3:]}
    assert all(strip[e].mean() <= rec[0]["params"]["tone"] + 1 for e in rec[0]["params"]["edges"])
    out, _ = apply_steps(clean, [("binarize", 0.5)], seed=3)
    assert set(np.unique(np.asarray(out)).tolist()) <= {0, 255}


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """mask grown by r pixels (a square window), without SciPy."""
    from PIL import ImageFilter

    im = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * r + 1))
    return np.asarray(im) > 0


def test_capture_in_degrade(clean):
    for kind in CAPTURE_KINDS:
        ops = CAPTURE_KINDS[kind]["ops"]
        for k in range(30):
            cap = sample_capture(k, kind=kind)
            assert 1 <= len(cap) <= CAPTURE_KINDS[kind]["max_ops"]
            assert [op for op, _ in cap] == [op for op in CAPTURE_OPS if op in dict(cap)]
            assert all(op in ops and 0.1 * ops[op][1] - 1e-9 <= s <= ops[op][1] for op, s in cap)
        assert {op for k in range(80) for op, _ in sample_capture(k, kind=kind)} == set(ops)
    assert sample_capture(5) == sample_capture(5, kind="camera")
    with pytest.raises(ValueError, match="kind"):
        sample_capture(0, kind="phone")
    cap = (("skew", 0.5), ("shadow", 0.5))
    plain, _ = degrade(clean, (("noise", 1.0),), 0.3, seed=1)
    img, steps = degrade(clean, (("noise", 1.0),), 0.3, seed=1, capture=cap)
    assert [s["op"] for s in steps] == ["skew", "shadow", "noise"]
    assert not np.array_equal(np.asarray(img), np.asarray(plain))
    # A region follows the captured page: right of the front only the capture has acted.
    ramp = {"kind": "ramp", "angle": 0.0, "band": 0.2}
    img, _ = degrade(clean, (("noise", 1.0),), 0.4, seed=1, region=ramp, capture=cap)
    only, _ = apply_steps(clean, cap, seed=(1 * 0x9E3779B1 + 0xCA97) % 2**63)
    right = slice(int(0.5 * clean.width), None)
    assert np.array_equal(np.asarray(img)[:, right], np.asarray(only)[:, right])
    with pytest.raises(ValueError, match="capture"):
        degrade(clean, (("noise", 1.0),), 0.3, seed=1, capture=(("blur", 0.5),))
    with pytest.raises(ValueError, match="max_ops"):
        sample_capture(0, max_ops=0)


# ---------------------------------------------------------------------------------------------
# Steering


def test_choose_severity_brackets_the_target():
    assert choose_severity([], 0.3, knee=0.0) == pytest.approx(0.3)  # anchors (0, 0) and (1, 1)
    assert choose_severity([], 0.3, knee=0.4) == pytest.approx(0.4 + 0.6 * 0.3)  # the prior
    s = choose_severity([(0.5, 0.1)], 0.6)  # target above what 0.5 gave: search in (0.5, 1)
    assert 0.5 < s < 1.0
    s = choose_severity([(0.4, 0.05), (0.6, 1.0)], 0.5)  # a step: stay strictly inside the bracket
    assert 0.4 < s < 0.6
    s = choose_severity([(0.7, 0.9), (0.3, 0.95)], 0.5)  # non-monotone observations
    assert 0.0 <= s <= 0.3
    rng = np.random.default_rng(0)
    assert all(0.0 <= choose_severity([], t, rng=rng) <= 1.0 for t in (0.0, 0.01, 0.99))


def test_targets_spread_per_source():
    targets = [variant_target(0, 7, k) for k in range(8)]
    assert sorted(np.floor(np.array(targets) * 8).astype(int).tolist()) == list(range(8))
    assert variant_target(0, 7, 3) == targets[3]  # independent of how many variants are asked for


def test_cer_histogram():
    assert cer_histogram([0.0, 0.05, 0.1, 0.55, 1.0], bins=10) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 1]


# ---------------------------------------------------------------------------------------------
# Build, resume, load


def _mtimes(root):
    rec = os.path.join(root, "records")
    return {n: os.stat(os.path.join(rec, n)).st_mtime_ns for n in os.listdir(rec)}


@pytest.mark.ocr
@needs_tesseract
def test_build_resume_and_load(tmp_path):
    root = tmp_path / "ds"
    opts = dict(variants_per_source=2, langs={"eng": 1.0, "jpn": 1.0}, seed=5, timeout=20.0, progress=False)
    first = build_dataset(root, n_sources=2, workers=2, **opts)  # the process pool path
    assert (first.total, first.new, first.skipped) == (4, 4, 0) and sum(first.histogram["tesseract"]) == 4
    assert first.pages_per_s > 0 and "pages/s" in first.summary()
    before = _mtimes(root)

    grown = build_dataset(root, n_sources=3, workers=0, **opts)  # one more source: only it is computed
    assert (grown.total, grown.new, grown.skipped) == (6, 2, 4)
    after = _mtimes(root)
    assert {n: after[n] for n in before} == before  # finished samples were not rewritten

    ds = load_dataset(root)
    assert len(ds) == 6 and ds.engines == ["tesseract"]
    info = ds.engine_info()
    assert info["name"] == "tesseract" and info["options"]["psm"] == 4 and info["timeout"] == 20.0
    assert info["per_lang"]["jpn"]["config"]["lang"] == "jpn" and info["per_lang"]["eng"]["version"]
    with pytest.raises(KeyError, match="rapidocr"):
        ds.engine_info("rapidocr")
    assert [s.sample_id for s in ds] == sorted(s.sample_id for s in ds)
    groups = ds.groups()
    assert groups.shape == (6,) and len(set(groups.tolist())) == 3
    for g in set(groups.tolist()):  # every degradation of a source shares its group
        assert len({s.source_id for s, gg in zip(ds, groups) if gg == g}) == 1
    y = ds.targets("tesseract")
    assert y.dtype == np.float64 and ((0 <= y) & (y <= 1)).all()
    s = ds[0]
    label = s.labels["tesseract"]
    assert label.version and label.config["psm"] == 4 and label.lang == s.lang
    assert s.degradation["steps"] is not None and "region" in s.degradation and s.text
    img = s.load_image()
    assert img.mode == "L" and img.size == (json.load(open(root / "records" / f"{s.sample_id}.json"))["width"], img.height)

    # An interrupted write: a torn record (not written via the atomic path) and a stray temp file.
    torn = root / "records" / "000002-v01.json"
    torn.write_bytes(torn.read_bytes()[:100])
    (root / "records" / ".000002-v01.json.abc.tmp").write_bytes(b"{")
    with pytest.warns(RuntimeWarning, match="000002-v01"):
        partial = load_dataset(root)
    assert len(partial) == 5 and partial.skipped and partial.skipped[0][0].endswith("000002-v01.json")
    with pytest.raises(DatasetError, match="000002-v01"):
        load_dataset(root, strict=True)
    repaired = build_dataset(root, n_sources=3, workers=0, **opts)
    assert (repaired.total, repaired.new) == (6, 1)
    assert not (root / "records" / ".000002-v01.json.abc.tmp").exists()
    assert len(load_dataset(root, strict=True)) == 6

    with pytest.raises(DatasetError, match="seed"):  # other settings: refuse to mix
        build_dataset(root, n_sources=3, workers=0, **{**opts, "seed": 6})


@pytest.mark.ocr
@needs_tesseract
def test_build_from_given_pages(tmp_path):
    page = generate_page(9, lang="eng", layout="form")
    given = SourcePage(page.image.convert("RGB"), page.text, "eng", "my-scan-1", page.dpi, {"file": "x.pdf"})
    report = build_dataset(tmp_path / "given", sources=[given], variants_per_source=1, workers=0, progress=False)
    ds = load_dataset(tmp_path / "given")
    assert report.new == 1 and ds[0].source_id == "my-scan-1" and ds[0].source == {"file": "x.pdf"}
    assert ds.meta["build"]["sources"] == "given"
    with pytest.raises(ValueError, match="duplicate"):
        build_dataset(tmp_path / "dup", sources=[given, given], workers=0, progress=False)
    with pytest.raises(ValueError, match="not both"):
        build_dataset(tmp_path / "dup", sources=[given], n_sources=3, workers=0, progress=False)


def test_load_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no dataset.json"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text('{"format": "something-else"}')
    with pytest.raises(DatasetError, match="not a colkern OCR quality data set"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text('{"format": "colkern.quality.ocr-dataset", "format_ver')
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text('{"format": "colkern.quality.ocr-dataset", "format_version": 99}')
    with pytest.raises(DatasetError, match="version 99"):
        load_dataset(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(tmp_path / "file")


def test_build_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_sources"):
        build_dataset(tmp_path, n_sources=0, progress=False)
    with pytest.raises(ValueError, match="langs"):
        build_dataset(tmp_path, n_sources=1, langs=["fra"], progress=False)
    with pytest.raises(ValueError, match="unknown engine"):
        build_dataset(tmp_path, n_sources=1, engines=["abbyy"], progress=False)
    with pytest.raises(ValueError, match="engine_options"):
        build_dataset(tmp_path, n_sources=1, engine_options={"rapidocr": {}}, progress=False)
    with pytest.raises(ValueError, match="capture"):
        build_dataset(tmp_path, n_sources=1, capture="phone", progress=False)


@pytest.mark.ocr
@needs_tesseract
def test_build_with_camera_capture(tmp_path):
    root = tmp_path / "cam"
    opts = dict(variants_per_source=1, langs="eng", seed=3, timeout=20.0, workers=0, progress=False)
    report = build_dataset(root, n_sources=1, capture="camera", **opts)
    assert report.new == 1
    s = load_dataset(root)[0]
    cap = s.degradation["capture"]
    assert cap and all(op in CAPTURE_OPS for op, _ in cap)
    assert [st["op"] for st in s.degradation["steps"]][:len(cap)] == [op for op, _ in cap]
    with pytest.raises(DatasetError, match="capture"):  # a camera set is not resumed without capture
        build_dataset(root, n_sources=1, **opts)
    scan = tmp_path / "scan"
    assert build_dataset(scan, n_sources=1, capture="scanner", **opts).new == 1
    cap = load_dataset(scan)[0].degradation["capture"]
    assert cap and all(op in CAPTURE_KINDS["scanner"]["ops"] for op, _ in cap)

    # Data sets built before the capture setting existed resume as capture "none".
    plain = tmp_path / "plain"
    build_dataset(plain, n_sources=1, **opts)
    meta = json.loads((plain / "dataset.json").read_text())
    assert load_dataset(plain)[0].degradation["capture"] == []
    del meta["build"]["capture"]
    (plain / "dataset.json").write_text(json.dumps(meta))
    assert build_dataset(plain, n_sources=2, **opts).new == 1
