"""BorderPatchEncoder: what lies around the page rather than on it - a scanner lid's or the glass's
dark band along an edge, the desk beyond a photographed page - found as dark runs that start at
the image's edge, and described so that a model can tell a harmless frame from one that spoils
the reading.

Why its own encoder: the other encoders read a border as page content. The glyph encoder sees one
huge connected component (the features of merged, blurred lines), the pixel encoder a block of
dark, low-contrast patches. On the real scanned evaluation pages (benchmarks/quality_real_pages.py,
--capture scanner) the shipped Tesseract English model predicted CER 0.35 for a clean page with a
lid's shadow along two edges that Tesseract read at 0.008; painting the band white brought the
prediction to 0.07. Whether a border hurts depends on the engine and the language: Tesseract
English mostly skips it, Tesseract Japanese reads characters into a textured band (a Japanese page
with a border read at CER 0.55 was predicted 0.09 once the band was painted out). So the band is
not erased: it is measured, and the model learns what it costs. In the `border` training run
(benchmarks/quality_models.py --plan border) CV chose it for Tesseract Japanese (0.905 against
0.903) and not for English (0.888 against 0.889).

Detection, per edge: in each line perpendicular to the edge (each column for the top edge), the
run of dark pixels starting at the edge ("dark": below half-way from the page's ink level to its
paper level, both percentiles of a smoothed copy). Runs shorter than `min_run` pixels are text or
noise touching the edge, not a band, and an edge has a band only where runs cover a quarter of
it (a figure or a rule in the margin covers less); a wavering or slanted band (a lid, a page photographed at
an angle) keeps its shape because every line has its own depth.

Per patch (BORDER_FEATURES, D = 7): the patch's own cover and nearness, the page's values on every
patch (as SkewPatchEncoder repeats the page skew):

  cover         share of the patch inside the border
  near          1 where a patch within `reach` patches of this one is mostly border (text beside
                a band: Tesseract may join the two into one line or block)
  page_frac     share of the page inside the border
  page_edges    how many of the four edges carry a band
  page_tone     the band's median level over the paper level (0 a black lid, near 1 a pale one)
  page_texture  spread of the band's levels over the page's contrast (a noisy or textured band
                is read as characters more often than a flat one)
  page_gap      pixels between the band and the nearest ink on the page side, over the page's
                larger side (1 without a band): how close the text runs to the border

0.04-0.34 s (median 0.08) for a 1275 x 1650 page, the most with a band on the page (AMD EPYC
Zen 4, measured while a data set build used both cores). Sizes are in pixels at 150 dpi and scale
with nothing: train and predict at one resolution (colkern.quality.pipeline resamples pages to the
model's DPI). No content mask: concatenate it after an encoder with one.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np
import torch

from .patches import ImageLike, PatchFeatures, to_gray
from .tiled import TiledPatchEncoder, check_patch

BORDER_FEATURES = ("cover", "near", "page_frac", "page_edges", "page_tone", "page_texture", "page_gap")

_SMOOTH = 5                     # box filter (px) before the levels: grain and 1-bit dither are not bands
_PAPER_PCT, _INK_PCT = 90.0, 1.0
_RIM = 3.0                      # px beside a band that still belong to its edge


def edge_runs(dark: np.ndarray) -> Dict[str, np.ndarray]:
    """Per edge, the length of the dark run that starts at the edge in every line across it:
    "top" / "bottom" -> [W] (per column), "left" / "right" -> [H] (per row)."""
    def run(a: np.ndarray) -> np.ndarray:   # along axis 0, from index 0
        light = ~a
        first = np.argmax(light, axis=0)
        return np.where(light.any(axis=0), first, a.shape[0])

    return {"top": run(dark), "bottom": run(dark[::-1]), "left": run(dark.T), "right": run(dark.T[::-1])}


def smoothed(gray: np.ndarray) -> np.ndarray:
    """The page box-filtered over _SMOOTH px, which both the band and the ink beside it are read from."""
    return cv2.blur(gray, (_SMOOTH, _SMOOTH))


def border_mask(gray: np.ndarray, min_run: int, smooth: Optional[np.ndarray] = None) -> Tuple[np.ndarray, int]:
    """(bool [H, W] border pixels, edges with a band) of a grey page in 0..1; `smooth`: its
    smoothed() copy when the caller has one."""
    H, W = gray.shape
    smooth = smoothed(gray) if smooth is None else smooth
    paper, ink = np.percentile(smooth, _PAPER_PCT), np.percentile(smooth, _INK_PCT)
    dark = smooth < 0.5 * (paper + ink) if paper - ink > 0.05 else np.zeros_like(smooth, bool)
    mask = np.zeros((H, W), bool)
    edges = 0
    rows, cols = np.arange(H)[:, None], np.arange(W)[None, :]
    for edge, depth in edge_runs(dark).items():
        depth = np.where(depth >= min_run, depth, 0)
        # a band covers a fair part of its edge; a few long runs are a figure or a rule at the margin
        if (depth > 0).mean() < 0.25:
            continue
        edges += 1
        if edge == "top":
            mask |= rows < depth[None, :]
        elif edge == "bottom":
            mask |= rows >= H - depth[None, :]
        elif edge == "left":
            mask |= cols < depth[:, None]
        else:
            mask |= cols >= W - depth[:, None]
    return mask, edges


class BorderPatchEncoder(TiledPatchEncoder):
    """Dark bands along the page's edges (see the module docstring).

    patch: patch side in pixels (32 to concatenate with the other encoders' 32-px grids).
    min_run: the shortest dark run from an edge that counts as border, in pixels.
    reach: patches around a patch that make it "near" the border."""

    name = "border"
    has_content_mask = False
    FEATURES = BORDER_FEATURES

    def __init__(self, patch: int = 32, *, min_run: int = 6, reach: int = 2):
        if isinstance(min_run, bool) or not isinstance(min_run, int) or not 1 <= min_run <= 200:
            raise ValueError(f"BorderPatchEncoder: min_run must be an int in 1..200 (pixels), got {min_run!r}")
        if isinstance(reach, bool) or not isinstance(reach, int) or not 0 <= reach <= 16:
            raise ValueError(f"BorderPatchEncoder: reach must be an int in 0..16 (patches), got {reach!r}")
        self.patch = check_patch("BorderPatchEncoder", patch)
        self.min_run = min_run
        self.reach = reach

    def params(self) -> Dict[str, Any]:
        return {"patch": self.patch, "min_run": self.min_run, "reach": self.reach}

    def encode(self, image: ImageLike) -> PatchFeatures:
        """-> PatchFeatures(features float32 [rows * cols, 7], grid, patch, content None)."""
        gray = np.ascontiguousarray(to_gray(image), dtype=np.float32)
        H, W = gray.shape
        rows, cols = self.grid_for(H, W)
        P = self.patch
        smooth = smoothed(gray)
        mask, edges = border_mask(gray, self.min_run, smooth)

        # the share of each patch's pixels on the image (the last row and column are cut short)
        padded = np.zeros((rows * P, cols * P), np.float32)
        padded[:H, :W] = mask
        valid = np.zeros_like(padded)
        valid[:H, :W] = 1.0
        cover = padded.reshape(rows, P, cols, P).sum(axis=(1, 3)) / valid.reshape(rows, P, cols, P).sum(axis=(1, 3))
        k = 2 * self.reach + 1
        near = cv2.dilate((cover > 0.5).astype(np.uint8), np.ones((k, k), np.uint8)).astype(np.float32)

        frac = float(mask.mean())
        tone, texture, gap = 1.0, 0.0, 1.0
        if mask.any():
            inside = gray[mask]
            paper, ink = np.percentile(gray[~mask], _PAPER_PCT) if (~mask).any() else 1.0, np.percentile(gray, _INK_PCT)
            tone = float(np.median(inside) / max(float(paper), 1e-3))
            texture = float(np.std(inside) / max(float(paper - ink), 1e-3))
            gap = self._gap(smooth, mask, float(paper), float(ink))
        page = np.array([frac, float(edges), tone, texture, gap], np.float32)
        feats = np.concatenate([cover.reshape(-1, 1), near.reshape(-1, 1),
                                np.broadcast_to(page, (rows * cols, len(page)))], axis=1)
        return PatchFeatures(torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)), (rows, cols), P, None)

    @staticmethod
    def _gap(smooth: np.ndarray, mask: np.ndarray, paper: float, ink: float) -> float:
        """Distance from the band to the nearest ink off it, over the page's larger side."""
        # ink of the smoothed page (stray specks are not text); the band's own anti-aliased rim
        # (within _RIM px of it) is not ink beside it
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
        ink_px = (smooth < 0.5 * (paper + ink)) & (dist > _RIM)
        if not ink_px.any():
            return 1.0
        return float(dist[ink_px].min() / max(smooth.shape))
