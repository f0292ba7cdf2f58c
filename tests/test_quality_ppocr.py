"""The pretrained-network encoder (PP-OCR detector feature map via an exposed intermediate ONNX
output) and the concatenating encoder; both rebuilt by name from a model's stored params."""
import hashlib

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("rapidocr")
pytest.importorskip("pymupdf")

from PIL import ImageFilter  # noqa: E402

from colkern.quality.encoders import (  # noqa: E402
    ConcatPatchEncoder,
    GlyphPatchEncoder,
    PixelPatchEncoder,
    PPOCRPatchEncoder,
    page_features,
)
from colkern.quality.encoders.ppocr import FEATURE_TENSOR, _session, det_model_path  # noqa: E402
from colkern.quality.pipeline import make_encoder  # noqa: E402
from colkern.quality.synth import generate_page  # noqa: E402


@pytest.fixture(scope="module")
def page():
    torch.set_num_threads(1)
    return generate_page(12, lang="eng", layout="receipt", dpi=100).image


def test_ppocr_features_shape_grid_and_determinism(page):
    enc = PPOCRPatchEncoder()
    pf = enc.encode(page)
    assert pf.grid == GlyphPatchEncoder().encode(page).grid and pf.patch == 32
    assert len(enc.feature_names()) == 99 and pf.features.shape == (pf.grid[0] * pf.grid[1], 99)
    assert torch.isfinite(pf.features).all() and pf.content.any() and not pf.content.all()
    assert torch.equal(enc.encode(page).features, pf.features)
    prob = pf.features[:, enc.feature_names().index("prob_max")]
    assert prob.min() >= 0 and prob.max() <= 1 and prob[pf.content].mean() > prob[~pf.content].mean()
    # blank paper: no content, and the detector finds no text
    blank = enc.encode(np.full((96, 80), 255, np.uint8))
    assert blank.grid == (3, 3) and not blank.content.any() and blank.features[:, -2].max() < 0.3


@pytest.mark.parametrize("use_onnx", [True, False])
def test_ppocr_exposes_the_intermediate_output_in_memory_only(use_onnx):
    """The graph edit (with the onnx package, or in the protobuf wire format without it) adds the
    neck's feature map as a second output; both give the same session outputs; the file on disk
    is untouched."""
    if use_onnx:
        pytest.importorskip("onnx")
    path = det_model_path()
    before = hashlib.sha256(open(path, "rb").read()).hexdigest()
    sess, inp, prob = _session(path, FEATURE_TENSOR, 1, use_onnx)
    names = [o.name for o in sess.get_outputs()]
    assert names == [prob, FEATURE_TENSOR]
    x = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
    p, fmap = sess.run(None, {inp: x})
    assert p.shape == (1, 1, 64, 96) and fmap.shape == (1, 96, 16, 24)
    other = _session(path, FEATURE_TENSOR, 1, not use_onnx)[0] if use_onnx else None
    if other is not None:
        assert all(np.array_equal(a, b) for a, b in zip(other.run(None, {inp: x}), (p, fmap)))
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == before
    with pytest.raises(ValueError, match="has no tensor 'nope'"):
        _session(path, "nope", 1, use_onnx)
    with pytest.raises(ValueError, match="multiple of 32"):
        PPOCRPatchEncoder(patch=16)


def test_ppocr_features_see_blur(page):
    """A heavily blurred page moves the detector's text probability on the content patches."""
    enc = PPOCRPatchEncoder()
    sharp, blurred = page_features([page, page.filter(ImageFilter.GaussianBlur(3))], enc)
    names = enc.feature_names()
    col = 3 * len(names) + names.index("prob_max")   # content_mean:prob_max
    assert blurred[col] < sharp[col] - 0.05


def test_concat_encoder_and_rebuild_from_params(page):
    enc = ConcatPatchEncoder([GlyphPatchEncoder(), PixelPatchEncoder(patch=32)])
    pf = enc.encode(page)
    g = GlyphPatchEncoder().encode(page)
    assert pf.grid == g.grid and pf.features.shape[1] == 19 + 17 and torch.equal(pf.content, g.content)
    assert enc.feature_names()[0] == "glyph.log_components" and enc.feature_names()[-1] == "pixel.blockiness"
    again = make_encoder(enc.name, enc.params())
    assert again.params() == enc.params()
    torch.testing.assert_close(again.encode(page).features, pf.features, equal_nan=True, rtol=1e-5, atol=1e-6)
    assert make_encoder("ppocr", PPOCRPatchEncoder().params()).params() == PPOCRPatchEncoder().params()
    with pytest.raises(ValueError, match="one patch size"):
        ConcatPatchEncoder([GlyphPatchEncoder(), PixelPatchEncoder()])
    with pytest.raises(ValueError, match="at least 2"):
        ConcatPatchEncoder([GlyphPatchEncoder()])
    with pytest.raises(ValueError, match="not built in"):
        make_encoder("colpali")
