"""A tiny ColPali with random weights, built offline, for tests and examples.

    path = build_tiny_colpali(tmp_dir / "tiny-colpali")       # ~1 s, ~1 MB on disk
    encoder = colkern.colpali.ColPaliEncoder.load(path)       # 56x56 pages -> 4x4 = 16 patches
    model, processor = make_tiny_colpali(seed=0)              # the same, in memory

It has the real ColPali architecture and file layout (a PaliGemma: SigLIP vision tower + Gemma
decoder, plus ColPali's 128-d `custom_text_proj`) at toy sizes, so everything that loads, runs
and scores a real checkpoint runs unchanged on it, in milliseconds per page on one CPU thread.
Nothing is downloaded: the tokenizer is a byte-level BPE trained with `tokenizers` on a few
built-in sentences. Its special tokens are the ones the ColPali pipeline relies on: <pad> (also
colpali-engine's query augmentation token), <eos>, <bos>, <unk> and <image> (ids 0..4, Gemma's
order for the first four); PaliGemmaProcessor adds its 1152 <locNNNN>/<segNNN> tokens itself.

The weights are random (transformers' initialisation under `seed`), so embeddings carry no
meaning; the same seed and sizes give the same bytes. The saved directory reloads with
ColPali.from_pretrained / ColPaliProcessor.from_pretrained to identical outputs.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .._types import PathLike
from ._save import save_model_atomically

# Gemma's special-token order for the first four ids; <image> is PaliGemma's image placeholder.
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]

# Training text for the BPE merges: enough to give common words their own tokens.
_CORPUS = [
    "Describe the image.",
    "What is the total revenue reported for 2023?",
    "Which table lists the quarterly results by region?",
    "Figure 3 shows the architecture of the retrieval model.",
    "The invoice number, the date and the amount due are at the top of the page.",
    "A quick brown fox jumps over the lazy dog 0123456789.",
    "Late interaction scores every query token against every page patch.",
]


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", extra_special_tokens=["<image>"])


def _check_sizes(image_size: int, patch_size: int, hidden_size: int, vision_hidden_size: int,
                 num_heads: int, num_layers: int, intermediate_size: int, vocab_size: int) -> None:
    for name, v in (("image_size", image_size), ("patch_size", patch_size), ("hidden_size", hidden_size),
                    ("vision_hidden_size", vision_hidden_size), ("num_heads", num_heads),
                    ("num_layers", num_layers), ("intermediate_size", intermediate_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"build_tiny_colpali: {name} must be a positive int, got {v!r}")
    if image_size % patch_size:
        raise ValueError(f"build_tiny_colpali: image_size {image_size} is not a multiple of patch_size {patch_size}")
    for name, v in (("hidden_size", hidden_size), ("vision_hidden_size", vision_hidden_size)):
        if v % num_heads:
            raise ValueError(f"build_tiny_colpali: {name} {v} is not a multiple of num_heads {num_heads}")
    # 256 byte symbols + the special tokens are the floor of a byte-level BPE vocabulary.
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"build_tiny_colpali: vocab_size must be >= {256 + len(SPECIAL_TOKENS)}, got {vocab_size}")


def make_tiny_colpali(*, seed: int = 0, image_size: int = 56, patch_size: int = 14, hidden_size: int = 64,
                      vision_hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                      intermediate_size: int = 128, vocab_size: int = 300):
    """Builds a random-weight ColPali in memory. -> (ColPali model in eval mode, ColPaliProcessor).

    image_size / patch_size: pages are resized to image_size x image_size and cut into
      (image_size // patch_size)^2 patches (defaults: 56 / 14 -> a 4x4 grid, 16 image tokens).
    hidden_size: Gemma width (the size of the hidden states ColPaliEncoder can return);
    vision_hidden_size: SigLIP width; num_layers / num_heads: of both towers; intermediate_size:
      Gemma's MLP width; vocab_size: BPE vocabulary before PaliGemma's 1152 location/segmentation
      tokens. The projection is 128-d, as in every ColPali. Same arguments, same weights.
    """
    from ..colpali import import_colpali_engine

    _check_sizes(image_size, patch_size, hidden_size, vision_hidden_size, num_heads, num_layers,
                 intermediate_size, vocab_size)
    ce = import_colpali_engine()
    from transformers import GemmaConfig, PaliGemmaConfig, SiglipImageProcessor, SiglipVisionConfig

    grid = image_size // patch_size
    # Real ColPali's preprocessing (bicubic resize, rescale to [0, 1], normalise to [-1, 1]) at toy size.
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size}, resample=3,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                           image_seq_length=grid * grid)
    processor = ce.models.ColPaliProcessor(image_processor=image_processor, tokenizer=_train_tokenizer(vocab_size))
    tokenizer = processor.tokenizer
    n_tokens = len(tokenizer)  # after PaliGemmaProcessor added its <loc>/<seg> tokens
    text_config = GemmaConfig(vocab_size=n_tokens, hidden_size=hidden_size, intermediate_size=intermediate_size,
                              num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=1,
                              head_dim=hidden_size // num_heads, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    vision_config = SiglipVisionConfig(hidden_size=vision_hidden_size, intermediate_size=2 * vision_hidden_size,
                                       num_hidden_layers=num_layers, num_attention_heads=num_heads,
                                       image_size=image_size, patch_size=patch_size, vision_use_head=False)
    config = PaliGemmaConfig(vision_config=vision_config, text_config=text_config, vocab_size=n_tokens,
                             image_token_index=processor.image_token_id, projection_dim=hidden_size,
                             hidden_size=hidden_size)
    # Seed a private copy of the RNG: building a test model must not move the caller's stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ce.models.ColPali(config).eval()
    return model, processor


def build_tiny_colpali(path: PathLike, *, seed: int = 0, **sizes) -> Path:
    """Builds a random-weight ColPali (model + processor, see make_tiny_colpali for `sizes`) and
    saves it to the directory `path`, which must not exist or be an empty directory.

    The model is written to a temporary directory beside `path` and renamed into place, so `path`
    never holds a half-written model. -> Path of the saved model.
    Raises FileExistsError if `path` is a file or a non-empty directory.
    """
    return save_model_atomically(path, lambda: make_tiny_colpali(seed=seed, **sizes), "build_tiny_colpali")
