"""ColPaliEncoder on a tiny random-weight ColPali (colkern.testing), the torchvision workaround,
and loading from local directories only. Mirrors python/colkern/colpali.py."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from colkern.colpali._torchvision_compat import apply_torchvision_shim

# colpali-engine only imports next to a CPU-only torch once the torchvision shim is in place
# (a no-op where torchvision works); a missing colpali-engine skips the whole file.
apply_torchvision_shim()
pytest.importorskip("colpali_engine")
Image = pytest.importorskip("PIL.Image")

from colkern.colpali import (  # noqa: E402
    ColPaliEncoder,
    PageEmbedding,
    _torchvision_compat,  # noqa: E402
    check_model_dir,
)
from colkern.testing import build_tiny_colpali, make_tiny_colpali  # noqa: E402

GRID = (4, 4)  # the tiny model: 56x56 input, 14-pixel patches
HIDDEN = 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny forwards take milliseconds on one thread and seconds when two threads fight over a
    # busy 2-core machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_colpali(tmp_path_factory.mktemp("colpali") / "tiny")


@pytest.fixture(scope="module")
def encoder(tiny_dir):
    return ColPaliEncoder.load(tiny_dir, batch_size=3)


def _pages(n, seed=0):
    """Random pages of different sizes and modes (the encoder converts and resizes them)."""
    rng = np.random.default_rng(seed)
    pages = []
    for i in range(n):
        h, w = 60 + 17 * i, 45 + 9 * (i % 3)
        page = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        pages.append(page.convert(("RGB", "L", "RGBA")[i % 3]))
    return pages


QUERIES = ["total revenue 2023", "Which table lists the quarterly results by region?", "", "fox"]


# ---------------------------------------------------------------------------------------------
# The torchvision workaround


def _run(code):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_import_colpali_engine_in_a_fresh_interpreter():
    # In this process the shim may already be in place; a fresh interpreter checks the up-front
    # detection: shim exactly when plain `import torchvision` would fail.
    res = _run("import colkern.colpali._torchvision_compat as c\n"
               "need = c.torchvision_needs_shim()\n"
               "ce = c.import_colpali_engine()\n"
               "from colpali_engine.models import ColPali, ColPaliProcessor\n"
               "import torchvision\n"
               "print(need, c.shim_applied())")
    assert res.returncode == 0, res.stderr[-2000:]
    need, applied = res.stdout.split()[-2:]
    assert need == applied
    if need == "True":  # this machine has the problem: plain torchvision must really fail
        plain = _run("import torchvision")
        assert plain.returncode != 0
        assert "torchvision::nms does not exist" in plain.stderr


def test_import_colpali_engine_returns_module_and_is_idempotent():
    ce = _torchvision_compat.import_colpali_engine()
    assert ce.models.ColPali.__name__ == "ColPali"
    assert _torchvision_compat.import_colpali_engine() is ce
    assert apply_torchvision_shim() == _torchvision_compat.shim_applied()
    if _torchvision_compat.shim_applied():
        # only the two schemas torchvision's meta registrations need are defined
        assert hasattr(torch.ops.torchvision, "nms") and hasattr(torch.ops.torchvision, "qnms")
    assert not _torchvision_compat.torchvision_needs_shim()  # torchvision is imported now


def test_missing_colpali_engine_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "colpali_engine" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'colkern\[colpali\]'"):
        _torchvision_compat.import_colpali_engine()


# ---------------------------------------------------------------------------------------------
# The tiny model


def test_tiny_model_is_seeded_and_reloads_exactly(tiny_dir, encoder):
    model, processor = make_tiny_colpali(seed=0)
    other, _ = make_tiny_colpali(seed=1)
    same = dict(model.named_parameters())
    assert all(torch.equal(p, same[n]) for n, p in make_tiny_colpali(seed=0)[0].named_parameters())
    assert not torch.equal(model.custom_text_proj.weight, other.custom_text_proj.weight)
    rng_state = torch.random.get_rng_state()
    make_tiny_colpali(seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng_state), "building moved the global RNG"

    # The saved directory (built with seed 0) reloads to the in-memory model's outputs exactly.
    batch = processor.process_images(_pages(2))
    loaded = encoder.processor.process_images(_pages(2))
    assert all(torch.equal(batch[k], loaded[k]) for k in batch)
    with torch.inference_mode():
        expected = model(**batch)
        got = encoder.model(**loaded)
    assert torch.equal(expected, got)
    q = processor.process_queries(QUERIES)
    assert torch.equal(q["input_ids"], encoder.processor.process_queries(QUERIES)["input_ids"])


def test_tiny_model_special_tokens(encoder):
    tok = encoder.processor.tokenizer
    assert [tok.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>", "<unk>")] == [0, 1, 2, 3]
    assert encoder.processor.image_token_id == tok.convert_tokens_to_ids("<image>")
    assert encoder.processor.query_augmentation_token == "<pad>"
    assert encoder.model.config.image_token_index == encoder.processor.image_token_id


def test_build_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        build_tiny_colpali(tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="patch_size"):
        build_tiny_colpali(tmp_path / "y", image_size=50, patch_size=14)
    assert not (tmp_path / "y").exists()


# ---------------------------------------------------------------------------------------------
# Encoding pages


def test_encoder_properties(encoder):
    assert encoder.dim == 128
    assert encoder.grid == GRID
    assert encoder.image_size == (56, 56)
    assert encoder.hidden_size == HIDDEN
    assert encoder.dtype == torch.float32 and encoder.device.type == "cpu"


def test_pages_keep_only_image_patches(encoder):
    pages = _pages(5)
    out = encoder.encode_images(pages)
    assert len(out) == 5 and all(isinstance(p, PageEmbedding) for p in out)
    batch = encoder.processor.process_images(pages)
    seq_len = batch["input_ids"].shape[1]
    assert seq_len > 16  # the sequence holds the text prompt after the 16 image tokens
    for p in out:
        assert p.grid == GRID and p.n_patches == 16 and p.hidden is None
        assert p.embeddings.shape == (16, 128) and p.embeddings.dtype == torch.float32
        assert p.embeddings.device.type == "cpu"
        torch.testing.assert_close(p.embeddings.norm(dim=1), torch.ones(16))
    # Equal to colpali-engine's own forward (with its labels, logits and all) at the image
    # positions, and none of the prompt positions survive.
    with torch.inference_mode():
        full = encoder.model(**batch)
    mask = encoder.processor.get_image_mask(batch)
    for i, p in enumerate(out):
        assert torch.equal(p.embeddings, full[i][mask[i]])
        prompt = full[i][~mask[i]]
        assert not any(torch.equal(row, e) for row in prompt for e in p.embeddings)


def test_no_labels_and_no_lm_head_work(encoder):
    seen = {}
    lm_inputs = []

    def pre_hook(module, args, kwargs):
        seen.update(kwargs)

    h1 = encoder.model.model.register_forward_pre_hook(pre_hook, with_kwargs=True)
    h2 = encoder.model.model.lm_head.register_forward_hook(lambda m, a, o: lm_inputs.append(a[0].shape))
    try:
        encoder.encode_images(_pages(2))
    finally:
        h1.remove()
        h2.remove()
    assert "labels" not in seen and "input_ids" in seen
    assert seen["logits_to_keep"].numel() == 0
    assert lm_inputs and all(shape[1] == 0 for shape in lm_inputs)  # lm_head saw zero positions


def test_hidden_states_are_the_projection_input(encoder):
    pages = _pages(4)
    with_hidden = encoder.encode_images(pages, hidden_states=True)
    plain = encoder.encode_images(pages)
    proj = encoder.model.custom_text_proj
    for p, q in zip(with_hidden, plain):
        assert p.hidden.shape == (16, HIDDEN) and p.hidden.dtype == torch.float32
        assert torch.equal(p.embeddings, q.embeddings)  # the hook changes nothing
        with torch.no_grad():
            projected = torch.nn.functional.normalize(proj(p.hidden), dim=-1)
        torch.testing.assert_close(projected, p.embeddings, atol=2e-6, rtol=0)
    assert not proj._forward_hooks  # the hook is removed afterwards


def test_encoding_is_deterministic_and_batch_independent(tiny_dir, encoder):
    pages = _pages(5, seed=7)
    a = encoder.encode_images(pages, hidden_states=True)
    b = encoder.encode_images(pages, hidden_states=True)
    one_by_one = ColPaliEncoder.load(tiny_dir, batch_size=1).encode_images(pages, hidden_states=True)
    for x, y, z in zip(a, b, one_by_one):
        assert torch.equal(x.embeddings, y.embeddings) and torch.equal(x.hidden, y.hidden)
        torch.testing.assert_close(x.embeddings, z.embeddings, atol=1e-5, rtol=0)
        torch.testing.assert_close(x.hidden, z.hidden, atol=1e-4, rtol=1e-5)
    # different pages give different embeddings (the test would pass on a constant model otherwise)
    assert not torch.allclose(a[0].embeddings, a[1].embeddings, atol=1e-3)


def test_outputs_are_ordinary_tensors(encoder):
    page = encoder.encode_images(_pages(1), hidden_states=True)[0]
    assert not page.embeddings.is_inference() and not page.hidden.is_inference()
    page.embeddings.mul_(2)  # callers may modify them in place
    q = encoder.encode_queries(["x"])[0]
    assert not q.is_inference()


def test_empty_inputs(encoder):
    assert encoder.encode_images([]) == []
    assert encoder.encode_queries([]) == []


def test_bad_inputs(encoder, tiny_dir):
    with pytest.raises(TypeError, match=r"images\[1\] must be a PIL image"):
        encoder.encode_images([_pages(1)[0], np.zeros((56, 56, 3), np.uint8)])
    with pytest.raises(TypeError, match="one str"):
        encoder.encode_queries("a single query")
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        encoder.encode_queries(["a", 3])
    with pytest.raises(ValueError, match="batch_size"):
        ColPaliEncoder.load(tiny_dir, batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        ColPaliEncoder.load(tiny_dir, dtype="int8")
    with pytest.raises(TypeError, match="ColPali"):
        ColPaliEncoder(torch.nn.Linear(2, 2), encoder.processor)


def test_page_embedding_checks_its_grid():
    with pytest.raises(ValueError, match="grid"):
        PageEmbedding(torch.zeros(15, 128), None, (4, 4))
    with pytest.raises(ValueError, match="hidden"):
        PageEmbedding(torch.zeros(16, 128), torch.zeros(15, 8), (4, 4))


def test_no_output_without_progress(tiny_dir, capfd):
    enc = ColPaliEncoder.load(tiny_dir)
    enc.encode_images(_pages(2))
    enc.encode_queries(["a"])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_when_asked(tiny_dir, capfd):
    ColPaliEncoder.load(tiny_dir, progress=True).encode_images(_pages(2))
    assert "2/2" in capfd.readouterr().err


# ---------------------------------------------------------------------------------------------
# Encoding queries


def test_queries_drop_padding_only(encoder):
    out = encoder.encode_queries(QUERIES)
    batch = encoder.processor.process_queries(QUERIES)
    lengths = batch["attention_mask"].sum(1).tolist()
    assert [q.shape for q in out] == [(n, 128) for n in lengths]
    assert len(set(lengths)) > 1  # the queries really have different lengths
    assert min(lengths) >= 11  # <bos> + 10 augmentation tokens survive, even for ""
    for q in out:
        assert q.dtype == torch.float32
        torch.testing.assert_close(q.norm(dim=1), torch.ones(q.shape[0]))


def test_query_embeddings_do_not_depend_on_the_batch(encoder):
    # Each query as colpali-engine encodes it alone (no padding, so no mask question arises).
    alone = []
    for text in QUERIES:
        batch = encoder.processor.process_queries([text])
        with torch.inference_mode():
            alone.append(encoder.model(**batch)[0])
    together = encoder.encode_queries(QUERIES)  # batch_size 3: batches of different padding
    one_by_one = [encoder.encode_queries([t])[0] for t in QUERIES]
    for a, t, o in zip(alone, together, one_by_one):
        torch.testing.assert_close(t, a, atol=1e-6, rtol=0)
        torch.testing.assert_close(o, a, atol=1e-6, rtol=0)
    assert not torch.allclose(together[0][1:], together[1][1:len(together[0])], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Loading from a local directory only


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection (e.g. to the model hub) fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_load_from_local_directory_by_str_and_path(tiny_dir, no_network):
    a = ColPaliEncoder.load(str(tiny_dir)).encode_queries(["fox"])[0]
    b = ColPaliEncoder.load(tiny_dir, dtype="fp32", device="cpu").encode_queries(["fox"])[0]
    assert torch.equal(a, b)
    assert check_model_dir(tiny_dir) == tiny_dir.resolve()


def test_load_in_bfloat16(tiny_dir, encoder):
    bf16 = ColPaliEncoder.load(tiny_dir, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16
    pages = _pages(2)
    got = bf16.encode_images(pages, hidden_states=True)
    ref = encoder.encode_images(pages, hidden_states=True)
    for g, r in zip(got, ref):
        assert g.embeddings.dtype == torch.float32 and g.hidden.dtype == torch.float32
        assert (g.embeddings - r.embeddings).abs().max() < 0.1  # bf16 weights and activations


@pytest.mark.parametrize("remove, message", [
    ("config.json", "model config"),
    ("model.safetensors", "weights"),
    ("tokenizer.json", "tokenizer"),
    ("processor_config.json", "image processor config"),
])
def test_missing_files_are_named(tiny_dir, tmp_path, no_network, remove, message):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    (broken / remove).unlink()
    with pytest.raises(FileNotFoundError, match=message) as e:
        ColPaliEncoder.load(broken)
    assert str(broken) in str(e.value)


def test_missing_paths_and_adapters(tiny_dir, tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        ColPaliEncoder.load(tmp_path / "vidore" / "colpali-v1.3-merged")
    assert "colpali-v1.3-merged" in str(e.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ColPaliEncoder.load(tmp_path / "file")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x"}))
    with pytest.raises(FileNotFoundError, match="PEFT adapter"):
        ColPaliEncoder.load(adapter)


def test_missing_weight_shard_is_named(tiny_dir, tmp_path, no_network):
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_dir, sharded)
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(FileNotFoundError, match="model-00002-of-00002.safetensors"):
        ColPaliEncoder.load(sharded)
