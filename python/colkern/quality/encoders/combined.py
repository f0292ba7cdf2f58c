"""Several encoders side by side on one patch grid: their features concatenated per patch.

    enc = ConcatPatchEncoder([GlyphPatchEncoder(), PixelPatchEncoder(patch=32)])
    pf = enc.encode(page)        # features [n, 19 + 17], names "glyph.ink", "pixel.lap_var", ...

Every part must produce the same grid (same patch size, grids from ceil(H / patch) x
ceil(W / patch): the glyph, ppocr and padded pixel encoders do). The content mask is the first
part's, so the pooled page vector pools every part over the same content patches.
`concat_patch_features` does the concatenation for features computed earlier (the benchmark
computes each encoder once per page and combines them).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch

from .patches import ImageLike, PatchFeatures


def concat_patch_features(parts: Sequence[PatchFeatures]) -> PatchFeatures:
    """One page's PatchFeatures from several encoders -> one PatchFeatures, features side by side,
    the first part's content mask."""
    parts = list(parts)
    if not parts:
        raise ValueError("concat_patch_features: no parts")
    first = parts[0]
    for i, p in enumerate(parts[1:], 1):
        if tuple(p.grid) != tuple(first.grid) or p.patch != first.patch:
            raise ValueError(f"concat_patch_features: part {i} has grid {tuple(p.grid)} of {p.patch}-px "
                             f"patches, part 0 has {tuple(first.grid)} of {first.patch}-px patches")
    feats = torch.cat([p.features for p in parts], 1).contiguous()
    return PatchFeatures(feats, first.grid, first.patch, first.content)


class ConcatPatchEncoder:
    """The features of `encoders` concatenated per patch (see the module docstring).

    params() names every part ({"parts": [{"name", "params"}, ...]}), so a model file rebuilds
    the same encoder (colkern.quality.pipeline.make_encoder)."""

    name = "concat"

    def __init__(self, encoders: Sequence[Any]):
        encoders = list(encoders)
        if len(encoders) < 2:
            raise ValueError(f"ConcatPatchEncoder: needs at least 2 encoders, got {len(encoders)}")
        names = [e.name for e in encoders]
        if len(set(names)) != len(names):
            raise ValueError(f"ConcatPatchEncoder: encoders must be distinct, got {names}")
        patches = {getattr(e, "patch", None) for e in encoders}
        if len(patches) != 1 or None in patches:
            raise ValueError(f"ConcatPatchEncoder: every encoder must use one patch size, got "
                             f"{[getattr(e, 'patch', None) for e in encoders]}")
        if getattr(encoders[0], "edge", "pad") != "pad" or any(getattr(e, "edge", "pad") != "pad" for e in encoders):
            raise ValueError("ConcatPatchEncoder: encoders must cover partial edge patches (edge='pad')")
        self.encoders = encoders
        self.patch = encoders[0].patch
        self.has_content_mask = bool(getattr(encoders[0], "has_content_mask", False))

    def params(self) -> Dict[str, Any]:
        return {"parts": [{"name": e.name, "params": e.params()} for e in self.encoders]}

    def feature_names(self) -> List[str]:
        return [f"{e.name}.{n}" for e in self.encoders for n in e.feature_names()]

    def __repr__(self) -> str:
        return f"ConcatPatchEncoder({self.encoders!r})"

    def encode(self, image: ImageLike) -> PatchFeatures:
        return concat_patch_features([e.encode(image) for e in self.encoders])

    def encode_many(self, images: Sequence[ImageLike]) -> List[PatchFeatures]:
        return [self.encode(im) for im in images]
