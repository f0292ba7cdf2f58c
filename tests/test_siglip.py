"""colkern.siglip.SiglipEncoder on the tiny random-weight SigLIP of colkern.testing: shapes, unit
norms, batch independence, an exact save/reload, and clear errors for bad model directories."""
import json

import pytest
import torch

from colkern.colpali import apply_torchvision_shim

apply_torchvision_shim()
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from colkern.siglip import SiglipEncoder, check_siglip_dir  # noqa: E402
from colkern.testing.tiny_siglip import build_tiny_siglip, make_tiny_siglip  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)  # tiny forwards: one thread, no contention
    return build_tiny_siglip(tmp_path_factory.mktemp("siglip") / "tiny-siglip")


@pytest.fixture(scope="module")
def encoder(model_dir):
    return SiglipEncoder.load(model_dir, device="cpu")


def _images():
    return [Image.new("RGB", (50, 40), (200, 10, 10)), Image.new("L", (10, 80), 30),
            Image.new("RGBA", (64, 64), (0, 128, 255, 128))]


def test_encodes_images_and_texts_to_unit_vectors(encoder):
    V = encoder.encode_images(_images())
    T = encoder.encode_texts(["a red square", "a photo of a pump", "x" * 500])
    assert V.shape == (3, encoder.dim) and T.shape == (3, encoder.dim) and encoder.dim == 32
    assert V.dtype == T.dtype == torch.float32
    torch.testing.assert_close(V.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(T.norm(dim=1), torch.ones(3))
    assert encoder.encode_images([]).shape == (0, 32) and encoder.encode_texts([]).shape == (0, 32)
    assert encoder.text_length == 16 and encoder.image_size == (32, 32)


def test_a_result_does_not_depend_on_its_batch(encoder):
    images = _images()
    together = encoder.encode_images(images)
    alone = torch.cat([encoder.encode_images([im]) for im in images])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
    texts = ["pump", "a much longer caption about the main board power supply"]
    torch.testing.assert_close(encoder.encode_texts(texts),
                               torch.cat([encoder.encode_texts([t]) for t in texts]), atol=1e-6, rtol=0)


def test_saved_model_reloads_to_the_same_outputs(model_dir, encoder):
    model, processor = make_tiny_siglip(seed=0)  # same seed, same weights as the saved one
    in_memory = SiglipEncoder(model, processor)
    torch.testing.assert_close(in_memory.encode_images(_images()), encoder.encode_images(_images()))
    torch.testing.assert_close(in_memory.encode_texts(["a pump"]), encoder.encode_texts(["a pump"]))
    other, _ = make_tiny_siglip(seed=1)
    assert not torch.equal(other.text_model.embeddings.token_embedding.weight,
                           model.text_model.embeddings.token_embedding.weight)


def test_bad_model_directories_are_named(tmp_path, model_dir):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SiglipEncoder.load(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        check_siglip_dir(tmp_path / "file")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text(json.dumps({"model_type": "siglip", "vision_config": {}, "text_config": {}}))
    with pytest.raises(FileNotFoundError, match="no weights"):
        check_siglip_dir(partial)
    colpali_like = tmp_path / "colpali-like"
    colpali_like.mkdir()
    for name in ("model.safetensors", "tokenizer.json", "preprocessor_config.json"):
        (colpali_like / name).write_bytes((model_dir / name).read_bytes() if (model_dir / name).exists() else b"{}")
    (colpali_like / "config.json").write_text(json.dumps({"model_type": "paligemma"}))
    with pytest.raises(ValueError, match="not hold a dual image-text model"):
        check_siglip_dir(colpali_like)


def test_bad_arguments(encoder, model_dir, tmp_path):
    with pytest.raises(TypeError, match="wrap it in a list"):
        encoder.encode_texts("one string")
    with pytest.raises(TypeError, match="images\\[1\\] must be a PIL image"):
        encoder.encode_images([Image.new("RGB", (8, 8)), "not an image"])
    with pytest.raises(ValueError, match="batch_size"):
        SiglipEncoder.load(model_dir, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        SiglipEncoder.load(model_dir, dtype="int8")
    with pytest.raises(TypeError, match="dual image-text model"):
        SiglipEncoder(torch.nn.Linear(2, 2), None)
    with pytest.raises(FileExistsError):
        build_tiny_siglip(model_dir)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        make_tiny_siglip(image_size=30, patch_size=8)
