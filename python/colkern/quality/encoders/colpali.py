"""ColPaliFeatureEncoder: per-patch ColPali features (the 128-d retrieval projection or the
language-model hidden states) of page images, through a ColPali page encoder such as
colkern.colpali.ColPaliEncoder. The encoder is passed in (duck-typed), so this module imports
nothing from colkern.colpali or colpali-engine."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .patches import ImageLike, PatchFeatures


class ColPaliFeatureEncoder:
    """Per-patch ColPali features of page images, through an encoder object with
    `encode_images(images, hidden_states=bool) -> list of PageEmbedding` where each PageEmbedding
    has `.embeddings` [n, 128], `.hidden` [n, H] or None and `.grid` (rows, cols) (the
    colkern.colpali page encoder).

    use_hidden: False -> the 128-d retrieval projection; True -> the H-d (2048 for ColPali)
    language-model hidden states before the projection. ColPali is trained contrastively to
    match a page however degraded, so its projection tends to be invariant to exactly what OCR
    quality depends on; the hidden states may keep more of it.
    dim: the feature width, if known before the first page (default: the encoder's `dim`
    (else 128), or its `hidden_size` for hidden states); otherwise learnt from the first page.
    Numpy pages are handed to the encoder as PIL images (colour kept).
    Pages carry no content mask (pool with content pooling off) and `patch` None: the grid is
    stretched over the whole page.
    """

    has_content_mask = False

    def __init__(self, encoder: Any, use_hidden: bool = False, *, dim: Optional[int] = None,
                 batch_size: int = 4):
        if not callable(getattr(encoder, "encode_images", None)):
            raise TypeError(f"ColPaliFeatureEncoder: encoder must have an encode_images(images, "
                            f"hidden_states=...) method, got {type(encoder).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"ColPaliFeatureEncoder: batch_size must be an int >= 1, got {batch_size!r}")
        self.encoder = encoder
        self.use_hidden = bool(use_hidden)
        self.batch_size = batch_size
        if dim is None:
            dim = getattr(encoder, "hidden_size", None) if self.use_hidden else getattr(encoder, "dim", 128)
        self._dim = int(dim) if dim is not None else None

    @property
    def name(self) -> str:
        return "colpali-hidden" if self.use_hidden else "colpali-proj"

    def params(self) -> Dict[str, Any]:
        model = getattr(self.encoder, "model_name", None) or getattr(self.encoder, "name", None)
        # The feature width is not a parameter: it may be unknown until the first page, and the
        # model checks it against its feature names anyway.
        return {"use_hidden": self.use_hidden,
                "model": str(model) if model is not None else type(self.encoder).__name__}

    def feature_names(self) -> List[str]:
        if self._dim is None:
            raise RuntimeError("ColPaliFeatureEncoder: the feature width is unknown until the first "
                               "page is encoded (or pass dim=...)")
        prefix = "hid" if self.use_hidden else "proj"
        return [f"{prefix}{i}" for i in range(self._dim)]

    def __repr__(self) -> str:
        return f"ColPaliFeatureEncoder({type(self.encoder).__name__}, use_hidden={self.use_hidden})"

    def encode(self, image: ImageLike) -> PatchFeatures:
        return self.encode_many([image])[0]

    def encode_many(self, images: Sequence[ImageLike]) -> List[PatchFeatures]:
        """-> one PatchFeatures per image, features float32 [rows * cols, 128 or H]."""
        images = list(images)
        out: List[PatchFeatures] = []
        for s in range(0, len(images), self.batch_size):
            batch = [_to_pil(im, f"images[{s + i}]") for i, im in enumerate(images[s:s + self.batch_size])]
            pages = self.encoder.encode_images(batch, hidden_states=self.use_hidden)
            if len(pages) != len(batch):
                raise ValueError(f"ColPaliFeatureEncoder: encode_images returned {len(pages)} pages "
                                 f"for {len(batch)} images")
            for i, page in enumerate(pages):
                out.append(self._page(page, s + i))
        return out

    def _page(self, page: Any, i: int) -> PatchFeatures:
        x = page.hidden if self.use_hidden else page.embeddings
        if x is None:
            raise ValueError(f"ColPaliFeatureEncoder: page {i} has no hidden states; the encoder "
                             f"must return them for hidden_states=True")
        x = torch.as_tensor(x).detach().to("cpu", torch.float32).contiguous()
        if x.dim() != 2:
            raise ValueError(f"ColPaliFeatureEncoder: page {i} features must be [n, D], got {tuple(x.shape)}")
        if self._dim is None:
            self._dim = x.shape[1]
        elif x.shape[1] != self._dim:
            raise ValueError(f"ColPaliFeatureEncoder: page {i} has feature dim {x.shape[1]}, expected {self._dim}")
        rows, cols = (int(v) for v in page.grid)
        return PatchFeatures(x, (rows, cols), None, None)


def _to_pil(image: ImageLike, arg: str) -> Image.Image:
    """PIL images pass through; numpy pages become PIL (colour kept: ColPali sees RGB)."""
    if isinstance(image, Image.Image):
        return image
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{arg} must be a PIL.Image or a numpy array, got {type(image).__name__}")
    a = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"{arg} must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {image.shape}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
            raise ValueError(f"{arg}: float pixels must be finite and lie in [0, 1]")
        a = np.rint(a * 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"{arg}: pixel dtype must be uint8 or float in [0, 1], got {a.dtype}")
    return Image.fromarray(np.ascontiguousarray(a))
