"""The OCR quality pipeline end to end: a small real-Tesseract data set -> features (cached) ->
train / cross-validate / evaluate / save -> predict PDFs and images through the CLI, with the
shipped models."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("lightgbm")
pymupdf = pytest.importorskip("pymupdf")
if shutil.which("tesseract") is None:
    pytest.skip("tesseract is not installed (CI installs tesseract-ocr)", allow_module_level=True)

from PIL import Image, ImageFilter  # noqa: E402

from colkern.cli import main  # noqa: E402
from colkern.quality import pipeline  # noqa: E402
from colkern.quality.dataset import build_dataset, load_dataset  # noqa: E402
from colkern.quality.model import QualityPredictor  # noqa: E402
from colkern.quality.model_format import ModelFormatError  # noqa: E402
from colkern.quality.sample import PAGES, UNREADABLE_PAGE, sample_pdf_path  # noqa: E402
from colkern.quality.synth import generate_page  # noqa: E402

SMALL = {"n_estimators": 30, "min_data_in_leaf": 2, "num_leaves": 4}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ocrq") / "ds"
    build_dataset(root, n_sources=4, variants_per_source=3, engines=("tesseract",), langs="eng", dpi=100,
                  seed=5, workers=0, progress=False)
    return load_dataset(root)


@pytest.mark.ocr
def test_features_are_cached_per_sample(small_dataset, monkeypatch):
    X = pipeline.dataset_features(small_dataset)
    assert X.shape[0] == len(small_dataset) == 12 and np.isfinite(X[:, :10]).all()
    calls = []
    real = pipeline.page_features
    monkeypatch.setattr(pipeline, "page_features", lambda imgs, enc: calls.append(len(imgs)) or real(imgs, enc))
    assert np.array_equal(pipeline.dataset_features(small_dataset), X, equal_nan=True)
    assert calls == []  # everything came from the cache
    cache = [f for f in os.listdir(small_dataset.root) if f.startswith("features-glyph-")]
    assert len(cache) == 1
    with open(os.path.join(small_dataset.root, cache[0]), "wb") as f:
        f.write(b"damaged")
    # recomputed, not trusted (to float32 rounding: the encoder's torch convolutions sum in a
    # thread-dependent order)
    np.testing.assert_allclose(pipeline.dataset_features(small_dataset), X, rtol=1e-5, atol=1e-6)
    assert calls == [12]


@pytest.mark.ocr
def test_train_save_load_evaluate(small_dataset, tmp_path):
    model, cv = pipeline.train_predictor(small_dataset, "tesseract", cv_folds=2, lgbm_params=SMALL)
    assert cv is not None and model.is_fitted
    assert model.engine_config["dpi"] == 100 and model.training["dataset"]["samples"] == 12
    assert model.engine_config["name"] == "tesseract" and model.engine_config["options"]["psm"] == 4
    path = str(tmp_path / "m.colq")
    model.save(path)
    back = QualityPredictor.load(path)
    X = pipeline.dataset_features(small_dataset)
    assert np.array_equal(back.predict(X)["cer"], model.predict(X)["cer"])
    ev = pipeline.evaluate_predictor(back, small_dataset, str(tmp_path / "report"), n_bootstrap=50)
    assert ev.n == 12 and set(ev.metrics) == {"cer", "wer"}
    assert set(ev.metrics["cer"]) == {"pearson", "spearman", "mae", "auc"}
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["pages"] == 12 and report["engine"] == "tesseract"
    with Image.open(tmp_path / "report" / "scatter-cer.png") as im:
        im.verify()
    with pytest.raises(ValueError, match="no 'rapidocr' labels"):
        pipeline.train_predictor(small_dataset, "rapidocr")
    # Pooled held-out sets: the same set twice counts its sources twice (distinct clusters), and
    # the pooled point estimates equal those of the concatenated predictions.
    pooled = pipeline.evaluate_predictor(back, [small_dataset, small_dataset], str(tmp_path / "pooled"), n_bootstrap=50)
    assert pooled.n == 24 and pooled.sources == 2 * ev.sources
    assert len(np.unique(pooled.groups)) == pooled.sources  # the bootstrap's clusters
    assert np.array_equal(pooled.y_pred["cer"], np.concatenate([ev.y_pred["cer"]] * 2))
    assert pooled.metrics["cer"]["mae"]["value"] == pytest.approx(ev.metrics["cer"]["mae"]["value"])
    assert json.loads((tmp_path / "pooled" / "report.json").read_text())["dataset"] == [small_dataset.root] * 2
    with pytest.raises(ValueError, match="non-empty list"):
        pipeline.evaluate_predictor(back, [])


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
def test_shipped_model_ranks_a_degraded_page_below_its_original(tmp_path, engine):
    model = pipeline.load_model(engine=engine)
    assert model.engine == engine
    clean = generate_page(424242, lang="eng", layout="prose", dpi=150).image
    blurred = clean.filter(ImageFilter.GaussianBlur(3.5))
    clean.save(tmp_path / "clean.png")
    blurred.save(tmp_path / "blurred.png")
    rows = pipeline.predict_files([str(tmp_path / "clean.png"), str(tmp_path / "blurred.png")], model)
    assert [r.error for r in rows] == [None, None]
    assert rows[1].cer > rows[0].cer + 0.1, (rows[0].cer, rows[1].cer)


def test_cli_predict_sample_pdf_with_overlays(tmp_path, capsys):
    rc = main(["quality", "predict", sample_pdf_path(), "--json", "--overlay-dir", str(tmp_path / "ov")])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and [r["page"] for r in rows] == list(range(1, len(PAGES) + 1))
    assert all(0.0 <= r["cer"] <= 1.0 and r["verdict"] in ("good", "fair", "poor") for r in rows)
    assert rows[UNREADABLE_PAGE]["cer"] > rows[0]["cer"]  # the unreadable page scores worse than the clean first
    doc = pymupdf.open(sample_pdf_path())
    for r in rows:
        with Image.open(r["overlay"]) as im:
            pix = doc[r["page"] - 1].get_pixmap(dpi=150)
            assert im.size == (pix.width, pix.height)


def test_cli_bad_input(tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    Image.new("L", (600, 800), 255).save(tmp_path / "blank.png")
    rc = main(["quality", "predict", str(tmp_path / "broken.png"), str(tmp_path / "blank.png"),
               str(tmp_path / "missing.pdf"), "--json"])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 1
    assert [r["verdict"] for r in rows] == ["error", "empty", "error"]
    assert "not a readable image" in rows[0]["error"] and "broken.png" in err
    (tmp_path / "wrong.colq").write_bytes(b"this is not a model")
    rc = main(["quality", "predict", sample_pdf_path(), "--model", str(tmp_path / "wrong.colq")])
    err = capsys.readouterr().err
    assert rc == 2 and "wrong.colq" in err
    with pytest.raises(ModelFormatError):
        QualityPredictor.load(str(tmp_path / "wrong.colq"))
    rc = main(["quality", "train", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.colq")])
    assert rc == 2 and "nowhere" in capsys.readouterr().err



@pytest.mark.parametrize("engine,lang", pipeline.shipped_models())
def test_shipped_models_name_a_built_in_encoder(engine, lang):
    """Every shipped model (one per engine and page language) names an encoder built from its
    stored params, records its render DPI and language, and is calibrated."""
    model = pipeline.load_model(engine=engine, lang=lang)
    assert model.engine == engine and model.engine_config["dpi"] == 150 and model.engine_config["lang"] == lang
    assert model.encoder_name in pipeline.BUILT_IN_ENCODERS and model.is_calibrated
    model.check_encoder(pipeline.make_encoder(model.encoder_name, model.encoder_params))
    assert len(model.feature_names) == model.n_features
    with pytest.raises(ValueError, match="not built in"):
        pipeline.make_encoder("colpali")
