"""colkern.quality.encoders: the pixel patch encoder, the ColPali adapter and page pooling."""
import io
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

import colkern
from colkern.quality.encoders import (
    PIXEL_FEATURES,
    ColPaliFeatureEncoder,
    PatchFeatures,
    PixelPatchEncoder,
    page_features,
    pool_features,
    pooled_feature_names,
    to_gray,
)

torch.set_num_threads(1)

COL = {name: i for i, name in enumerate(PIXEL_FEATURES)}
WORDS = "invoice total amount date quality paper print scan order receipt number customer".split()


def text_page(width=192, height=192, seed=0, size=13) -> Image.Image:
    """Black text lines on white paper, grayscale."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    for y in range(4, height - size, size + 4):
        draw.text((4, y), " ".join(rng.choice(WORDS, 16)), fill=0, font=font)
    return img


# -- shapes, grids, inputs ----------------------------------------------------------------------

@pytest.mark.parametrize("size, patch, edge, grid", [
    ((100, 70), 16, "pad", (5, 7)),      # (W, H): ceil(70/16) rows, ceil(100/16) cols
    ((100, 70), 16, "drop", (4, 6)),
    ((64, 48), 16, "pad", (3, 4)),       # exact multiples: pad and drop agree
    ((64, 48), 16, "drop", (3, 4)),
    ((10, 5), 16, "pad", (1, 1)),        # smaller than one patch: mirrored up to one patch
    ((33, 17), 8, "pad", (3, 5)),
    ((1, 1), 4, "pad", (1, 1)),
])
def test_grid_and_shapes(size, patch, edge, grid):
    enc = PixelPatchEncoder(patch, edge=edge)
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8))
    pf = enc.encode(img)
    assert pf.grid == grid and enc.grid_for(size[1], size[0]) == grid
    assert pf.features.shape == (grid[0] * grid[1], len(PIXEL_FEATURES))
    assert pf.features.dtype == torch.float32 and pf.patch == patch
    assert pf.content.dtype == torch.bool and pf.content.shape == (grid[0] * grid[1],)
    assert torch.isfinite(pf.features).all()
    assert enc.feature_names() == list(PIXEL_FEATURES)


def test_drop_rejects_image_smaller_than_a_patch():
    with pytest.raises(ValueError, match="smaller than one 16-pixel patch"):
        PixelPatchEncoder(16, edge="drop").encode(np.zeros((10, 40), np.uint8))


def test_drop_equals_encoding_the_cropped_image():
    page = text_page(200, 150)
    dropped = PixelPatchEncoder(16, edge="drop").encode(page)
    cropped = PixelPatchEncoder(16, edge="pad").encode(page.crop((0, 0, 192, 144)))
    # Filters replicate the border, so only the last row / column of patches may differ.
    # (OpenCV's SIMD paths depend on alignment: last-bit differences in the gradients.)
    a = dropped.features.view(9, 12, -1)[:-1, :-1]
    b = cropped.features.view(9, 12, -1)[:-1, :-1]
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_pad_mirrors_instead_of_inventing_paper():
    # A black 20 x 20 image padded to 32 x 32: mirrored black, so no edges and no contrast; a
    # white (paper) pad would put strong edges into the last row and column of patches.
    pf = PixelPatchEncoder(16).encode(np.zeros((20, 20), np.uint8))
    f = pf.features
    for name in ("contrast", "grad_max", "lap_var", "noise_sigma", "std"):
        assert float(f[:, COL[name]].abs().max()) == 0.0, name
    assert torch.equal(f[:, COL["ink_frac"]], torch.ones(4))


def test_input_kinds_agree():
    enc = PixelPatchEncoder(16)
    page = text_page(120, 90)
    ref = enc.encode(page).features

    def same(x):  # last-bit tolerance: OpenCV's SIMD paths depend on the buffer's alignment
        torch.testing.assert_close(enc.encode(x).features, ref, rtol=1e-6, atol=1e-6)

    arr = np.asarray(page)
    same(arr)
    same(arr[:, :, None])
    same(arr.astype(np.float32) / 255.0)
    rgb = np.repeat(arr[:, :, None], 3, axis=2)  # gray stored as RGB: same luma
    same(Image.fromarray(rgb))
    torch.testing.assert_close(enc.encode(rgb).features, ref, rtol=1e-4, atol=1e-5)
    # Transparent pixels are paper (white), not black.
    rgba = np.zeros((32, 32, 4), np.uint8)
    assert float(to_gray(Image.fromarray(rgba, "RGBA")).min()) == 1.0
    assert float(to_gray(rgba).min()) == 1.0


@pytest.mark.parametrize("bad, err, match", [
    (np.zeros((8, 8), np.int32), ValueError, "pixel dtype"),
    (np.full((8, 8), 1.5, np.float32), ValueError, r"\[0, 1\]"),
    (np.zeros(8, np.uint8), ValueError, "shape"),
    (np.zeros((0, 8), np.uint8), ValueError, "empty"),
    (np.zeros((4, 4, 2), np.uint8), ValueError, "shape"),
    ([[0, 1], [1, 0]], TypeError, "PIL.Image or a numpy array"),
])
def test_bad_images(bad, err, match):
    with pytest.raises(err, match=match):
        PixelPatchEncoder(4).encode(bad)


@pytest.mark.parametrize("kw, match", [({"patch": 2}, "patch"), ({"patch": 16.0}, "patch"),
                                       ({"edge": "crop"}, "edge"), ({"content_threshold": 0.0}, "content_threshold")])
def test_bad_encoder_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        PixelPatchEncoder(**kw)


# -- feature values -----------------------------------------------------------------------------

def test_intensity_statistics_match_numpy():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (48, 80), dtype=np.uint8)
    f = PixelPatchEncoder(16).encode(img).features
    x = img.astype(np.float64) / 255.0
    patches = x.reshape(3, 16, 5, 16).transpose(0, 2, 1, 3).reshape(15, 256)
    srt = np.sort(patches, axis=1)
    expect = {"mean": patches.mean(1), "std": patches.std(1),
              "p05": srt[:, round(0.05 * 255)], "p50": srt[:, round(0.5 * 255)], "p95": srt[:, round(0.95 * 255)],
              "ink_frac": (patches < 0.5).mean(1), "gray_frac": ((patches >= 0.2) & (patches <= 0.8)).mean(1)}
    for name, want in expect.items():
        np.testing.assert_allclose(f[:, COL[name]].numpy(), want, atol=2e-6, err_msg=name)
    np.testing.assert_allclose(f[:, COL["contrast"]].numpy(), expect["p95"] - expect["p05"], atol=2e-6)


def test_gradient_and_laplacian_on_known_images():
    # A horizontal ramp of slope 1/64 per pixel: Sobel / 8 gives the slope, the Laplacian is 0
    # away from the replicated borders.
    ramp = np.tile(np.arange(64, dtype=np.float32) / 64.0, (32, 1))
    f = PixelPatchEncoder(16).encode(ramp).features.view(2, 4, -1)
    inner = f[:, 1:3]  # patches not touching the left / right border
    np.testing.assert_allclose(inner[..., COL["grad_mean"]].numpy(), 1 / 64, rtol=1e-4)
    np.testing.assert_allclose(inner[..., COL["lap_abs_mean"]].numpy(), 0.0, atol=1e-6)
    # A sharp vertical step from black to white inside a patch.
    step = np.ones((16, 16), np.float32)
    step[:, :8] = 0.0
    g = PixelPatchEncoder(16).encode(step).features[0]
    assert float(g[COL["grad_max"]]) == pytest.approx(0.5)  # central difference of a unit step
    assert float(g[COL["ink_frac"]]) == pytest.approx(0.5)
    assert float(g[COL["edge_sharpness"]]) == pytest.approx(0.5)


def test_noise_estimate_recovers_gaussian_sigma():
    rng = np.random.default_rng(4)
    for sigma in (0.02, 0.05):
        img = np.clip(0.5 + rng.normal(0, sigma, (128, 128)), 0, 1).astype(np.float32)
        est = PixelPatchEncoder(16).encode(img).features[:, COL["noise_sigma"]].mean()
        assert float(est) == pytest.approx(sigma, rel=0.1)


def test_blur_lowers_laplacian_energy_in_text_patches():
    enc = PixelPatchEncoder(16)
    page = text_page()
    sharp = enc.encode(page)
    blurred = enc.encode(page.filter(ImageFilter.GaussianBlur(1.5)))
    text = sharp.content
    assert int(text.sum()) > 20
    for name in ("lap_var", "lap_abs_mean", "edge_sharpness", "hf_ratio"):
        s = sharp.features[text, COL[name]].mean()
        b = blurred.features[text, COL[name]].mean()
        assert float(b) < 0.6 * float(s), name
    assert float(blurred.features[text, COL["gray_frac"]].mean()) > float(sharp.features[text, COL["gray_frac"]].mean())


def test_noise_raises_noise_estimate_on_paper():
    enc = PixelPatchEncoder(16)
    page = Image.new("L", (192, 192), 255)
    page.paste(text_page(192, 96), (0, 0))  # text above, blank paper below
    arr = np.asarray(page).astype(np.float32) / 255.0
    noisy = np.clip(arr + np.random.default_rng(5).normal(0, 0.08, arr.shape), 0, 1).astype(np.float32)
    clean, dirty = enc.encode(arr), enc.encode(noisy)
    paper = ~clean.content
    assert int(paper.sum()) > 5
    c = clean.features[paper, COL["noise_sigma"]].mean()
    d = dirty.features[paper, COL["noise_sigma"]].mean()
    assert float(d) > 0.03 and float(d) > 5 * float(c)  # clipping at white halves the noise


def test_jpeg_raises_blockiness():
    page = text_page(256, 256).filter(ImageFilter.GaussianBlur(0.8))
    buf = io.BytesIO()
    page.save(buf, format="JPEG", quality=8)
    jpeg = Image.open(io.BytesIO(buf.getvalue()))
    enc = PixelPatchEncoder(16)
    b_png = enc.encode(page).features[:, COL["blockiness"]].mean()
    b_jpg = enc.encode(jpeg).features[:, COL["blockiness"]].mean()
    assert float(b_jpg) > float(b_png) + 0.005


def test_content_mask_marks_text_not_paper():
    enc = PixelPatchEncoder(16)
    blank = enc.encode(np.full((64, 64), 240, np.uint8))
    assert not bool(blank.content.any())
    page = np.full((64, 64), 255, np.uint8)
    page[20:28, 20:44] = 0  # one dark bar: rows 1, cols 1-2
    c = enc.encode(page).content.view(4, 4)
    expect = torch.zeros(4, 4, dtype=torch.bool)
    expect[1, 1:3] = True
    assert torch.equal(c, expect)


def test_full_page_encodes():
    pf = PixelPatchEncoder(16).encode(text_page(1200, 1700, size=18))
    assert pf.grid == (107, 75) and pf.features.shape == (8025, 17)
    assert 0.2 < float(pf.content.float().mean()) < 0.95


# -- pooling ------------------------------------------------------------------------------------

def random_pages(seed=0, D=5, sizes=((3, 4), (1, 1), (2, 7), (5, 2))):
    g = torch.Generator().manual_seed(seed)
    pages = []
    for i, (r, c) in enumerate(sizes):
        n = r * c
        content = torch.rand(n, generator=g) < 0.5
        if i == 1:
            content[:] = False  # a page without any content patch
        pages.append(PatchFeatures(torch.randn(n, D, generator=g), (r, c), 16, content))
    return pages


def test_pool_features_equals_patch_pool_ref():
    pages = random_pages()
    D = 5
    X = pool_features(pages)
    assert X.shape == (4, 6 * D + 2) and X.dtype == torch.float32
    assert len(pooled_feature_names([f"f{i}" for i in range(D)])) == X.shape[1]
    ref_all = colkern.patch_pool_ref([p.features for p in pages]).float()
    ref_content = colkern.patch_pool_ref([p.features[p.content] for p in pages]).float()
    torch.testing.assert_close(X[:, :3 * D], ref_all, equal_nan=True, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(X[:, 3 * D:6 * D], ref_content, equal_nan=True, rtol=1e-5, atol=1e-6)
    assert torch.isnan(X[1, 3 * D:6 * D]).all()  # no content patch: content columns missing
    n = torch.tensor([p.n_patches for p in pages], dtype=torch.float32)
    frac = torch.tensor([float(p.content.float().mean()) for p in pages])
    torch.testing.assert_close(X[:, -2], torch.log2(n))
    torch.testing.assert_close(X[:, -1], frac)


def test_pool_features_options_and_names():
    pages = random_pages()
    names = pooled_feature_names(["a", "b"], content=False, globals=False)
    assert names == ["mean:a", "mean:b", "max:a", "max:b", "std:a", "std:b"]
    X = pool_features(pages, content=False, globals=False)
    torch.testing.assert_close(X, colkern.patch_pool_ref([p.features for p in pages]).float())
    # Pages without content masks (ColPali) pool over all patches; content_frac is NaN.
    bare = [PatchFeatures(p.features, p.grid, None) for p in pages]
    Y = pool_features(bare)
    assert Y.shape == (4, 3 * 5 + 2) and torch.isnan(Y[:, -1]).all()
    with pytest.raises(ValueError, match="content=False"):
        pool_features(bare, content=True)
    with pytest.raises(ValueError, match="some pages have content masks"):
        pool_features([pages[0], bare[1]])
    with pytest.raises(ValueError, match="features"):
        pool_features([pages[0], PatchFeatures(torch.zeros(2, 3), (1, 2), 16)])
    with pytest.raises(ValueError, match="empty"):
        pool_features([])


def test_patch_features_validates():
    with pytest.raises(ValueError, match="grid"):
        PatchFeatures(torch.zeros(6, 2), (2, 2), 16)
    with pytest.raises(ValueError, match="float32"):
        PatchFeatures(torch.zeros(4, 2, dtype=torch.float64), (2, 2), 16)
    with pytest.raises(ValueError, match="content"):
        PatchFeatures(torch.zeros(4, 2), (2, 2), 16, torch.ones(3, dtype=torch.bool))


def test_page_features_is_encode_then_pool():
    enc = PixelPatchEncoder(16)
    pages = [text_page(96, 64, seed=s) for s in range(3)]
    X = page_features(pages, enc)
    torch.testing.assert_close(X, pool_features(enc.encode_many(pages), content=True), equal_nan=True)
    assert X.shape[1] == len(pooled_feature_names(enc.feature_names()))


# -- the ColPali adapter ------------------------------------------------------------------------

class FakeColPali:
    """Stands in for colkern.colpali's encoder: a 2 x 3 grid, 8-d projection, 5-d hidden states."""

    model_name = "fake-colpali"

    def __init__(self, with_hidden=True):
        self.calls = []
        self.with_hidden = with_hidden

    def encode_images(self, images, hidden_states=False):
        self.calls.append((len(images), hidden_states))
        out = []
        for im in images:
            v = float(np.asarray(im).mean())
            emb = torch.full((6, 8), v, dtype=torch.bfloat16)
            hid = torch.arange(30, dtype=torch.float32).view(6, 5) + v if hidden_states and self.with_hidden else None
            out.append(SimpleNamespace(embeddings=emb, hidden=hid, grid=(2, 3)))
        return out


def test_colpali_adapter():
    fake = FakeColPali()
    images = [np.full((4, 4), i, np.uint8) for i in range(5)]
    proj = ColPaliFeatureEncoder(fake, dim=8, batch_size=2)
    pages = proj.encode_many(images)
    assert [c for c in fake.calls] == [(2, False), (2, False), (1, False)]
    assert len(pages) == 5 and pages[3].features.dtype == torch.float32
    assert pages[3].features.shape == (6, 8) and pages[3].grid == (2, 3) and pages[3].patch is None
    assert float(pages[3].features[0, 0]) == 3.0 and pages[3].content is None
    assert proj.name == "colpali-proj" and proj.feature_names()[:2] == ["proj0", "proj1"]
    assert proj.params()["model"] == "fake-colpali"

    hid = ColPaliFeatureEncoder(fake, use_hidden=True)
    with pytest.raises(RuntimeError, match="unknown"):
        hid.feature_names()
    p = hid.encode(images[2])
    assert fake.calls[-1] == (1, True)
    assert p.features.shape == (6, 5) and float(p.features[1, 0]) == 7.0
    assert hid.name == "colpali-hidden" and len(hid.feature_names()) == 5
    X = page_features(images, hid)  # no content masks: all-patch pooling + globals
    assert X.shape == (5, 3 * 5 + 2)


def test_colpali_adapter_errors():
    with pytest.raises(TypeError, match="encode_images"):
        ColPaliFeatureEncoder(object())
    with pytest.raises(ValueError, match="no hidden states"):
        ColPaliFeatureEncoder(FakeColPali(with_hidden=False), use_hidden=True).encode(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="feature dim"):
        ColPaliFeatureEncoder(FakeColPali(), dim=16).encode(np.zeros((2, 2), np.uint8))


def test_colpali_adapter_on_the_tiny_model():
    """The adapter on colkern.colpali's real encoder (tiny random-weight ColPali, 4 x 4 grid)."""
    from colkern.colpali._torchvision_compat import apply_torchvision_shim

    apply_torchvision_shim()
    pytest.importorskip("colpali_engine")
    from colkern.colpali import ColPaliEncoder
    from colkern.testing import make_tiny_colpali

    model, processor = make_tiny_colpali(hidden_size=64)
    encoder = ColPaliEncoder(model, processor, batch_size=2)
    pages = [np.full((60, 50), 40 * i, np.uint8) for i in range(3)] + [text_page(80, 60)]
    hid = ColPaliFeatureEncoder(encoder, use_hidden=True)
    proj = ColPaliFeatureEncoder(encoder)
    assert len(hid.feature_names()) == 64 and len(proj.feature_names()) == 128
    feats = hid.encode_many(pages)
    assert [f.features.shape for f in feats] == [(16, 64)] * 4 and feats[0].grid == (4, 4)
    direct = encoder.encode_images([Image.fromarray(pages[1])], hidden_states=True)[0]
    torch.testing.assert_close(feats[1].features, direct.hidden)
    X = page_features(pages, proj)
    assert X.shape == (4, 3 * 128 + 2) and torch.isfinite(X[:, :-1]).all()


def test_line_encoder_reads_skew_bending_and_shadows():
    """LinePatchEncoder: the pooled line direction follows a skew's recorded angle, a warp spreads
    the directions, a shadow pushes the paper under the page's Otsu threshold; it concatenates
    with the glyph encoder and a model file rebuilds it."""
    from colkern.quality.degrade import apply_steps
    from colkern.quality.encoders import LINE_FEATURES, LinePatchEncoder
    from colkern.quality.pipeline import make_encoder
    from colkern.quality.synth import generate_page

    page = generate_page(7, lang="eng", layout="prose", dpi=150).image.convert("L")
    page.info["dpi"] = (150, 150)
    enc = LinePatchEncoder()
    col = {n: i for i, n in enumerate(LINE_FEATURES)}

    def direction(img):
        f = enc.encode(img).features.numpy()
        lines = f[:, col["energy"]] > np.percentile(f[:, col["energy"]], 70)  # the text, not the margins
        s, c = f[lines, col["sin2"]], f[lines, col["cos2"]]
        return np.degrees(0.5 * np.arctan2(s.mean(), c.mean())), np.hypot(s.mean(), c.mean()), f

    flat, _, f0 = direction(page)
    assert abs(flat) < 1.0 and f0.shape[1] == len(LINE_FEATURES)
    for s in (0.5, 1.0):
        img, rec = apply_steps(page, [("skew", s)], seed=2)
        angle = rec[0]["params"]["angle_deg"]
        got, _, _ = direction(img)
        assert abs(abs(got) - abs(angle)) < 1.0 and np.sign(got) == -np.sign(angle), (angle, got)
    _, _, bent = direction(apply_steps(page, [("warp", 1.0)], seed=2)[0])
    text0 = f0[:, col["energy"]] > np.percentile(f0[:, col["energy"]], 70)
    text1 = bent[:, col["energy"]] > np.percentile(bent[:, col["energy"]], 70)
    # bent lines: the local directions disagree and leave the axes
    assert bent[text1, col["sin2"]].std() > 1.3 * f0[text0, col["sin2"]].std()
    assert bent[text1, col["line_dev"]].mean() > 2 * f0[text0, col["line_dev"]].mean()
    shaded = enc.encode(apply_steps(page, [("shadow", 1.0)], seed=4)[0]).features.numpy()
    assert f0[:, col["otsu_margin"]].min() > 0.2 and shaded[:, col["otsu_margin"]].min() < 0.0
    assert shaded[:, col["paper_rel"]].min() < 0.6 <= f0[:, col["paper_rel"]].min()
    both = make_encoder("concat", {"parts": [{"name": "glyph", "params": {"patch": 32}},
                                             {"name": "lines", "params": enc.params()}]})
    pf = both.encode(page)
    assert pf.features.shape[1] == len(both.feature_names()) and pf.content is not None
    with pytest.raises(ValueError, match="char_sigma"):
        LinePatchEncoder(char_sigma=0)


def test_skew_encoder_measures_the_recorded_angle():
    """SkewPatchEncoder: the page's |skew| is the capture's recorded angle within 0.3 degrees for
    horizontal English and vertical Japanese pages, tiles agree on a plain skew and disagree on a
    warped page, a blank page reads as straight with no line structure; bad parameters name
    themselves; it concatenates with the glyph encoder and a model file rebuilds it."""
    from colkern.quality.degrade import apply_steps
    from colkern.quality.encoders import SKEW_FEATURES, SkewPatchEncoder
    from colkern.quality.encoders.skew import text_angle
    from colkern.quality.pipeline import make_encoder
    from colkern.quality.synth import generate_page

    enc = SkewPatchEncoder()
    col = {n: i for i, n in enumerate(SKEW_FEATURES)}
    for lang, layout in (("eng", "prose"), ("jpn", "vertical")):
        page = generate_page(3, lang=lang, layout=layout, dpi=150).image.convert("L")
        ys, xs = np.nonzero(np.asarray(page) < 128)
        assert text_angle(ys, xs)[2] == (layout == "vertical")  # rows, or tategaki's columns
        f0 = enc.encode(page).features.numpy()
        assert f0.shape == (int(np.prod(enc.grid_for(page.height, page.width))), len(SKEW_FEATURES))
        assert f0[0, col["page_skew"]] <= 0.2 and f0[0, col["page_peak"]] > 1.2, (layout, f0[0])
        for s in (0.3, 1.0):
            img, rec = apply_steps(page, [("skew", s)], seed=5)
            angle = abs(rec[0]["params"]["angle_deg"])
            f = enc.encode(img).features.numpy()
            assert abs(f[0, col["page_skew"]] - angle) <= 0.3, (layout, angle, f[0])
            assert (f[:, col["page_skew"]] == f[0, col["page_skew"]]).all()  # the page's value on every patch
            # the lines' length along their direction, and how far one climbs over it
            side = img.height if layout == "vertical" else img.width
            assert 0.3 * side < f[0, col["page_width"]] < side
            assert f[0, col["page_drift"]] == pytest.approx(
                f[0, col["page_width"]] * np.tan(np.radians(f[0, col["page_skew"]])), rel=1e-4)
            assert abs(np.median(f[:, col["tile_skew"]]) - angle) <= 0.5 and np.median(f[:, col["tile_bend"]]) <= 0.5
    page = generate_page(3, lang="eng", layout="prose", dpi=150).image.convert("L")
    flat = enc.encode(page).features.numpy()
    warped = enc.encode(apply_steps(page, [("warp", 1.0)], seed=2)[0]).features.numpy()
    assert warped[:, col["tile_bend"]].mean() > flat[:, col["tile_bend"]].mean() + 1.0
    blank = enc.encode(np.full((300, 200), 255, np.uint8)).features.numpy()
    assert (blank[:, col["page_skew"]] == 0).all() and (blank[:, col["page_peak"]] == 1).all()
    assert (blank[:, col["page_drift"]] == 0).all()
    for kwargs, arg in (({"patch": 2}, "patch"), ({"tile": 0}, "tile"), ({"max_deg": 0.5}, "max_deg")):
        with pytest.raises(ValueError, match=arg):
            SkewPatchEncoder(**kwargs)
    both = make_encoder("concat", {"parts": [{"name": "glyph", "params": {"patch": 32}},
                                             {"name": "skew", "params": enc.params()}]})
    pf = both.encode(page)
    assert pf.features.shape[1] == len(both.feature_names()) and pf.content is not None
    assert make_encoder("skew", enc.params()).params() == enc.params()


def test_border_encoder_finds_the_scanner_band():
    """BorderPatchEncoder: a clean page has no border; the scanner's border op is found on the
    edges it names, covering the share of the page it painted (within 1%), at its tone; the
    patches along it are covered and their neighbours near it; a dark box inside the page and a
    rule touching one edge are not a border; bad parameters name themselves; it concatenates with
    the glyph encoder and a model file rebuilds it."""
    from colkern.quality.degrade import apply_steps
    from colkern.quality.encoders import BORDER_FEATURES, BorderPatchEncoder
    from colkern.quality.pipeline import make_encoder
    from colkern.quality.synth import generate_page

    enc = BorderPatchEncoder()
    col = {n: i for i, n in enumerate(BORDER_FEATURES)}
    page = generate_page(3, lang="eng", layout="prose", dpi=150).image.convert("L")
    clean = enc.encode(page).features.numpy()
    assert clean.shape == (int(np.prod(enc.grid_for(page.height, page.width))), len(BORDER_FEATURES))
    assert (clean[:, col["cover"]] == 0).all() and (clean[:, col["near"]] == 0).all()
    assert clean[0, col["page_frac"]] == 0 and clean[0, col["page_edges"]] == 0 and clean[0, col["page_gap"]] == 1
    grey = np.asarray(page).astype(np.int16)
    rows, cols = enc.grid_for(page.height, page.width)
    for seed in range(4):
        img, rec = apply_steps(page, [("border", 1.0)], seed=seed)
        params = rec[0]["params"]
        band = np.abs(np.asarray(img).astype(np.int16) - grey) > 8        # the pixels the op painted
        f = enc.encode(img).features.numpy()
        assert (f[:, col["page_frac"]] == f[0, col["page_frac"]]).all()  # the page's value on every patch
        assert f[0, col["page_edges"]] == len(params["edges"]), (params, f[0])
        assert abs(f[0, col["page_frac"]] - band.mean()) < 0.01, (params, band.mean(), f[0])
        assert abs(f[0, col["page_tone"]] - params["tone"] / 255.0) < 0.05, (params, f[0])
        cover = f[:, col["cover"]].reshape(rows, cols)
        outer = {"top": cover[0], "bottom": cover[-1], "left": cover[:, 0], "right": cover[:, -1]}
        for edge, line in outer.items():
            assert (np.median(line) > 0.5) == (edge in params["edges"]), (edge, params)
        assert cover[rows // 2, cols // 2] == 0
        near = f[:, col["near"]].reshape(rows, cols)
        assert near.sum() > (cover > 0.5).sum() and (near[cover > 0.5] == 1).all()
    boxed = np.asarray(page).copy()
    h, w = boxed.shape
    boxed[h // 3:h // 2, w // 4:w // 2] = 20             # a dark figure inside the page
    boxed[:h // 6, :40] = 20                             # a rule at the margin along a sixth of the left edge
    f = enc.encode(boxed).features.numpy()
    assert f[0, col["page_edges"]] == 0 and (f[:, col["cover"]] == 0).all(), f[0]
    assert (enc.encode(np.full((300, 200), 255, np.uint8)).features.numpy()[:, col["page_frac"]] == 0).all()
    for kwargs, arg in (({"patch": 2}, "patch"), ({"min_run": 0}, "min_run"), ({"reach": -1}, "reach")):
        with pytest.raises(ValueError, match=arg):
            BorderPatchEncoder(**kwargs)
    both = make_encoder("concat", {"parts": [{"name": "glyph", "params": {"patch": 32}},
                                             {"name": "border", "params": enc.params()}]})
    pf = both.encode(img)
    assert pf.features.shape[1] == len(both.feature_names()) and pf.content is not None
    assert make_encoder("border", enc.params()).params() == enc.params()


def test_a_combination_spliced_onto_a_cached_one_equals_encoding_it_whole(tmp_path, monkeypatch):
    """benchmarks/quality_models.py adds the border encoder to the cached skew combination by
    splicing pooled columns (EXTENDED, _splice): the result must be the vector the shipped
    model's ConcatPatchEncoder computes from the page, column for column."""
    import importlib
    import sys

    from colkern.quality.encoders.pooling import pool_features
    from colkern.quality.synth import generate_page

    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    qm = importlib.import_module("quality_models")
    monkeypatch.setattr(qm, "_ENC", qm._base_encoders())   # not the workers' one-thread setup
    page = generate_page(4, lang="eng", layout="receipt", dpi=150).image.convert("L")
    bordered = np.asarray(page).copy()
    bordered[:, :40] = 30                                 # a lid's band, so the border columns are not all zero
    path = str(tmp_path / "page.png")
    Image.fromarray(bordered).save(path)
    for combo, (cached, added) in qm.EXTENDED.items():
        whole = pool_features([qm.combo_encoder(combo).encode(Image.open(path))]).numpy()[0]
        dims = len(qm._ENC[qm.COMBOS[cached][0]].feature_names()), len(qm._ENC[added].feature_names())
        spliced = qm._splice(qm._encode_one(path)[cached], qm._extend_one((path, combo)), *dims)
        assert spliced.shape == whole.shape and np.array_equal(spliced, whole, equal_nan=True), combo
        with pytest.raises(ValueError, match="lengths"):
            qm._splice(qm._encode_one(path)[cached][:-1], qm._extend_one((path, combo)), *dims)
    sys.modules.pop("quality_models", None)
    sys.modules.pop("quality_plans", None)


@pytest.mark.parametrize("cls, kw", [("GlyphPatchEncoder", {}), ("PixelPatchEncoder", {"edge": "pad"}),
                                     ("LinePatchEncoder", {}), ("SkewPatchEncoder", {}), ("BorderPatchEncoder", {})])
def test_tiled_encoders_share_grid_names_and_repr(cls, kw):
    """What TiledPatchEncoder gives every square-grid encoder: the padded grid the encoder's own
    output has, names as long as its rows, a repr that rebuilds it, and the patch check."""
    import colkern.quality.encoders as encoders

    enc = getattr(encoders, cls)(patch=24, **kw)
    page = text_page(width=170, height=300)
    pf = enc.encode(page)
    assert enc.grid_for(300, 170) == pf.grid == (13, 8)            # ceil(300 / 24), ceil(170 / 24)
    assert len(enc.feature_names()) == pf.features.shape[1] == len(enc.FEATURES)
    again = eval(repr(enc), {cls: getattr(encoders, cls)})
    assert type(again) is type(enc) and again.params() == enc.params()
    assert enc.encode_many([page])[0].features.equal(pf.features)
    with pytest.raises(ValueError, match=f"{cls}: patch must be an int >= 4, got 3"):
        getattr(encoders, cls)(patch=3)
