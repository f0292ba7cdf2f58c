"""GlyphPatchEncoder: connected components of the binarised page, per patch."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from colkern.quality.encoders import GLYPH_FEATURES, GlyphPatchEncoder, pool_features

I = {name: i for i, name in enumerate(GLYPH_FEATURES)}


def _page(w=320, h=200):
    """Black 3x3 squares on white, 10 px apart, in rows 20..90: 'glyphs' of known size."""
    im = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(im)
    for y in range(20, 90, 10):
        for x in range(20, w - 20, 10):
            d.rectangle([x, y, x + 2, y + 2], fill=0)
    return im


def test_counts_sizes_and_content_on_a_known_page():
    pf = GlyphPatchEncoder(patch=32).encode(_page())
    assert pf.grid == (7, 10) and pf.patch == 32 and pf.features.shape == (70, len(GLYPH_FEATURES))
    f = pf.features
    total = torch.expm1(f[:, I["log_components"]]).round().sum()
    assert int(total) == 7 * 28  # every square is one component, counted in exactly one patch
    glyph_cells = f[:, I["log_components"]] > 0
    assert torch.equal(pf.content, glyph_cells | (f[:, I["ink"]] > 0.005))
    assert torch.allclose(f[glyph_cells, I["mean_height"]], torch.tensor(3.0))
    assert torch.allclose(f[glyph_cells, I["mean_fill"]], torch.tensor(1.0))
    assert not pf.content[-1] and float(f[-1, I["log_components"]]) == 0.0  # blank bottom-right corner
    assert float(f[:, I["speck_frac"]].max()) == 0.0  # 9-pixel squares are not specks


def test_blur_merges_and_noise_breaks_glyphs():
    enc = GlyphPatchEncoder()
    clean = enc.encode(_page())
    blurred = enc.encode(_page().filter(ImageFilter.GaussianBlur(3)))
    rng = np.random.default_rng(0)
    noisy_arr = np.asarray(_page(), dtype=np.float64) + rng.normal(0, 90, (200, 320))
    noisy = enc.encode(Image.fromarray(np.clip(noisy_arr, 0, 255).astype(np.uint8)))

    def total(pf, name):
        return float(pf.features[:, I[name]].sum())
    assert total(blurred, "log_components") < total(clean, "log_components")  # squares merge
    assert float(blurred.features[:, I["max_width"]].max()) > float(clean.features[:, I["max_width"]].max())
    assert total(noisy, "log_specks") > total(clean, "log_specks") + 10


def test_blank_page_pools_to_nan_content_and_zero_counts():
    pf = GlyphPatchEncoder().encode(Image.new("L", (100, 70), 255))
    assert not pf.content.any() and float(pf.features[:, I["log_components"]].abs().sum()) == 0.0
    pooled = pool_features([pf])
    assert pooled.shape == (1, 2 * 3 * len(GLYPH_FEATURES) + 2)
    assert torch.isnan(pooled[0, 3 * len(GLYPH_FEATURES):6 * len(GLYPH_FEATURES)]).all()


def test_rgb_and_array_input_agree_and_bad_input():
    page = _page()
    enc = GlyphPatchEncoder(patch=16)
    a = enc.encode(page.convert("RGB")).features
    b = enc.encode(np.asarray(page)).features
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="patch must be an int >= 4"):
        GlyphPatchEncoder(patch=2)
    assert GlyphPatchEncoder(patch=24).params() == {"patch": 24}
