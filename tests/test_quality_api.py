"""The one-call API (colkern.quality.predict) on every input kind, region prediction
(predict_regions and `colkern quality predict --boxes`), `--lang jpn`, `--pages`, and bad input."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("lightgbm")
pytest.importorskip("pymupdf")

from PIL import Image, ImageFilter  # noqa: E402

from colkern.cli import main  # noqa: E402
from colkern.quality import PagePrediction, RegionPrediction, predict, predict_regions  # noqa: E402
from colkern.quality.sample import PAGES, sample_pdf_path  # noqa: E402
from colkern.quality.synth import generate_page  # noqa: E402


@pytest.fixture(scope="module")
def page():
    return generate_page(424243, lang="eng", layout="prose", dpi=150).image


@pytest.fixture(scope="module")
def half_degraded(page):
    """The page with only its lower half blurred and noisy (upper half untouched)."""
    a = np.asarray(page, dtype=np.float32).copy()
    h = a.shape[0] // 2
    low = Image.fromarray(a[h:].astype(np.uint8)).filter(ImageFilter.GaussianBlur(2.2))
    rng = np.random.default_rng(0)
    a[h:] = np.clip(np.asarray(low, dtype=np.float32) + rng.normal(0, 40, low.size[::-1]), 0, 255)
    img = Image.fromarray(np.rint(a).astype(np.uint8), mode="L")
    img.info["dpi"] = (150, 150)
    return img


def test_predict_every_input_kind(page, tmp_path):
    path = tmp_path / "page.png"
    page.save(path, dpi=(150, 150))
    arr = np.asarray(page)
    rgb_float = np.repeat(arr[:, :, None], 3, axis=2).astype(np.float32) / 255.0
    rows = predict([str(path), page, arr, rgb_float, sample_pdf_path()], pages=[0])
    assert all(isinstance(r, PagePrediction) for r in rows)
    assert [r.input for r in rows] == [0, 1, 2, 3, 4]
    assert [r.file for r in rows] == [str(path), None, None, None, sample_pdf_path()]
    assert [r.page for r in rows] == [None, None, None, None, 0]
    assert all(r.error is None and 0 <= r.cer <= 1 and 0 <= r.wer <= 1 for r in rows)
    assert all(r.verdict == ("good" if r.cer <= 0.02 else "fair" if r.cer <= 0.1 else "poor") for r in rows)
    # the same pixels give the same prediction whatever the container
    assert rows[0].cer == rows[1].cer == rows[2].cer == pytest.approx(rows[3].cer, abs=1e-6)
    # one input alone, and the Path type
    assert predict(path)[0].cer == rows[0].cer
    assert predict(page, engine="rapidocr")[0].cer is not None


@pytest.mark.parametrize("pdf_page", [0, 2])
def test_images_declaring_another_dpi_are_resampled(pdf_page, tmp_path):
    """A sample page rendered at 300 dpi and blurred (the same physical blur as at 150 dpi) is read
    like the 150-dpi page (the shipped models' resolution), boxes in its own pixels; without the
    declaration it is taken as it is, and looks like large blurred print."""
    from colkern.quality.degrade import apply_steps
    from colkern.quality.pipeline import iter_pdf
    from colkern.quality.resolution import at_model_dpi

    pages = {d: apply_steps(next(iter_pdf(sample_pdf_path(), d, [pdf_page]))[1], [("blur", 0.5)], seed=1)[0]
             for d in (150, 300)}
    small, scale = at_model_dpi(pages[300], 150)
    assert scale == 0.5 and small.info["dpi"] == (150, 150)
    assert abs(small.width - pages[150].width) <= 1 and abs(small.height - pages[150].height) <= 1
    assert at_model_dpi(pages[150], 150)[1] == 1.0
    path = tmp_path / "scan300.png"
    pages[300].save(path, dpi=(300, 300))
    undeclared = pages[300].copy()
    undeclared.info.pop("dpi")
    ref, declared, from_file, as_is = (r.cer for r in predict([pages[150], pages[300], str(path), undeclared]))
    assert declared == pytest.approx(from_file, abs=1e-9)
    # Resampling is not rendering at 150 dpi (a box filter against MuPDF's anti-aliasing): close,
    # and far closer than the page read as it is.
    assert abs(declared - ref) < 0.1 and abs(as_is - ref) > max(0.2, 3 * abs(declared - ref)), (ref, declared, as_is)
    W, H = pages[150].size
    want = predict_regions(pages[150], [(0, 0, W, H // 2)])[0]
    got = predict_regions(pages[300], [(0, 0, 2 * W, H)])[0]
    taken_as_is = predict_regions(undeclared, [(0, 0, 2 * W, H)])[0]
    assert got.box == (0, 0, 2 * W, H) and abs(got.n_patches - want.n_patches) <= want.n_patches // 20
    # Half a blurred receipt sits where the predicted CER is steep (0.16 at 150 dpi, 0.28 resampled
    # with the models of the `border` run): close, and several times closer than the region read as it is.
    assert abs(got.cer - want.cer) < 0.15, (want.cer, got.cer)
    assert abs(taken_as_is.cer - want.cer) > max(0.2, 3 * abs(got.cer - want.cer)), (want.cer, got.cer, taken_as_is.cer)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P"])
def test_downsampling_keeps_the_noise_the_engine_reads(mode, monkeypatch):
    """A 300-dpi page with per-pixel noise is brought to 150 dpi by decimation: the noise keeps its
    strength (the engine binarises those very pixels at 300 dpi), where an area average would
    halve it; glyphs are halved in size either way, and every image mode comes out."""
    import colkern.quality.resolution as resolution

    rng = np.random.default_rng(0)
    paper = np.full((1200, 900), 200.0)
    paper[300:340, 100:800] = 20.0                      # a 40-px stroke: 20 px at 150 dpi
    noisy = np.clip(paper + rng.normal(0, 30, paper.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(noisy, mode="L").convert(mode)
    img.info["dpi"] = (300, 300)

    def measured(out):
        a = np.asarray(out.convert("L"), dtype=np.float64)
        dark = (a < 110).sum(axis=0)                    # the stroke's height per column
        return a[400:, :].std(), np.median(dark[60:390])

    small, scale = resolution.at_model_dpi(img, 150)
    assert scale == 0.5 and small.size == (450, 600) and small.info["dpi"] == (150, 150)
    noise, stroke = measured(small)
    assert 25 < noise < 35 and 18 <= stroke <= 22, (noise, stroke)
    if mode == "P":
        return                                          # PIL resizes palette images by nearest pixels anyway
    monkeypatch.setattr(resolution, "DOWNSAMPLE", "area")
    noise_area, stroke_area = measured(resolution.at_model_dpi(img, 150)[0])
    assert noise_area < 0.6 * noise and 18 <= stroke_area <= 22, (noise_area, stroke_area)


def test_a_large_whole_page_without_a_resolution_is_taken_as_a_page(tmp_path):
    """A 300-dpi A4 page that declares no resolution (a numpy array), or a camera's default 72 dpi,
    is read as 8.4 inches wide and downsampled; a small image is never enlarged on that guess."""
    from colkern.quality.degrade import apply_steps
    from colkern.quality.pipeline import iter_pdf
    from colkern.quality.resolution import at_model_dpi, page_dpi

    def a4(dpi):
        canvas = Image.new("L", (int(8.27 * dpi), int(11.69 * dpi)), 255)
        canvas.paste(next(iter_pdf(sample_pdf_path(), dpi, [0]))[1], (dpi // 2, dpi // 2))
        canvas.info["dpi"] = (dpi, dpi)
        return apply_steps(canvas, [("blur", 0.5)], seed=1)[0]

    ref, big = a4(150), a4(300)
    arr = np.asarray(big)
    assert page_dpi(arr) == (pytest.approx(big.width / 8.4), "page size")
    camera = big.copy()
    camera.info["dpi"] = (72, 72)                       # "34 inches wide": not a measurement
    assert page_dpi(camera)[1] == "page size" and page_dpi(big) == (300.0, "declared")
    small, scale = at_model_dpi(arr, 150)
    assert isinstance(small, Image.Image) and scale == pytest.approx(150 / (big.width / 8.4))
    assert abs(small.width - ref.width) < 0.03 * ref.width
    crop = arr[: arr.shape[0] // 3]                     # not shaped like a page: as it is
    out, scale = at_model_dpi(crop, 150)
    assert out is crop and scale == 1.0 and page_dpi(crop) == (None, None)
    tiny = np.asarray(next(iter_pdf(sample_pdf_path(), 150, [0]))[1])
    assert at_model_dpi(tiny, 150)[1] == 1.0            # an A5 page at 150 dpi "is" 74 dpi: not enlarged
    want, got_arr, got_camera = (r.cer for r in predict([ref, arr, camera]))
    assert got_arr == pytest.approx(got_camera, abs=1e-9) and abs(got_arr - want) < 0.1, (want, got_arr)


def test_predict_writes_overlays_and_takes_a_model_file(page, tmp_path):
    from colkern.quality.pipeline import shipped_model_path

    rows = predict([page, page], model=shipped_model_path("tesseract", "eng"), overlay_dir=str(tmp_path / "ov"))
    for r in rows:
        with Image.open(r.overlay) as im:
            assert im.size == page.size
    assert rows[0].overlay != rows[1].overlay


def test_predict_bad_input(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    rows = predict([str(tmp_path / "broken.png"), str(tmp_path / "broken.pdf"), str(tmp_path / "none.pdf"),
                    np.full((300, 200), 255, np.uint8)])
    assert [r.verdict for r in rows] == ["error", "error", "error", "empty"]
    assert "not a readable image" in rows[0].error and "not a readable PDF" in rows[1].error
    assert rows[2].error == "no such file"
    with pytest.raises(ValueError, match="no shipped tesseract model for language 'fra'.*eng, jpn"):
        predict([], lang="fra")
    with pytest.raises(ValueError, match="no shipped model for engine 'easyocr'"):
        predict([], engine="easyocr")
    with pytest.raises(TypeError, match=r"inputs\[0\] must be a path, a PIL image or a numpy array"):
        predict([42])
    bad = predict(np.full((64, 64), 2.0, np.float32))[0]
    assert bad.verdict == "error" and "float pixels must be finite and lie in" in bad.error
    with pytest.raises(ValueError, match="pages must be non-negative"):
        predict(sample_pdf_path(), pages=[-1])


def test_regions_degraded_half_predicted_worse(half_degraded):
    W, H = half_degraded.size
    top, bottom = (0, 40, W, H // 2 - 10), (0, H // 2 + 10, W, H - 40)
    regions = predict_regions(half_degraded, [top, {"box": bottom, "name": "lower half"}])
    assert all(isinstance(r, RegionPrediction) for r in regions)
    assert regions[1].name == "lower half" and regions[0].name is None
    assert regions[1].cer > regions[0].cer + 0.1, (regions[0].cer, regions[1].cer)
    assert regions[0].n_content > 0 and regions[1].n_patches > 0
    # a box of blank margin has nothing to read
    blank = predict_regions(half_degraded, [(0, 0, W, 8)])[0]
    assert blank.verdict == "empty" and blank.cer is None


@pytest.mark.ocr
@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_regions_agree_with_tesseract_on_the_regions(half_degraded):
    """Tesseract run on the same two regions reads the degraded one worse too."""
    from colkern.quality.ocr import get_engine

    src = generate_page(424243, lang="eng", layout="prose", dpi=150)
    W, H = half_degraded.size
    boxes = [(0, 0, W, H // 2), (0, H // 2, W, H)]
    pred = [r.cer for r in predict_regions(half_degraded, boxes)]
    engine = get_engine("tesseract", lang="eng", psm=4)
    read = [engine.recognize(half_degraded.crop(b), timeout=60).text for b in boxes]
    from colkern.quality.text_metrics import cer

    # ground truth per half: the page's lines, split where Tesseract's clean reading splits them
    clean = [engine.recognize(src.image.crop(b), timeout=60).text for b in boxes]
    real = [cer(c, r) for c, r in zip(clean, read)]
    assert real[1] > real[0] and pred[1] > pred[0], (real, pred)


def test_region_bad_boxes(page):
    W, H = page.size
    with pytest.raises(ValueError, match=rf"box 1 .* lies outside the {W} x {H} page"):
        predict_regions(page, [(0, 0, 10, 10), (W - 10, 0, W + 5, 10)])
    with pytest.raises(ValueError, match="box 0: needs x0 < x1"):
        predict_regions(page, [(50, 0, 10, 10)])
    with pytest.raises(ValueError, match="box 0: expected 4 numbers"):
        predict_regions(page, [(1, 2, 3)])
    with pytest.raises(ValueError, match="non-empty list"):
        predict_regions(page, [])
    with pytest.raises(FileNotFoundError):
        predict_regions("/no/such/page.png", [(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="no shipped tesseract model for language 'klingon'"):
        predict_regions(page, [(0, 0, 10, 10)], lang="klingon")


def test_cli_boxes_lang_and_pages(tmp_path, capsys):
    ja = generate_page(31, lang="jpn", layout="receipt", dpi=150)
    ja.image.save(tmp_path / "ja.png", dpi=(150, 150))
    W, H = ja.image.size
    (tmp_path / "boxes.json").write_text(json.dumps([[0, 0, W, 60], {"box": [0, 60, W, H], "name": "rest"}]))
    rc = main(["quality", "predict", str(tmp_path / "ja.png"), "--lang", "jpn", "--boxes",
               str(tmp_path / "boxes.json"), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and [r["name"] for r in rows] == [None, "rest"] and rows[0]["box"] == [0, 0, W, 60]
    assert all(r["verdict"] in ("good", "fair", "poor", "empty") for r in rows)
    rc = main(["quality", "predict", sample_pdf_path(), "--pages", "2-3,7", "--lang", "jpn", "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and [r["page"] for r in rows] == [2, 3, 7]
    rc = main(["quality", "predict", sample_pdf_path(), "--pages", "0-2"])
    assert rc == 2 and "1-based" in capsys.readouterr().err
    rc = main(["quality", "predict", str(tmp_path / "ja.png"), "--lang", "fra"])
    assert rc == 2 and "language 'fra'" in capsys.readouterr().err
    (tmp_path / "far.json").write_text(json.dumps([[0, 0, W + 100, 10]]))
    rc = main(["quality", "predict", str(tmp_path / "ja.png"), "--lang", "jpn", "--boxes", str(tmp_path / "far.json")])
    assert rc == 1 and "outside" in capsys.readouterr().err
    assert len(PAGES) == 8
