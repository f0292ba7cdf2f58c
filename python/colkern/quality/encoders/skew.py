"""SkewPatchEncoder: how far a page's text lines are turned from the page axes, measured the way
OCR engines deskew - a projection profile of the ink - over the whole page and over tiles of it.

Why its own encoder: Tesseract (psm 4) reads a clean Debian manual page at CER 0.01 straight,
0.16 skewed by 1 degree and 0.36-0.47 by 3-4 degrees. LinePatchEncoder's structure tensor sees
the direction of text bands per patch, but at character scale its angle is noisy (letter shapes),
so a 1-3 degree skew hides in it: on the real photographed evaluation pages
(benchmarks/quality_real_pages.py) the residuals of a model with the line encoder (true minus
predicted CER) still rank with the projection profile's |skew| at Spearman 0.40.

Projection profile: the ink pixels (a local-mean threshold, so a shadow or a scanner's dark
border is not ink) are projected on the axis perpendicular to a trial angle and counted in 1-px
bins; the angle whose profile has the most energy (sum of squared counts) lines the text rows up.
Angles are tried from -max_deg to max_deg in 0.5-degree steps, then refined in 0.1-degree steps;
rows and columns are both tried, so vertical Japanese (tategaki) columns count as lines too.

Per patch (SKEW_FEATURES, D = 6): the page's values repeated on every patch, the tile's on the
patches of that tile (tiles of `tile` x `tile` patches: 256 px, about 1.7 inches at 150 dpi):

  page_skew   |angle| in degrees of the page's lines from the nearer axis
  page_peak   how sharply that angle stands out: its profile energy over the median energy of
              all angles tried (1: no line structure; clean lines give several)
  page_width  how long the lines are: the extent of the ink along them (5th to 95th percentile),
              in pixels
  page_drift  page_width * tan(page_skew): how far a line climbs from one end to the other, in
              pixels. Skew hurts through it: on the generated receipts and forms (lines about 540
              px) Tesseract's CER does not follow the skew (Spearman -0.03 over 500 captured
              pages), while a documentation page's 1100-px lines cross into their neighbours
  tile_skew   |angle| of the tile's lines (the page's where the tile holds too little ink)
  tile_bend   |tile angle - page angle|: curl and perspective turn the lines differently across
              the page

~0.07 s (0.05-0.10) for a 1275 x 1650 page (AMD EPYC Zen 4; LinePatchEncoder 0.17 s there).
Sizes are in pixels at 150 dpi and scale with nothing: train and predict at one resolution
(colkern.quality.pipeline resamples pages to the model's DPI).
No content mask: concatenate it after an encoder with one.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np
import torch

from .patches import ImageLike, PatchFeatures, to_gray
from .tiled import TiledPatchEncoder, check_patch

SKEW_FEATURES = ("page_skew", "page_peak", "page_width", "page_drift", "tile_skew", "tile_bend")

_COARSE_STEP, _FINE_STEP = 0.5, 0.1
_PAGE_POINTS, _TILE_POINTS = 40_000, 4_000   # ink pixels sampled: enough for a 0.1-degree profile
_TILE_RANGE = 5.0                             # a tile's lines are looked for within this of the page's
_MIN_TILE_POINTS = 300                        # fewer: a tile without a line of text
_THRESHOLD_BLOCK, _THRESHOLD_C = 31, 12       # local-mean ink threshold: window (px), margin (levels)


def _profile_energy(ys: np.ndarray, xs: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Energy of the 1-px projection profile of the points (ys, xs) perpendicular to each angle:
    [A] sums of squared bin counts, one bincount for all angles."""
    t = np.deg2rad(angles_deg).astype(np.float32)[:, None]
    r = ys[None, :] * np.cos(t) - xs[None, :] * np.sin(t)          # [A, N] position across lines
    r -= r.min(axis=1, keepdims=True)
    bins = r.astype(np.int64)
    width = int(bins.max()) + 1
    counts = np.bincount((bins + width * np.arange(len(angles_deg))[:, None]).ravel(),
                         minlength=width * len(angles_deg)).reshape(len(angles_deg), width)
    return (counts.astype(np.float64) ** 2).sum(axis=1)


def _best_angle(ys: np.ndarray, xs: np.ndarray, lo: float, hi: float) -> Tuple[float, float]:
    """(angle in degrees within [lo, hi], peak ratio) of the rows of points (ys, xs) that line up best."""
    coarse = np.arange(lo, hi + 1e-9, _COARSE_STEP, dtype=np.float32)
    energy = _profile_energy(ys, xs, coarse)
    best = float(coarse[int(np.argmax(energy))])
    fine = np.arange(best - _COARSE_STEP, best + _COARSE_STEP + 1e-9, _FINE_STEP, dtype=np.float32)
    fine_energy = _profile_energy(ys, xs, fine)
    peak = float(fine_energy.max() / max(float(np.median(energy)), 1e-12))
    return float(fine[int(np.argmax(fine_energy))]), peak


def text_angle(ys: np.ndarray, xs: np.ndarray, max_deg: float = 10.0, *, vertical: Optional[bool] = None,
               around: float = 0.0) -> Tuple[float, float, bool]:
    """(signed angle in degrees, peak ratio, vertical) of the text lines through the ink points
    (ys, xs): rows, or columns (vertical=True), whichever line up more sharply unless `vertical`
    says which; angles within `around` +- max_deg. No points: (0.0, 1.0, False)."""
    if len(ys) < 2:
        return 0.0, 1.0, False
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)
    lo, hi = around - max_deg, around + max_deg
    rows = _best_angle(ys, xs, lo, hi) if vertical is not True else None
    # vertical lines: the same profile with x and y swapped (and the angle's sign)
    cols = _best_angle(xs, ys, -hi, -lo) if vertical is not False else None
    if cols is None or (rows is not None and rows[1] >= cols[1]):
        return rows[0], rows[1], False
    return -cols[0], cols[1], True


class SkewPatchEncoder(TiledPatchEncoder):
    """Page and tile skew of the text lines by projection profile (see the module docstring).

    patch: patch side in pixels (32 to concatenate with the other encoders' 32-px grids).
    tile: tile side in patches (the local estimate's window). max_deg: the largest skew looked
    for, in degrees (camera captures reach 8; beyond 10 Tesseract reads almost nothing anyway)."""

    name = "skew"
    has_content_mask = False
    FEATURES = SKEW_FEATURES

    def __init__(self, patch: int = 32, *, tile: int = 8, max_deg: float = 10.0):
        if isinstance(tile, bool) or not isinstance(tile, int) or not 1 <= tile <= 64:
            raise ValueError(f"SkewPatchEncoder: tile must be an int in 1..64 (patches), got {tile!r}")
        if isinstance(max_deg, bool) or not isinstance(max_deg, (int, float)) or not 1.0 <= float(max_deg) <= 30.0:
            raise ValueError(f"SkewPatchEncoder: max_deg must be a number in [1, 30], got {max_deg!r}")
        self.patch = check_patch("SkewPatchEncoder", patch)
        self.tile = tile
        self.max_deg = float(max_deg)

    def params(self) -> Dict[str, Any]:
        return {"patch": self.patch, "tile": self.tile, "max_deg": self.max_deg}

    def encode(self, image: ImageLike) -> PatchFeatures:
        """-> PatchFeatures(features float32 [rows * cols, 6], grid, patch, content None)."""
        gray = to_gray(image)
        H, W = gray.shape
        rows, cols = self.grid_for(H, W)
        levels = cv2.convertScaleAbs(gray, alpha=255.0)
        ink = cv2.adaptiveThreshold(levels, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                    _THRESHOLD_BLOCK, _THRESHOLD_C)
        ys, xs = np.nonzero(ink)
        # A fixed seed: the same page always gives the same features.
        rng = np.random.default_rng(0)
        pick = rng.choice(len(ys), _PAGE_POINTS, replace=False) if len(ys) > _PAGE_POINTS else slice(None)
        page_angle, page_peak, vertical = text_angle(ys[pick], xs[pick], self.max_deg)
        along = (ys if vertical else xs)[pick]
        width = float(np.percentile(along, 95) - np.percentile(along, 5)) if len(along) else 0.0
        drift = width * abs(float(np.tan(np.deg2rad(page_angle))))

        side = self.tile * self.patch
        t_rows, t_cols = -(-H // side), -(-W // side)
        tile_angle = np.full((t_rows, t_cols), page_angle, np.float64)
        tile_of = (ys // side) * t_cols + xs // side
        order = np.argsort(tile_of, kind="stable")
        starts = np.searchsorted(tile_of[order], np.arange(t_rows * t_cols + 1))
        for k in range(t_rows * t_cols):
            members = order[starts[k]:starts[k + 1]]
            if len(members) < _MIN_TILE_POINTS:
                continue
            if len(members) > _TILE_POINTS:
                members = rng.choice(members, _TILE_POINTS, replace=False)
            # the page's line orientation, within _TILE_RANGE degrees of its angle
            tile_angle[k // t_cols, k % t_cols] = text_angle(ys[members], xs[members], _TILE_RANGE,
                                                             vertical=vertical, around=page_angle)[0]

        # every patch takes its tile's values
        r_tile = np.minimum(np.arange(rows) // self.tile, t_rows - 1)
        c_tile = np.minimum(np.arange(cols) // self.tile, t_cols - 1)
        local = tile_angle[r_tile[:, None], c_tile[None, :]].reshape(-1)
        page = [abs(page_angle), page_peak, width, drift]
        feats = np.stack([np.full_like(local, v) for v in page] + [np.abs(local), np.abs(local - page_angle)], axis=1)
        return PatchFeatures(torch.from_numpy(feats.astype(np.float32)), (rows, cols), self.patch, None)
