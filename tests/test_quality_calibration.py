"""Calibrated predictions: isotonic knots fitted out of fold are monotone and bounded, travel in the
model file, and files written before calibration existed still load; the shipped models give the
sample's clean pages "good" and its unreadable page "poor"."""
import json

import numpy as np
import pytest

pytest.importorskip("lightgbm")

from colkern.quality import VERDICT_THRESHOLDS, predict  # noqa: E402
from colkern.quality.model import QualityPredictor, fit_isotonic  # noqa: E402
from colkern.quality.model_format import MAGIC, ModelFormatError  # noqa: E402
from colkern.quality.sample import PAGES, UNREADABLE_PAGE, sample_pdf_path  # noqa: E402

SMALL = {"n_estimators": 40, "min_data_in_leaf": 3, "num_leaves": 4}


def _toy(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    cer = np.clip(1 / (1 + np.exp(-2.5 * X[:, 0] - 1.5)) + rng.normal(0, 0.05, n), 0, 1)
    cer[X[:, 1] > 1.2] = 0.0  # a pile of clean pages, as real labels have
    return X, {"cer": cer, "wer": np.clip(cer * 1.3, 0, 1)}, np.arange(n) // 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_isotonic_is_monotone_and_bounded(seed):
    rng = np.random.default_rng(seed)
    pred = rng.random(500)
    label = np.clip(pred ** 2 + rng.normal(0, 0.2, 500), 0, 1)
    knots = fit_isotonic(pred, label, max_knots=16)
    x, y = np.array(knots["x"]), np.array(knots["y"])
    assert 1 <= x.size <= 16 and (np.diff(x) > 0).all() and (np.diff(y) >= 0).all()
    assert y.min() >= 0 and y.max() <= 1
    grid = np.interp(np.linspace(-0.5, 1.5, 1001), x, y)
    assert (np.diff(grid) >= 0).all() and grid.min() >= 0 and grid.max() <= 1
    # ties in the predictions are one point; constant predictions give one knot
    assert fit_isotonic(np.full(10, 0.3), np.linspace(0, 1, 10)) == {"x": [0.3], "y": [0.5]}
    with pytest.raises(ValueError, match="finite"):
        fit_isotonic(np.array([0.1, np.nan]), np.array([0.0, 1.0]))


def test_calibrate_is_out_of_fold_monotone_and_saved(tmp_path):
    X, y, groups = _toy()
    model = QualityPredictor("glyph", "tesseract", lgbm_params=SMALL)
    cv = model.calibrate(X, y, groups, n_splits=4, n_bootstrap=20)
    model.fit(X, y, groups=groups)
    assert model.is_calibrated and set(model.calibration) == {"cer", "wer"}
    raw, cal = model.predict(X, raw=True), model.predict(X)
    order = np.argsort(raw["cer"], kind="stable")
    assert (np.diff(cal["cer"][order]) >= -1e-12).all()          # monotone in the raw prediction
    assert cal["cer"].min() >= 0 and cal["cer"].max() <= 1
    # clean pages: the calibrated floor sits on the mean label of the pages predicted lowest
    clean = y["cer"] == 0
    assert np.median(cal["cer"][clean]) < np.median(raw["cer"][clean])
    assert cv.targets["cer"].oof.shape == (X.shape[0],)
    path = tmp_path / "m.colq"
    model.save(path)
    back = QualityPredictor.load(path)
    assert back.calibration == model.calibration
    np.testing.assert_array_equal(back.predict(X)["cer"], cal["cer"])


def _rewrite_header(path, edit):
    data = path.read_bytes()
    end = data.index(b"\n", len(MAGIC))
    head = json.loads(data[len(MAGIC):end])
    edit(head)
    path.write_bytes(MAGIC + json.dumps(head).encode() + data[end:])


def test_model_files_without_calibration_still_load(tmp_path):
    """A file as written before calibration existed (no "calibration" key, format version 1)
    loads and predicts the boosters' raw outputs."""
    X, y, groups = _toy()
    model = QualityPredictor("glyph", "tesseract", lgbm_params=SMALL).fit(X, y)
    model.calibration = {"cer": fit_isotonic(model.predict(X)["cer"], y["cer"])}
    path = tmp_path / "old.colq"
    model.save(path)
    _rewrite_header(path, lambda h: h.pop("calibration"))
    old = QualityPredictor.load(path)
    assert old.calibration is None and not old.is_calibrated
    np.testing.assert_array_equal(old.predict(X)["cer"], model.predict(X, raw=True)["cer"])
    # knots that are not monotone are a corrupt file, not a silent mis-prediction
    _rewrite_header(path, lambda h: h.update(calibration={"cer": {"x": [0.1, 0.2], "y": [0.5, 0.1]}}))
    with pytest.raises(ModelFormatError, match="knots must increase"):
        QualityPredictor.load(path)


def test_verdict_thresholds_are_documented_values():
    assert VERDICT_THRESHOLDS == (0.02, 0.10)


def test_sample_verdicts_with_the_shipped_models():
    """The demo: the clean English pages come out "good", the unreadable one "poor"; the Japanese
    receipts are predicted with the Japanese model (the blurred one worse than the clean one)."""
    eng = [i for i, p in enumerate(PAGES) if p[3] == "eng"]
    jpn = [i for i, p in enumerate(PAGES) if p[3] == "jpn"]
    rows = predict(sample_pdf_path(), lang="eng", pages=eng)
    assert [r.page for r in rows] == eng
    clean = [r for r, p in zip(rows, PAGES) if not p[2]]
    assert clean and all(r.verdict == "good" for r in clean), [(r.page, r.cer) for r in clean]
    assert rows[UNREADABLE_PAGE].verdict == "poor" and rows[UNREADABLE_PAGE].cer > 0.5
    ja = predict(sample_pdf_path(), lang="jpn", pages=jpn)
    assert [r.page for r in ja] == jpn and all(r.cer is not None for r in ja)
    assert ja[1].cer > ja[0].cer
