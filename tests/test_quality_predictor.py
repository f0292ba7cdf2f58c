"""colkern.quality.model (LightGBM quality model) with its stats (grouped CV, metrics), reports and
model files, and colkern.quality.overlay (per-patch quality maps)."""
import json
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import stats

from colkern.quality.encoders import PixelPatchEncoder, page_features, pool_features
from colkern.quality.model import QualityPredictor
from colkern.quality.model_format import MAGIC, ModelFormatError
from colkern.quality.overlay import overlay_image, patch_quality_map, save_overlay, window_features
from colkern.quality.report import CVReport, save_scatter
from colkern.quality.stats import bootstrap_metrics, group_kfold, mae, pearson, roc_auc, spearman
from colkern.quality.verdict import verdict

torch.set_num_threads(1)

FAST = {"n_estimators": 60, "min_data_in_leaf": 5, "num_threads": 1}
WORDS = "invoice total amount date quality paper print scan order receipt number customer".split()


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def synthetic(n=300, F=6, seed=0, group_size=3):
    """Labels in [0, 1] that are a known function of the features; groups of `group_size`."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F))
    y = sigmoid(1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] * X[:, 3])
    wer = np.clip(y * 1.2, 0, 1)
    return X.astype(np.float32), {"cer": y, "wer": wer}, np.arange(n) // group_size


def no_temp_files(directory):
    return [f for f in os.listdir(directory) if f.endswith(".tmp")] == []


# -- grouped folds ------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=5, max_size=60), st.integers(2, 5), st.integers(0, 3))
def test_group_kfold_never_splits_a_group(groups, n_splits, seed):
    if len(set(groups)) < n_splits:
        with pytest.raises(ValueError, match="groups cannot fill"):
            group_kfold(groups, n_splits, seed)
        return
    folds = group_kfold(groups, n_splits, seed)
    assert folds.shape == (len(groups),) and folds.dtype == np.int64
    for g in set(groups):
        assert len(set(folds[np.asarray(groups) == g].tolist())) == 1
    assert set(folds.tolist()) == set(range(n_splits))  # every fold gets a group
    assert np.array_equal(folds, group_kfold(groups, n_splits, seed))  # deterministic


def test_group_kfold_balance_and_order_invariance():
    groups = np.repeat(np.arange(20), 5)
    folds = group_kfold(groups, 5, seed=1)
    assert np.bincount(folds).tolist() == [20] * 5
    perm = np.random.default_rng(0).permutation(100)
    shuffled = group_kfold(groups[perm], 5, seed=1)
    assert np.array_equal(shuffled, folds[perm])  # a group's fold does not depend on sample order
    assert not np.array_equal(group_kfold(groups, 5, seed=2), folds)
    strings = np.array([f"doc-{g}" for g in groups])
    assert len(set(zip(group_kfold(strings, 5).tolist(), groups.tolist()))) == 20


def test_group_kfold_bad_arguments():
    with pytest.raises(ValueError, match="n_splits"):
        group_kfold([0, 1, 2], 1)
    with pytest.raises(ValueError, match="1-D"):
        group_kfold(np.zeros((3, 2)), 2)


# -- metrics ------------------------------------------------------------------------------------

def test_correlations_match_scipy():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 6, 50).astype(float)  # ties
    b = a + rng.normal(0, 2, 50)
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
    assert np.isnan(pearson(np.ones(5), b[:5])) and np.isnan(pearson([1.0], [2.0]))
    assert mae([0.0, 0.5, 1.0], [0.1, 0.5, 0.7]) == pytest.approx(0.4 / 3)


def test_auc_hand_example_and_brute_force():
    # positives 0.8, 0.4; negatives 0.5, 0.4, 0.1. Pairs won: 0.8 beats all 3; 0.4 loses to 0.5,
    # ties 0.4 (1/2), beats 0.1 -> (3 + 1.5) / 6.
    labels = np.array([True, True, False, False, False])
    scores = np.array([0.8, 0.4, 0.5, 0.4, 0.1])
    assert roc_auc(labels, scores) == pytest.approx(0.75)
    rng = np.random.default_rng(3)
    lab = rng.random(40) < 0.3
    sc = rng.integers(0, 5, 40).astype(float)
    pos, neg = sc[lab], sc[~lab]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert roc_auc(lab, sc) == pytest.approx(brute)
    assert np.isnan(roc_auc(np.zeros(4, bool), sc[:4]))


def test_cluster_bootstrap_resamples_whole_groups():
    rng = np.random.default_rng(4)
    y = rng.random(20)
    p = y + rng.normal(0, 0.2, 20)
    unique = bootstrap_metrics(y, p, np.arange(20), n_bootstrap=200, seed=7)
    # Each sample copied 10 times into one group: resampling groups sees the same 20 points
    # with the same multiplicities, so the intervals are identical. A per-sample bootstrap
    # would treat the copies as independent and give much narrower intervals.
    dup = bootstrap_metrics(np.repeat(y, 10), np.repeat(p, 10), np.repeat(np.arange(20), 10),
                            n_bootstrap=200, seed=7)
    for m in ("pearson", "spearman", "mae", "auc"):
        assert dup[m].value == pytest.approx(unique[m].value, abs=1e-12)
        assert dup[m].low == pytest.approx(unique[m].low, abs=1e-9)
        assert dup[m].high == pytest.approx(unique[m].high, abs=1e-9)
        assert unique[m].low <= unique[m].value <= unique[m].high
    naive = bootstrap_metrics(np.repeat(y, 10), np.repeat(p, 10), np.arange(200), n_bootstrap=200, seed=7)
    assert naive["pearson"].high - naive["pearson"].low < 0.6 * (dup["pearson"].high - dup["pearson"].low)


def test_verdict_thresholds():
    assert [verdict(c) for c in (0.0, 0.02, 0.021, 0.1, 0.5)] == ["good", "good", "fair", "fair", "poor"]
    assert verdict(np.array([0.01, 0.2])) == ["good", "poor"]
    assert QualityPredictor.verdict(0.05) == "fair"
    with pytest.raises(ValueError, match="finite"):
        verdict(float("nan"))


# -- fit / predict / cross-validate -------------------------------------------------------------

def test_fit_beats_constant_predictor():
    X, y, groups = synthetic()
    train, test = groups < 80, groups >= 80
    model = QualityPredictor("synthetic", "fake-ocr", lgbm_params={"n_estimators": 150, "num_threads": 1})
    model.fit(X[train], {t: v[train] for t, v in y.items()}, groups[train])
    pred = model.predict(X[test])
    assert set(pred) == {"cer", "wer"}
    for t in ("cer", "wer"):
        assert pred[t].shape == (test.sum(),) and pred[t].min() >= 0 and pred[t].max() <= 1
        mse = np.mean((pred[t] - y[t][test]) ** 2)
        const = np.mean((y[t][train].mean() - y[t][test]) ** 2)
        assert mse < 0.35 * const, t
    assert model.training["n_samples"] == int(train.sum()) and model.training["n_groups"] == 80
    assert model.feature_names == [f"f{i}" for i in range(6)]
    imp = model.feature_importance("cer")
    assert list(imp)[0] == "f0"  # the strongest term of the label


def test_cross_validate_report():
    X, y, groups = synthetic(n=240, seed=1, group_size=4)
    model = QualityPredictor("synthetic", "fake-ocr", lgbm_params=FAST)
    rep = model.cross_validate(X, y, groups, n_splits=4, seed=3, n_bootstrap=100)
    assert isinstance(rep, CVReport) and not model.is_fitted  # CV leaves the predictor alone
    assert rep.n_groups == 60 and rep.folds.shape == (240,)
    for g in range(60):
        assert len(set(rep.folds[groups == g].tolist())) == 1
    for t in ("cer", "wer"):
        r = rep.targets[t]
        assert r.oof.shape == (240,) and np.array_equal(r.y, y[t])
        assert r.metrics["pearson"].value > 0.8 and r.metrics["spearman"].value > 0.8
        assert r.metrics["pearson"].value == pytest.approx(stats.pearsonr(r.y, r.oof)[0])
        assert r.metrics["auc"].value == pytest.approx(roc_auc(r.y > 0.1, r.oof))
        for m in r.metrics.values():
            assert m.low <= m.value <= m.high
    assert "pearson" in rep.summary()
    json.dumps(rep.to_dict())


def test_cross_validate_keeps_groups_out_of_their_own_training_folds():
    # The label is noise per group and the only feature identifies the group: a model that saw
    # a group's other samples in training would predict them perfectly. With grouped folds it
    # cannot, and the out-of-fold correlation stays near zero.
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(60), 5)
    X = groups[:, None].astype(np.float32)
    y = {"cer": np.repeat(rng.random(60), 5)}
    model = QualityPredictor("ids", "fake-ocr", targets=("cer",),
                             lgbm_params=dict(FAST, learning_rate=0.2, min_data_in_leaf=3))
    grouped = model.cross_validate(X, y, groups, n_bootstrap=10)
    leaky = model.cross_validate(X, y, None, n_bootstrap=10)  # every sample its own group
    assert abs(grouped.targets["cer"].metrics["pearson"].value) < 0.4
    assert leaky.targets["cer"].metrics["pearson"].value > 0.8


def test_input_validation():
    X, y, groups = synthetic(n=40)
    model = QualityPredictor("synthetic", "fake-ocr", lgbm_params=FAST)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(X)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(X, {"cer": y["cer"] * 3, "wer": y["wer"]})
    with pytest.raises(ValueError, match="wer"):
        model.fit(X, {"cer": y["cer"]})
    with pytest.raises(ValueError, match="shape"):
        model.fit(X, {"cer": y["cer"][:10], "wer": y["wer"]})
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        model.fit(bad, y)
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    nan = X.copy()
    nan[:, 2] = np.nan  # NaN is missing, allowed
    assert np.isfinite(model.predict(nan)["cer"]).all()
    with pytest.raises(ValueError, match="once"):
        QualityPredictor("a", "b", lgbm_params={"n_estimators": 5, "num_trees": 6})
    with pytest.raises(ValueError, match="targets"):
        QualityPredictor("a", "b", targets=("cer", "cer"))
    assert QualityPredictor("a", "b", lgbm_params={"num_rounds": 7}).num_rounds == 7


# -- model files --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    X, y, groups = synthetic(n=120, seed=2)
    model = QualityPredictor("synthetic", "tesseract", lgbm_params=FAST,
                             engine_config={"version": "5.3", "lang": "eng", "psm": 3, "dpi": 150},
                             feature_names=[f"feat{i}" for i in range(6)])
    return model.fit(X, y, groups), X


def test_save_load_round_trip(tmp_path, fitted):
    model, X = fitted
    path = tmp_path / "model.colkq"
    model.save(path)
    assert no_temp_files(tmp_path)
    back = QualityPredictor.load(path)
    a, b = model.predict(X), back.predict(X)
    for t in ("cer", "wer"):
        assert np.array_equal(a[t], b[t])
    assert back.engine == "tesseract" and back.engine_config["psm"] == 3
    assert back.feature_names == model.feature_names and back.targets == ("cer", "wer")
    assert back.training == model.training and back.num_rounds == 60
    assert back.lgbm_params == model.lgbm_params
    head = json.loads(path.read_bytes()[len(MAGIC):].split(b"\n", 1)[0])
    assert head["format_version"] == 1 and head["encoder"]["name"] == "synthetic"
    assert head["colkern_version"] and head["training"]["n_groups"] == 40
    model.save(path)  # overwrite in place
    assert np.array_equal(QualityPredictor.load(path).predict(X)["cer"], a["cer"])


def corrupt_variants(data: bytes):
    nl = data.index(b"\n", len(MAGIC))
    head = json.loads(data[len(MAGIC):nl])
    newer = dict(head, format_version=2)
    flipped = bytearray(data)
    flipped[-50] ^= 0x01
    bad_count = dict(head, feature_names=head["feature_names"][:-1])
    return {
        "foreign png": (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a colkern quality model"),
        "raw lightgbm": (data[nl + 1:], "not a colkern quality model"),
        "truncated": (data[:-100], "truncated"),
        "no header end": (data[:len(MAGIC) + 10], "truncated"),
        "flipped byte": (bytes(flipped), "checksum"),
        "bad json": (MAGIC + b"{nope\n" + data[nl + 1:], "bad header"),
        "newer version": (MAGIC + json.dumps(newer).encode() + data[nl:], "newer"),
        "missing key": (MAGIC + json.dumps({"format_version": 1}).encode() + data[nl:], "bad header"),
        "trailing bytes": (data + b"x", "unexpected bytes"),
        "feature count": (MAGIC + json.dumps(bad_count).encode() + data[nl:], "features"),
    }


def test_corrupt_foreign_and_newer_files_raise(tmp_path, fitted):
    model, _ = fitted
    path = tmp_path / "good.colkq"
    model.save(path)
    for name, (blob, match) in corrupt_variants(path.read_bytes()).items():
        bad = tmp_path / f"{name.replace(' ', '_')}.colkq"
        bad.write_bytes(blob)
        with pytest.raises(ModelFormatError, match=match):
            QualityPredictor.load(bad)
    assert issubclass(ModelFormatError, ValueError)
    with pytest.raises(FileNotFoundError):
        QualityPredictor.load(tmp_path / "missing.colkq")
    with pytest.raises(RuntimeError, match="not fitted"):
        QualityPredictor("a", "b").save(tmp_path / "unfitted.colkq")


def test_save_scatter(tmp_path):
    rng = np.random.default_rng(6)
    y = rng.random(50)
    out = tmp_path / "scatter.png"
    save_scatter(y, np.clip(y + rng.normal(0, 0.1, 50), 0, 1), out, "tesseract CER")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (500, 500)
    assert no_temp_files(tmp_path)
    with pytest.raises(ValueError, match="one length"):
        save_scatter(y, y[:3], out)


# -- images end to end, quality maps ------------------------------------------------------------

def text_page(width, height, seed, size=13):
    rng = np.random.default_rng(seed)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    for y in range(6, height - size, size + 4):
        draw.text((6, y), " ".join(rng.choice(WORDS, 14)), fill=0, font=font)
    return img


@pytest.fixture(scope="module")
def blur_model():
    """A tiny page model on synthetic pages: label = blur radius / 2 (0 sharp .. 1 unreadable)."""
    rng = np.random.default_rng(0)
    enc = PixelPatchEncoder(16)
    images, labels = [], []
    for i in range(48):
        radius = rng.uniform(0.0, 2.0)
        images.append(text_page(128, 128, seed=i).filter(ImageFilter.GaussianBlur(radius)))
        labels.append(radius / 2.0)
    model = QualityPredictor.for_encoder(enc, "blur", targets=("cer",), lgbm_params=FAST)
    model.fit(page_features(images, enc), {"cer": np.array(labels)})
    return model, enc


def test_predict_images_checks_the_encoder(blur_model):
    model, enc = blur_model
    pages = [text_page(128, 128, seed=100), text_page(128, 128, seed=101).filter(ImageFilter.GaussianBlur(1.8))]
    pred = model.predict_images(pages, enc)["cer"]
    assert np.array_equal(pred, model.predict(page_features(pages, enc))["cer"])
    assert pred[1] > pred[0] + 0.3
    with pytest.raises(ValueError, match="trained on 'pixel' features"):
        model.predict_images(pages, PixelPatchEncoder(8))


def test_quality_map_finds_the_degraded_region(blur_model, tmp_path):
    model, enc = blur_model
    page = np.asarray(text_page(256, 256, seed=200)).copy()
    page[:, :128] = np.asarray(Image.fromarray(page[:, :128]).filter(ImageFilter.GaussianBlur(1.8)))
    pf = enc.encode(page)
    qmap = patch_quality_map(model, pf, "cer", window=5)
    assert qmap.shape == pf.grid == (16, 16) and qmap.dtype == torch.float32
    left, right = qmap[:, :6], qmap[:, 10:]  # away from the seam in the middle
    assert float(left.nanmean()) > float(right.nanmean()) + 0.3
    assert float(left.min()) > float(right.max())
    out = tmp_path / "overlay.png"
    save_overlay(page, qmap, out, patch=pf.patch)
    with Image.open(out) as im:
        assert im.size == (256, 256) and im.mode == "RGB"
        # Overlay colour: red over the blurred half, green over the sharp one.
        px = np.asarray(im).astype(int)
    assert px[:, :96, 0].mean() - px[:, :96, 1].mean() > px[:, 160:, 0].mean() - px[:, 160:, 1].mean() + 20
    assert no_temp_files(tmp_path)


def test_window_features_agree_with_page_pooling(blur_model):
    model, enc = blur_model
    pf = enc.encode(text_page(100, 70, seed=300))  # 5 x 7 grid, mirrored edge patches
    # A window covering the whole grid from every cell pools the whole page.
    X, n_content = window_features(pf, window=15, content=True)
    page_x = pool_features([pf], content=True)
    torch.testing.assert_close(X, page_x.expand_as(X), equal_nan=True, rtol=1e-5, atol=1e-6)
    assert torch.equal(n_content, pf.content.sum().expand(35))
    # A 1 x 1 window is the patch itself: mean = max = the features, std 0.
    X1, _ = window_features(pf, window=1, content=True, globals=False)
    D = pf.dim
    torch.testing.assert_close(X1[:, :D], pf.features)
    torch.testing.assert_close(X1[:, D:2 * D], pf.features)
    assert float(X1[:, 2 * D:3 * D].abs().max()) == 0.0
    with pytest.raises(ValueError, match="odd"):
        window_features(pf, window=4)
    with pytest.raises(ValueError, match="not 'wer'"):
        patch_quality_map(model, pf, "wer")


def test_blank_windows_are_nan_and_left_uncoloured(blur_model, tmp_path):
    model, enc = blur_model
    page = np.full((160, 160), 255, np.uint8)
    page[:48, :] = np.asarray(text_page(160, 48, seed=400))  # text in the top 3 patch rows
    pf = enc.encode(page)
    qmap = patch_quality_map(model, pf, window=3)
    assert torch.isfinite(qmap[:3]).all() and torch.isnan(qmap[6:]).all()
    img = overlay_image(page, qmap, patch=pf.patch)
    px = np.asarray(img)
    assert img.size == (160, 160)
    assert (px[112:] == 255).all()  # blank paper under NaN cells: untouched
    assert not (px[:40] == np.asarray(Image.fromarray(page).convert("RGB"))[:40]).all()


def test_overlay_sizes_and_stretched_grids(tmp_path):
    # A ColPali-like 4 x 4 grid stretched over a 300 x 200 page; and a drop-edge grid that
    # does not reach the page's right and bottom margins.
    q = torch.linspace(0, 1, 16).view(4, 4)
    page = Image.new("RGB", (300, 200), "white")
    out = tmp_path / "stretched.png"
    save_overlay(page, q, out)
    with Image.open(out) as im:
        assert im.size == (300, 200)
        px = np.asarray(im).astype(int)
    assert px[10, 10, 1] > px[10, 10, 0]  # q = 0 top-left: green
    assert px[190, 290, 0] > px[190, 290, 1]  # q = 1 bottom-right: red
    partial = overlay_image(np.full((40, 40), 255, np.uint8), torch.zeros(2, 2), patch=16)
    px = np.asarray(partial)
    assert partial.size == (40, 40) and (px[35:, :] == 255).all() and not (px[:32, :32] == 255).all()
    with pytest.raises(ValueError, match="qmap"):
        overlay_image(page, torch.zeros(4))
    with pytest.raises(ValueError, match="vmax"):
        overlay_image(page, q, vmax=0)
