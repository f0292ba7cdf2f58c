"""TiledPatchEncoder: what the encoders that cut a page into square patches share - the patch
argument's check, the grid (partial edge patches count, as "pad"), feature names from the class's
FEATURES tuple, a repr from params(), and encode_many as a loop over encode.

A subclass sets `name`, `has_content_mask` and FEATURES (or overrides feature_names), stores its
arguments in __init__ (checking `patch` with check_patch) and implements params() and encode().
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from .patches import ImageLike, PatchFeatures


def check_patch(owner: str, patch: Any, multiple_of: int = 1, minimum: int = 4) -> int:
    """`patch` if it is an int >= minimum and a multiple of multiple_of, else a ValueError naming it."""
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < minimum or patch % multiple_of:
        want = f"a positive multiple of {multiple_of}" if multiple_of > 1 else f"an int >= {minimum}"
        raise ValueError(f"{owner}: patch must be {want}, got {patch!r}")
    return patch


class TiledPatchEncoder:
    """Base of the patch encoders with a square pixel grid (see the module docstring)."""

    name: str = ""
    has_content_mask: bool = False
    edge = "pad"
    FEATURES: Tuple[str, ...] = ()
    patch: int

    def params(self) -> Dict[str, Any]:
        """The constructor arguments (JSON-able): stored in a model header, checked on use."""
        raise NotImplementedError

    def feature_names(self) -> List[str]:
        return list(self.FEATURES)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def grid_for(self, height: int, width: int) -> Tuple[int, int]:
        """(rows, cols) of the grid for an image of height x width pixels: the last row and
        column of patches may be cut short by the image's edge."""
        return -(-height // self.patch), -(-width // self.patch)

    def encode(self, image: ImageLike) -> PatchFeatures:
        raise NotImplementedError

    def encode_many(self, images: Sequence[ImageLike]) -> List[PatchFeatures]:
        return [self.encode(im) for im in images]
