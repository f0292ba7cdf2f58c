"""A tiny SigLIP with random weights, built offline, for tests and examples.

    path = build_tiny_siglip(tmp_dir / "tiny-siglip")        # well under a second, ~0.3 MB on disk
    encoder = colkern.siglip.SiglipEncoder.load(path)        # 32x32 images, 16-token captions, 32-d
    model, processor = make_tiny_siglip(seed=0)              # the same, in memory

The real SigLIP architecture and file layout (`SiglipModel`: a ViT image tower with an attention-
pooling head, a text transformer pooling its last position, `SiglipProcessor`) at toy sizes, so
code that loads and runs a real checkpoint runs unchanged on it. The tokenizer is the byte-level
BPE of the tiny ColPali (trained with `tokenizers` on a few built-in sentences; nothing is
downloaded). The weights are random: embeddings carry no meaning; the same seed and sizes give
the same bytes, and the saved directory reloads to identical outputs.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .._types import PathLike
from ._save import save_model_atomically
from .tiny_colpali import _train_tokenizer


def _check_sizes(**sizes) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"build_tiny_siglip: {name} must be a positive int, got {v!r}")
    if sizes["image_size"] % sizes["patch_size"]:
        raise ValueError(f"build_tiny_siglip: image_size {sizes['image_size']} is not a multiple of "
                         f"patch_size {sizes['patch_size']}")
    if sizes["hidden_size"] % sizes["num_heads"]:
        raise ValueError(f"build_tiny_siglip: hidden_size {sizes['hidden_size']} is not a multiple of "
                         f"num_heads {sizes['num_heads']}")


def make_tiny_siglip(*, seed: int = 0, image_size: int = 32, patch_size: int = 8, hidden_size: int = 32,
                     num_layers: int = 2, num_heads: int = 2, text_length: int = 16, vocab_size: int = 300):
    """Builds a random-weight SigLIP in memory. -> (SiglipModel in eval mode, SiglipProcessor).

    image_size / patch_size: images are resized to image_size x image_size ((image_size //
    patch_size)^2 patches); hidden_size: width of both towers and of the embeddings;
    text_length: tokens per caption (captions are padded to it, as SigLIP's are);
    vocab_size: of the byte-level BPE tokenizer. Same arguments, same weights.
    """
    _check_sizes(image_size=image_size, patch_size=patch_size, hidden_size=hidden_size, num_layers=num_layers,
                 num_heads=num_heads, text_length=text_length, vocab_size=vocab_size)
    from ..colpali import apply_torchvision_shim
    from ..siglip.encoder import silence_default_config_warning

    apply_torchvision_shim()
    silence_default_config_warning()
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTextConfig,
        SiglipVisionConfig,
    )

    tokenizer = _train_tokenizer(vocab_size)
    tokenizer.model_max_length = text_length
    # SigLIP's preprocessing (bicubic resize, rescale to [0, 1], normalise to [-1, 1]) at toy size.
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size}, resample=3,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    text_config = SiglipTextConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                                   intermediate_size=2 * hidden_size, num_hidden_layers=num_layers,
                                   num_attention_heads=num_heads, max_position_embeddings=text_length,
                                   projection_size=hidden_size, pad_token_id=tokenizer.pad_token_id,
                                   bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    vision_config = SiglipVisionConfig(hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                                       num_hidden_layers=num_layers, num_attention_heads=num_heads,
                                       image_size=image_size, patch_size=patch_size)
    config = SiglipConfig(text_config=text_config, vision_config=vision_config)
    with torch.random.fork_rng(devices=[]):  # building a test model must not move the caller's stream
        torch.manual_seed(seed)
        model = SiglipModel(config).eval()
    return model, processor


def build_tiny_siglip(path: PathLike, *, seed: int = 0, **sizes) -> Path:
    """Builds a random-weight SigLIP (see make_tiny_siglip for `sizes`) and saves model and
    processor to the directory `path`, which must not exist or be an empty directory. Written
    to a temporary directory beside it and renamed into place. -> Path of the saved model.
    Raises FileExistsError if `path` is a file or a non-empty directory."""
    return save_model_atomically(path, lambda: make_tiny_siglip(seed=seed, **sizes), "build_tiny_siglip")
