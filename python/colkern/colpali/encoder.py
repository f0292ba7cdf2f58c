"""ColPali page and query encoder: images -> per-patch embeddings (and hidden states), text -> query tokens.

    encoder = ColPaliEncoder.load("/models/colpali-v1.3-merged")    # a local directory, never the hub
    pages = encoder.encode_images(pil_images, hidden_states=True)   # list of PageEmbedding
    pages[0].embeddings    # [1024, 128] float32, unit-norm rows, patch order row-major over grid
    pages[0].hidden        # [1024, 2048] float32: the decoder's last hidden states at those patches
    pages[0].grid          # (32, 32) patch rows x cols, for mapping patches back to pixels
    queries = encoder.encode_queries(["total revenue 2023"])        # list of [Lq_i, 128] float32

Needs colpali-engine (`pip install 'colkern[colpali]'`), imported on first use through
colkern._torchvision_compat (which works around torchvision failing to import next to a CPU-only
torch); `import colkern` works without it.

What a forward pass costs, and what this skips. colpali-engine's `ColPali.forward` runs the whole
`PaliGemmaForConditionalGeneration`: the Gemma decoder (with output_hidden_states=True), then its
`lm_head` over every position (for ColPali v1.x, [batch, 1030, 257216] logits: ~1 GB per page in
float32, ~1 GFLOP per token), and an LM loss when the batch carries `labels`, which
`process_images` always returns. It then applies `custom_text_proj` to the last hidden state,
L2-normalises and multiplies by the attention mask. Neither logits nor loss enter the embeddings.
So this encoder drops `labels` and passes `logits_to_keep` = an empty index tensor (transformers
slices the hidden states with it before `lm_head`), so `lm_head` runs on zero positions; the
embeddings are those of `model(**batch)` exactly. The last hidden states come from a forward hook
on `custom_text_proj` (its input), in the same pass. (ColPali checkpoints do not store lm_head:
it is tied to the token embeddings. With transformers 5, ColPali.from_pretrained leaves it on
the meta device, where the logits are shape-only, but such a model cannot be moved with .to();
load() ties it back, which is why the logits must be skipped rather than left to the meta device.)

Page embeddings keep only the image-patch tokens: ColPali's page sequence is
`<image> x n_patches, <bos>, "Describe the image.", "\n"`, and `processor.get_image_mask` selects
the patches. Query embeddings keep every attended token, including colpali-engine's 10 query
augmentation tokens (`process_queries` appends them; they are <pad> tokens with attention 1),
and drop the batch padding.

Query attention, and why queries get token_type_ids. PaliGemma is a prefix-LM: the prompt (the
"prefix", token_type_ids 0) attends bidirectionally; the transformers 4.x PaliGemma that ColPali
was trained with attended over every non-padding token when given no labels, queries included,
and transformers 5 keeps that intent (use_bidirectional_attention=True). With transformers 5.23 and
colpali-engine 0.3.18, `process_queries` returns no token_type_ids, and the Gemma mask builder
then makes a *causal* mask whenever the batch has padding, while an unpadded batch (e.g. one
query) skips the mask and runs bidirectional attention: a query's embeddings change with the
length of the other queries in its batch. Passing token_type_ids = 0 (all prefix, as
`process_images` already does for pages) gives every query bidirectional attention over its own
tokens whatever the batch: the embeddings colpali-engine produces for the query alone.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

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
from ._torchvision_compat import import_colpali_engine

_CONFIG = "config.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # each may be sharded: <name>.index.json
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


@dataclass(frozen=True)
class PageEmbedding:
    """One page's image patches.

    embeddings: [rows * cols, dim] float32 on the CPU, L2-normalised (ColPali's multi-vector).
    hidden: [rows * cols, hidden_size] float32 on the CPU (the decoder's last hidden states, the
      input of the 128-d projection), or None when not requested.
    grid: (rows, cols) of the patch grid; patch i covers row i // cols, column i % cols of the
      model's input image (the page resized to ColPaliEncoder.image_size).
    """

    embeddings: Tensor
    hidden: Optional[Tensor]
    grid: Tuple[int, int]

    def __post_init__(self):
        rows, cols = self.grid
        n = self.embeddings.shape[0]
        if rows * cols != n or (self.hidden is not None and self.hidden.shape[0] != n):
            raise ValueError(f"PageEmbedding: grid {self.grid} does not match embeddings {tuple(self.embeddings.shape)}"
                             + (f" / hidden {tuple(self.hidden.shape)}" if self.hidden is not None else ""))

    @property
    def n_patches(self) -> int:
        return self.embeddings.shape[0]


# ---------------------------------------------------------------------------------------------
# Loading


def _missing(path: Path, what: str, names: Sequence[str]) -> FileNotFoundError:
    listed = " or ".join(names)
    return FileNotFoundError(f"ColPali model directory {path} has no {what} ({listed}); expected a "
                             f"model saved with save_pretrained (e.g. a downloaded ColPali -merged checkpoint)")


def _check_weights(path: Path) -> None:
    for name in _WEIGHT_FILES:
        if (path / name).is_file():
            return
        index = path / f"{name}.index.json"
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"ColPali model directory {path}: {index.name} is not a valid shard "
                                 f"index ({e})") from e
            absent = sorted(s for s in shards if not (path / s).is_file())
            if absent:
                raise FileNotFoundError(f"ColPali model directory {path} lacks weight shards listed in "
                                        f"{index.name}: {', '.join(absent)}")
            return
    raise _missing(path, "weights", [n for w in _WEIGHT_FILES for n in (w, f"{w}.index.json")])


def check_model_dir(model_path: PathLike) -> Path:
    """Checks that `model_path` is a local ColPali checkpoint directory: config, weights (all
    shards), tokenizer and processor config. -> the absolute Path. Raises FileNotFoundError
    naming the directory and the missing file; never looks anything up on the hub."""
    path = check_local_model_dir(model_path, "ColPali")
    if not (path / _CONFIG).is_file():
        if (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"ColPali model directory {path} holds a PEFT adapter, not a model: use a "
                                    f"merged checkpoint (e.g. vidore/colpali-v1.3-merged) or merge the adapter "
                                    f"into its base model with peft's merge_and_unload() and save_pretrained()")
        raise _missing(path, "model config", [_CONFIG])
    _check_weights(path)
    if not any((path / n).is_file() for n in _TOKENIZER_FILES):
        raise _missing(path, "tokenizer", _TOKENIZER_FILES)
    if not any((path / n).is_file() for n in _PROCESSOR_FILES):
        raise _missing(path, "image processor config", _PROCESSOR_FILES)
    return path.resolve()


def _tie_unloaded_lm_head(model, path: Path) -> None:
    """ColPali checkpoints do not store PaliGemma's lm_head (it is tied to the token embeddings),
    and with transformers 5 + colpali-engine 0.3.18 ColPali.from_pretrained leaves it on the meta
    device (ColPali's own tie list is empty), which makes model.to(device) fail. Tie it to the
    input embeddings, as PaliGemma does: no memory, and the encoder never computes logits.
    Any other parameter left unloaded means a broken checkpoint."""
    lm_head = model.model.lm_head
    if lm_head.weight.is_meta:
        lm_head.weight = model.get_input_embeddings().weight
    unloaded = [name for name, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if unloaded:
        raise ValueError(f"ColPali model directory {path}: the weights lack {', '.join(unloaded[:5])}"
                         + (f" and {len(unloaded) - 5} more" if len(unloaded) > 5 else ""))


@contextlib.contextmanager
def quiet_transformers(quiet: bool = True) -> Iterator[None]:
    """Silences transformers' own progress bars ("Loading weights", "Writing model shards") for
    the duration, then restores the previous setting. Never turns them on."""
    from transformers.utils import logging as hf_logging

    if not quiet or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------------
# The encoder


class ColPaliEncoder(TorchModelProperties):
    """A ColPali model + processor that turns page images and query strings into multi-vectors.

    Build with ColPaliEncoder.load(local_dir), or wrap an already loaded colpali-engine
    `ColPali` and `ColPaliProcessor` with ColPaliEncoder(model, processor). Inference only
    (eval mode, torch.inference_mode); outputs are float32 CPU tensors whatever the model's
    device and dtype. Properties: dim (128), grid (patch rows, cols), image_size (height,
    width) of the model input, hidden_size, device, dtype.
    """

    def __init__(self, model, processor, *, batch_size: int = 4, progress: bool = False):
        check_positive_int(batch_size, "ColPaliEncoder", "batch_size")
        for attr in ("custom_text_proj", "config"):
            if not hasattr(model, attr):
                raise TypeError(f"ColPaliEncoder: model must be a colpali-engine ColPali (no `{attr}` on "
                                f"{type(model).__name__})")
        for attr in ("process_images", "process_queries", "get_image_mask", "image_processor"):
            if not hasattr(processor, attr):
                raise TypeError(f"ColPaliEncoder: processor must be a colpali-engine ColPaliProcessor (no "
                                f"`{attr}` on {type(processor).__name__})")
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.progress = bool(progress)
        size = processor.image_processor.size
        self._image_size = (int(size["height"]), int(size["width"]))
        patch = int(model.config.vision_config.patch_size)
        self._grid = (self._image_size[0] // patch, self._image_size[1] // patch)
        n_image_tokens = int(getattr(processor, "image_seq_length", self._grid[0] * self._grid[1]))
        if n_image_tokens != self._grid[0] * self._grid[1]:
            raise ValueError(f"ColPaliEncoder: the processor emits {n_image_tokens} image tokens but a "
                             f"{self._image_size} input with {patch}-pixel patches has a {self._grid} grid")

    @classmethod
    def load(cls, model_path: PathLike, *, device: Optional[Union[str, torch.device]] = None,
             dtype: Optional[Union[str, torch.dtype]] = None, batch_size: int = 4,
             progress: bool = False) -> "ColPaliEncoder":
        """Loads a ColPali checkpoint (model + processor) from a local directory.

        device: default CUDA when available, else CPU. dtype: default bfloat16 on CUDA, float32
        on CPU (also "bf16"/"fp32"/"fp16" or a torch.dtype). batch_size: pages or queries per
        forward pass. progress: show a tqdm bar while encoding (and transformers' load bars).
        Only local files are read (local_files_only=True). Raises FileNotFoundError naming the
        directory and what is missing (see check_model_dir); ImportError without colpali-engine.
        """
        check_positive_int(batch_size, "ColPaliEncoder", "batch_size")  # before minutes of loading, not after
        path = check_model_dir(model_path)
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev, "ColPaliEncoder")
        ce = import_colpali_engine()
        with quiet_transformers(not progress):
            model = ce.models.ColPali.from_pretrained(str(path), dtype=dt, local_files_only=True)
            processor = ce.models.ColPaliProcessor.from_pretrained(str(path), local_files_only=True)
        _tie_unloaded_lm_head(model, path)
        return cls(model.to(dev), processor, batch_size=batch_size, progress=progress)

    # -- properties ------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Size of the multi-vector embeddings (128 for every ColPali)."""
        return int(self.model.custom_text_proj.out_features)

    @property
    def hidden_size(self) -> int:
        """Size of the hidden states encode_images(..., hidden_states=True) returns."""
        return int(self.model.custom_text_proj.in_features)

    @property
    def grid(self) -> Tuple[int, int]:
        """(rows, cols) of the patch grid of every page (32 x 32 for ColPali v1.x)."""
        return self._grid

    @property
    def image_size(self) -> Tuple[int, int]:
        """(height, width) in pixels of the model input every page is resized to."""
        return self._image_size

    # -- encoding --------------------------------------------------------------------------------

    def _forward(self, batch, capture_hidden: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """One ColPali.forward without labels and without lm_head work.
        -> (projected embeddings [B, S, dim], last hidden states [B, S, H] or None)."""
        device = self.device
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        # An empty index: transformers slices the decoder output with it before lm_head, so the
        # vocabulary projection runs on zero positions.
        no_logits = torch.empty(0, dtype=torch.long, device=device)
        captured: List[Tensor] = []
        handle = None
        if capture_hidden:
            handle = self.model.custom_text_proj.register_forward_hook(
                lambda module, args, output: captured.append(args[0]))
        try:
            with torch.inference_mode():
                embeddings = self.model(**inputs, logits_to_keep=no_logits)
        finally:
            if handle is not None:
                handle.remove()
        if capture_hidden and len(captured) != 1:
            raise RuntimeError(f"ColPaliEncoder: expected custom_text_proj to run once per forward, it ran "
                               f"{len(captured)} times")
        return embeddings, (captured[0] if capture_hidden else None)

    def _batches(self, n: int, unit: str) -> Iterator[Tuple[int, int]]:
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, unit=unit, desc="ColPali")
        try:
            for lo in range(0, n, self.batch_size):
                hi = min(lo + self.batch_size, n)
                yield lo, hi
                if bar is not None:
                    bar.update(hi - lo)
        finally:
            if bar is not None:
                bar.close()

    def encode_images(self, images: Sequence, *, hidden_states: bool = False) -> List[PageEmbedding]:
        """Encodes page images (PIL images, any mode/size: converted to RGB and resized to
        image_size) -> one PageEmbedding per image, in order. With hidden_states=True each also
        carries the last hidden states of its patches, captured in the same forward pass."""
        from PIL import Image

        images = list(images)
        for i, im in enumerate(images):
            if not isinstance(im, Image.Image):
                raise TypeError(f"ColPaliEncoder.encode_images: images[{i}] must be a PIL image, got "
                                f"{type(im).__name__}")
        rows, cols = self._grid
        pages: List[PageEmbedding] = []
        for lo, hi in self._batches(len(images), "page"):
            batch = self.processor.process_images(images[lo:hi])
            embeddings, hidden = self._forward(batch, hidden_states)
            image_mask = self.processor.get_image_mask(batch).to(embeddings.device)
            counts = image_mask.sum(1).tolist()
            if any(c != rows * cols for c in counts):
                raise RuntimeError(f"ColPaliEncoder: expected {rows * cols} image tokens per page, got {counts}")
            # Indexing outside inference_mode gives ordinary tensors callers may modify in place.
            for i in range(hi - lo):
                pages.append(PageEmbedding(
                    embeddings=embeddings[i][image_mask[i]].to(device="cpu", dtype=torch.float32),
                    hidden=None if hidden is None else hidden[i][image_mask[i]].to(device="cpu", dtype=torch.float32),
                    grid=(rows, cols)))
        return pages

    def encode_queries(self, texts: Sequence[str]) -> List[Tensor]:
        """Encodes query strings (with colpali-engine's `process_queries`: <bos>, the text and 10
        augmentation tokens) -> one [Lq_i, dim] float32 CPU tensor per query, its attended tokens
        only (batch padding removed), L2-normalised. A query's embeddings do not depend on the
        other queries in its batch (see the module docstring on query attention)."""
        texts = check_texts(texts, "ColPaliEncoder.encode_queries")
        out: List[Tensor] = []
        for lo, hi in self._batches(len(texts), "query"):
            batch = self.processor.process_queries(texts[lo:hi])
            if "token_type_ids" not in batch:  # all prefix: bidirectional, batch-independent (module doc)
                batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
            embeddings, _ = self._forward(batch, False)
            attended = batch["attention_mask"].to(embeddings.device).bool()
            out.extend(embeddings[i][attended[i]].to(device="cpu", dtype=torch.float32) for i in range(hi - lo))
        return out
