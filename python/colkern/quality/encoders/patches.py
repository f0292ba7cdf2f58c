"""What every patch encoder produces and accepts: `PatchFeatures` (one row of D features per
patch of a grid, with an optional content mask) and page images (`ImageLike`, read as grey by
`to_gray`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._images import flatten_alpha

ImageLike = Union[Image.Image, np.ndarray]


@dataclass(frozen=True)
class PatchFeatures:
    """Features of one page's patches.

    features: float32 [n_patches, D], row-major over the grid (patch (r, c) is row r * cols + c).
    grid:     (rows, cols) with rows * cols == n_patches.
    patch:    side of a square patch in pixels of the encoded image, or None when the grid is
              stretched over the whole image (ColPali resizes every page to a fixed size).
    content:  bool [n_patches], True where the patch holds ink (each encoder says how it decides), or
              None when the encoder does not tell.
    """

    features: Tensor
    grid: Tuple[int, int]
    patch: Optional[int]
    content: Optional[Tensor] = None

    def __post_init__(self):
        f = self.features
        if not isinstance(f, Tensor) or f.dim() != 2 or f.dtype != torch.float32:
            raise ValueError(f"PatchFeatures: features must be a float32 [n_patches, D] tensor, got "
                             f"{getattr(f, 'dtype', type(f).__name__)} {tuple(getattr(f, 'shape', ()))}")
        if len(self.grid) != 2 or int(self.grid[0]) * int(self.grid[1]) != f.shape[0]:
            raise ValueError(f"PatchFeatures: grid {tuple(self.grid)} does not match {f.shape[0]} patches")
        if self.content is not None and (not isinstance(self.content, Tensor) or self.content.dtype != torch.bool
                                         or tuple(self.content.shape) != (f.shape[0],)):
            raise ValueError(f"PatchFeatures: content must be bool [{f.shape[0]}], got "
                             f"{getattr(self.content, 'dtype', type(self.content).__name__)} "
                             f"{tuple(getattr(self.content, 'shape', ()))}")

    @property
    def n_patches(self) -> int:
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        return self.features.shape[1]


def patch_means(m: np.ndarray, rows: int, cols: int) -> Tensor:
    """float32 [rows * p, cols * p] map -> float32 [rows * cols] means of its p x p patches.
    INTER_AREA by an integer factor is the exact block mean (and 2x avg_pool2d's speed)."""
    import cv2  # here, so that importing the patch types does not import OpenCV

    return torch.from_numpy(cv2.resize(m, (cols, rows), interpolation=cv2.INTER_AREA)).reshape(rows * cols)


def to_gray(image: ImageLike, arg: str = "image") -> np.ndarray:
    """A page image as float32 [H, W] in [0, 1] (0 = black ink, 1 = white paper).

    PIL images of any mode (transparent ones are composited onto white first); numpy arrays
    [H, W], [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA), uint8 / uint16 / bool or float in
    [0, 1]. Colour uses the ITU-R 601 luma weights, as PIL's "L" mode."""
    if isinstance(image, Image.Image):
        arr = np.asarray(flatten_alpha(image).convert("L"), dtype=np.float32) / 255.0
    elif isinstance(image, np.ndarray):
        arr = _array_to_gray(image, arg)
    else:
        raise TypeError(f"{arg} must be a PIL.Image or a numpy array, got {type(image).__name__}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{arg} is empty: {arr.shape[1]} x {arr.shape[0]} pixels")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _array_to_gray(a: np.ndarray, arg: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        pass
    elif a.ndim != 2:
        raise ValueError(f"{arg} must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {a.shape}")
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        x = a.astype(np.float32) / 65535.0
    elif a.dtype == np.bool_:
        x = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        x = a.astype(np.float32)
        if not np.isfinite(x).all() or x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(f"{arg}: float pixels must be finite and lie in [0, 1]")
    else:
        raise ValueError(f"{arg}: pixel dtype must be uint8, uint16, bool or float, got {a.dtype}")
    if x.ndim == 2:
        return x
    if x.shape[2] == 1:
        return x[:, :, 0]
    gray = x[:, :, 0] * 0.299 + x[:, :, 1] * 0.587 + x[:, :, 2] * 0.114
    if x.shape[2] == 4:  # composite onto white paper
        alpha = x[:, :, 3]
        gray = gray * alpha + (1.0 - alpha)
    return gray
