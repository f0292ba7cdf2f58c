"""SigLIP image and text encoder: natural images and query strings -> one L2-normalised vector each.

    encoder = SiglipEncoder.load("/models/siglip-so400m-patch14-384")   # a local directory, never the hub
    V = encoder.encode_images(pil_images)     # [n, d] float32, unit rows
    T = encoder.encode_texts(["a wiring diagram"])                      # [m, d] float32, unit rows
    scores = T @ V.T                          # cosine similarity, what the hybrid index ranks by

SigLIP (and CLIP) map an image and a caption into one space, trained so that matching pairs have
a high cosine similarity; one vector per image, so search is a dense dot product (no MaxSim).
It is the route for *natural* images (photos, diagrams embedded as pictures): ColPali covers
document pages, where the text on the page is what the query matches.

Loading: transformers `AutoModel` + `AutoProcessor` from a local directory with
local_files_only=True: a SigLIP checkpoint (`SiglipModel`), and also SigLIP 2 or CLIP ones, since
all expose get_image_features / get_text_features. fp32 on CPU, bf16 on CUDA by default; outputs
are float32 CPU tensors whatever the model's device and dtype.

Text padding: SigLIP was trained with every caption padded to the text tower's full length
("max_length", 64 tokens for the released checkpoints) and pools the *last* position, so a
caption padded differently gets a different (worse) embedding; encode_texts pads that way for
SigLIP models (CLIP pools the end-of-text token and is padded to the batch's longest).

transformers 5 returns a BaseModelOutputWithPooling from get_*_features (4.x returned the
tensor); the projected embedding is its pooler_output. Both are handled.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from .._model_loading import (
    TorchModelProperties,
    check_local_model_dir,
    check_positive_int,
    check_texts,
    resolve_device,
    resolve_dtype,
)
from .._types import PathLike

_CONFIG = "config.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                 "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer.model", "vocab.json")
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
# Model types padded to the full text length (trained that way, last-position pooling).
_PAD_TO_MAX = ("siglip", "siglip2")


class _DefaultConfigNoise(logging.Filter):
    """transformers 5 validates a *default* SiglipTextConfig() whenever it prints or saves a
    SigLIP config (to diff against it), and that default has bos/eos ids 49406/49407 outside its
    32,000-token vocabulary, so every SigLIP load warns about a config nobody uses. Only that
    exact message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("(between 0 and 31999)" in msg and ("got 49406" in msg or "got 49407" in msg))


_noise_filter = _DefaultConfigNoise()


def silence_default_config_warning() -> None:
    """Installs _DefaultConfigNoise on transformers' configuration logger (idempotent)."""
    logger = logging.getLogger("transformers.configuration_utils")
    if _noise_filter not in logger.filters:
        logger.addFilter(_noise_filter)


def check_siglip_dir(model_path: PathLike) -> Path:
    """Checks that `model_path` is a local SigLIP (or CLIP) checkpoint directory: config, weights,
    tokenizer and image processor config. -> the absolute Path. Raises FileNotFoundError naming
    the directory and what is missing; never looks anything up on the hub."""
    path = check_local_model_dir(model_path, "SigLIP")
    for what, names in (("model config", (_CONFIG,)), ("weights", _WEIGHT_FILES),
                        ("tokenizer", _TOKENIZER_FILES), ("image processor config", _PROCESSOR_FILES)):
        if not any((path / n).is_file() for n in names):
            raise FileNotFoundError(f"SigLIP model directory {path} has no {what} ({' or '.join(names)}); "
                                    f"expected a model saved with save_pretrained")
    try:
        config = json.loads((path / _CONFIG).read_text())
    except ValueError as e:
        raise ValueError(f"SigLIP model directory {path}: config.json is not valid JSON ({e})") from e
    if not isinstance(config, dict) or "vision_config" not in config or "text_config" not in config:
        raise ValueError(f"SigLIP model directory {path} does not hold a dual image-text model (config.json "
                         f"has no vision_config and text_config; model_type {config.get('model_type')!r})")
    return path.resolve()


def _pooled(output) -> Tensor:
    """The projected embedding of get_image_features / get_text_features (transformers 4 or 5)."""
    if isinstance(output, Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise RuntimeError(f"SiglipEncoder: the model returned {type(output).__name__} without pooler_output")
    return pooled


class SiglipEncoder(TorchModelProperties):
    """A SigLIP model + processor turning images and texts into unit vectors in one space.

    Build with SiglipEncoder.load(local_dir) or wrap a loaded transformers model and processor
    with SiglipEncoder(model, processor). Inference only. Properties: dim, device, dtype,
    image_size (height, width of the model input), text_length (tokens per caption), path (the
    directory it was loaded from, or None).
    """

    def __init__(self, model, processor, *, batch_size: int = 16, path: Optional[PathLike] = None):
        check_positive_int(batch_size, "SiglipEncoder", "batch_size")
        for attr in ("get_image_features", "get_text_features", "config"):
            if not hasattr(model, attr):
                raise TypeError(f"SiglipEncoder: model must be a dual image-text model such as SiglipModel "
                                f"(no `{attr}` on {type(model).__name__})")
        for attr in ("image_processor", "tokenizer"):
            if not hasattr(processor, attr):
                raise TypeError(f"SiglipEncoder: processor must be a SiglipProcessor (no `{attr}` on "
                                f"{type(processor).__name__})")
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.path = str(path) if path is not None else None
        self._pad_to_max = getattr(model.config, "model_type", "") in _PAD_TO_MAX
        self._text_length = int(model.config.text_config.max_position_embeddings)
        size = getattr(processor.image_processor, "size", None) or {}
        side = int(model.config.vision_config.image_size)
        self._image_size = (int(size.get("height", side)), int(size.get("width", side)))

    @classmethod
    def load(cls, model_path: PathLike, *, device: Optional[Union[str, torch.device]] = None,
             dtype: Optional[Union[str, torch.dtype]] = None, batch_size: int = 16) -> "SiglipEncoder":
        """Loads a SigLIP checkpoint (model + processor) from a local directory.

        device: default CUDA when available, else CPU. dtype: default bfloat16 on CUDA, float32 on
        CPU. Only local files are read. Raises FileNotFoundError naming the directory and what is
        missing (see check_siglip_dir); ImportError without transformers.
        """
        check_positive_int(batch_size, "SiglipEncoder", "batch_size")
        path = check_siglip_dir(model_path)
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev, "SiglipEncoder")
        from ..colpali import apply_torchvision_shim
        from ..colpali.encoder import quiet_transformers

        apply_torchvision_shim()  # transformers' image processors import torchvision
        silence_default_config_warning()
        try:
            from transformers import AutoModel, AutoProcessor
        except ImportError as e:
            raise ImportError(f"SiglipEncoder needs transformers ({e}); install the hybrid extra: "
                              f"pip install 'colkern[hybrid]'") from e
        with quiet_transformers():
            model = AutoModel.from_pretrained(str(path), dtype=dt, local_files_only=True)
            processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
        return cls(model.to(dev), processor, batch_size=batch_size, path=path)

    # -- properties ------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Size of the image and text embeddings."""
        cfg = self.model.config
        for name in ("projection_dim", "projection_size"):
            if getattr(cfg, name, None):
                return int(getattr(cfg, name))
        text = cfg.text_config
        return int(getattr(text, "projection_size", None) or text.hidden_size)

    @property
    def image_size(self):
        return self._image_size

    @property
    def text_length(self) -> int:
        return self._text_length

    # -- encoding --------------------------------------------------------------------------------

    def _finish(self, parts: List[Tensor], n: int) -> Tensor:
        if not parts:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        out = torch.cat(parts, 0)
        assert out.shape[0] == n
        return out

    def encode_images(self, images: Sequence) -> Tensor:
        """PIL images (any mode and size; converted to RGB, resized by the processor)
        -> [n, dim] float32 CPU, L2-normalised rows, in order."""
        from PIL import Image

        images = list(images)
        for i, im in enumerate(images):
            if not isinstance(im, Image.Image):
                raise TypeError(f"SiglipEncoder.encode_images: images[{i}] must be a PIL image, got "
                                f"{type(im).__name__}")
        parts = []
        for lo in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[lo:lo + self.batch_size]]
            inputs = self.processor(images=batch, return_tensors="pt")
            pixels = inputs["pixel_values"].to(device=self.device, dtype=self.dtype)
            with torch.inference_mode():
                feats = _pooled(self.model.get_image_features(pixel_values=pixels))
            parts.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
        return self._finish(parts, len(images))

    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Strings -> [n, dim] float32 CPU, L2-normalised rows, in order. Longer texts are cut to
        the text tower's length (text_length tokens)."""
        texts = check_texts(texts, "SiglipEncoder.encode_texts")
        parts = []
        padding = "max_length" if self._pad_to_max else True
        for lo in range(0, len(texts), self.batch_size):
            inputs = self.processor(text=texts[lo:lo + self.batch_size], padding=padding, truncation=True,
                                    max_length=self._text_length, return_tensors="pt")
            kwargs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
            if self._pad_to_max:
                # SigLIP's text tower ran without an attention mask in training (pads attended,
                # last position pooled); the released inference code passes none either.
                kwargs.pop("attention_mask", None)
            with torch.inference_mode():
                feats = _pooled(self.model.get_text_features(**kwargs))
            parts.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
        return self._finish(parts, len(texts))

    def __repr__(self) -> str:
        return (f"SiglipEncoder(dim={self.dim}, image_size={self.image_size}, device={self.device}, "
                f"dtype={str(self.dtype).replace('torch.', '')}, path={self.path!r})")
