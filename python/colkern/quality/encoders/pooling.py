"""Page vectors from patch features: `pool_features` turns each page's PatchFeatures into one
fixed-length row, the input of the quality model.

Columns (named by `pooled_feature_names`, which the quality model stores in its header):
[mean | max | std] over all patches (3*D, colkern.patch_pool over packed rows + offsets), by
default also [mean | max | std] over the page's *content* patches only (3*D more) and two global
features.

Why content pooling: on a typical page most patches are blank paper, so the mean of a blur or
noise statistic over all patches mostly measures how much paper there is. The same statistics
over the patches that hold ink measure the text itself. The pixel and glyph encoders mark content
patches (see their modules); ColPali features carry no such mask, so their pages pool over all
patches only.

Global features (appended when `globals=True`):
  log2_n_patches  log2 of the patch count: the page's size in patches, a resolution proxy
                  (the same text rendered at a lower DPI covers fewer pixels and OCRs worse);
  content_frac    fraction of content patches (NaN without content masks).
Pages (or windows) without any content patch get NaN in the content columns; LightGBM treats
NaN as missing.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor

from ...ops import patch_pool
from .patches import ImageLike, PatchFeatures

POOL_STATS = ("mean", "max", "std")
GLOBAL_FEATURES = ("log2_n_patches", "content_frac")


def pooled_feature_names(patch_names: Sequence[str], *, content: bool = True, globals: bool = True) -> List[str]:
    """Column names of pool_features' output, e.g. "mean:lap_var", "content_max:noise_sigma"."""
    names = [f"{s}:{n}" for s in POOL_STATS for n in patch_names]
    if content:
        names += [f"content_{s}:{n}" for s in POOL_STATS for n in patch_names]
    if globals:
        names += list(GLOBAL_FEATURES)
    return names


def _resolve_content(pages: Sequence[PatchFeatures], content: Optional[bool]) -> bool:
    has = [p.content is not None for p in pages]
    if content is None:
        if any(has) and not all(has):
            raise ValueError("pool_features: some pages have content masks and some do not")
        return all(has)
    if content and not all(has):
        raise ValueError(f"pool_features: content=True but page {has.index(False)} has no content mask "
                         f"(ColPali features have none: pass content=False)")
    return bool(content)


def pool_features(pages: Sequence[PatchFeatures], *, content: Optional[bool] = None,
                  globals: bool = True) -> Tensor:
    """Fixed-length page vectors from per-patch features.

    pages:   B PatchFeatures with the same D.
    content: also pool over each page's content patches; None (default) = when the pages carry
             content masks.
    -> float32 [B, 3*D (+ 3*D with content) (+ 2 with globals)], columns as pooled_feature_names:
       [mean | max | std] over all patches (colkern.patch_pool, std with Bessel's correction),
       then the same over content patches (NaN for a page without one), then log2_n_patches and
       content_frac.
    """
    pages = list(pages)
    if not pages:
        raise ValueError("pool_features: pages is empty")
    for i, p in enumerate(pages):
        if not isinstance(p, PatchFeatures):
            raise TypeError(f"pool_features: pages[{i}] must be PatchFeatures, got {type(p).__name__}")
        if p.dim != pages[0].dim:
            raise ValueError(f"pool_features: pages[{i}] has {p.dim} features, pages[0] has {pages[0].dim}")
    use_content = _resolve_content(pages, content)
    values = torch.cat([p.features for p in pages], 0)
    counts = torch.tensor([p.n_patches for p in pages], dtype=torch.int64)
    offsets = torch.zeros(len(pages) + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=offsets[1:])
    parts = [patch_pool(values, offsets=offsets)]
    n_content = None
    if use_content:
        mask = torch.cat([p.content for p in pages], 0)
        n_content = torch.tensor([int(p.content.sum()) for p in pages], dtype=torch.int64)
        c_offsets = torch.zeros_like(offsets)
        torch.cumsum(n_content, 0, out=c_offsets[1:])
        parts.append(patch_pool(values[mask].contiguous(), offsets=c_offsets))
    if globals:
        parts.append(global_features(counts, n_content))
    return torch.cat(parts, 1)


def global_features(n_patches: Tensor, n_content: Optional[Tensor]) -> Tensor:
    """[B] patch counts and [B] content patch counts (or None) -> float32 [B, 2]
    (log2_n_patches, content_frac; NaN without content counts)."""
    n = n_patches.to(torch.float32)
    frac = n_content.to(torch.float32) / n.clamp_min(1) if n_content is not None else torch.full_like(n, float("nan"))
    return torch.stack([torch.log2(n.clamp_min(1)), frac], 1)


def page_features(images: Sequence[ImageLike], encoder, *, content: Optional[bool] = None,
                  globals: bool = True) -> Tensor:
    """Encode and pool: -> float32 [B, F] (see pool_features). content None = the encoder's
    default (content pooling when its pages carry content masks)."""
    if content is None:
        content = bool(getattr(encoder, "has_content_mask", False))
    return pool_features(encoder.encode_many(list(images)), content=content, globals=globals)
