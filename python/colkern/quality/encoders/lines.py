"""LinePatchEncoder: how the text lines run and how the paper is lit, per patch - what a scanner
or phone camera changes about a page (colkern.quality.capture) without damaging a single glyph.

Tesseract (psm 4) reads a clean Debian manual page skewed by 4 degrees at CER 0.47 (0.01
straight), and its global Otsu threshold turns a shadowed part of the page black; the glyph and
pixel encoders see each patch on its own and neither of those. Per patch (LINE_FEATURES, D = 9):

  line_dev      how far the local text lines deviate from the page axes, in degrees [0, 45]:
                from the structure tensor of the ink, smoothed at about a character's width so
                a line of words becomes one band (gradients run across the band)
  sin2, cos2    the line direction as a double angle (sin 2a, cos 2a): pooled over the page,
                their mean is the skew and their spread the bending (warp, perspective)
  coherence     how much one direction dominates (0 isotropic, 1 a clean band)
  energy        the structure tensor's trace: how much line structure there is
  paper         the local paper level (a max filter over a ~2-line window of the lightly
                smoothed page): 1 white, lower in a shadow
  paper_rel     paper / the page's median paper level
  otsu_margin   paper minus the page's Otsu threshold: negative where a global threshold turns
                the paper itself black
  dark_frac     the share of the patch darker than the page's Otsu threshold

~0.05 s for a 1240 x 1750 page on one core (OpenCV filters on the page). Sizes are in pixels at
150 dpi and scale with nothing: train and predict at one resolution (colkern.quality.pipeline
resamples pages to the model's DPI). No content mask: concatenate it after an encoder with one.
"""
from __future__ import annotations

from typing import Any, Dict

import cv2
import numpy as np
import torch

from .patches import ImageLike, PatchFeatures, patch_means, to_gray
from .tiled import TiledPatchEncoder, check_patch

LINE_FEATURES = ("line_dev", "sin2", "cos2", "coherence", "energy", "paper", "paper_rel", "otsu_margin",
                 "dark_frac")


class LinePatchEncoder(TiledPatchEncoder):
    """Text-line direction and paper lighting per patch (see the module docstring).

    patch: patch side in pixels (32 to concatenate with the other encoders' 32-px grids).
    char_sigma: Gaussian sigma (px) merging a line's characters into a band (about half a 10 pt
      x-height at 150 dpi: 3); window_sigma: the structure tensor's averaging window (px).
    The page is padded to whole patches by mirroring (edge "pad", as the other encoders)."""

    name = "lines"
    has_content_mask = False
    FEATURES = LINE_FEATURES

    def __init__(self, patch: int = 32, *, char_sigma: float = 3.0, window_sigma: float = 16.0):
        for arg, v in (("char_sigma", char_sigma), ("window_sigma", window_sigma)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.5 <= float(v) <= 200.0:
                raise ValueError(f"LinePatchEncoder: {arg} must be a number in [0.5, 200], got {v!r}")
        self.patch = check_patch("LinePatchEncoder", patch)
        self.char_sigma = float(char_sigma)
        self.window_sigma = float(window_sigma)

    def params(self) -> Dict[str, Any]:
        return {"patch": self.patch, "char_sigma": self.char_sigma, "window_sigma": self.window_sigma}

    def encode(self, image: ImageLike) -> PatchFeatures:
        """-> PatchFeatures(features float32 [rows * cols, 9], grid, patch, content None)."""
        gray = to_gray(image)
        H, W = gray.shape
        p = self.patch
        rows, cols = self.grid_for(H, W)
        x = np.ascontiguousarray(np.pad(gray, ((0, rows * p - H), (0, cols * p - W)), mode="symmetric"))

        def pmean(m: np.ndarray) -> torch.Tensor:  # [Hp, Wp] -> [rows * cols] patch means
            return patch_means(m, rows, cols)

        # Line direction: the structure tensor of the ink smoothed at character scale.
        ink = cv2.GaussianBlur(1.0 - x, (0, 0), self.char_sigma, borderType=cv2.BORDER_REPLICATE)
        gx = cv2.Sobel(ink, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.Sobel(ink, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)

        def window(m: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(m, (0, 0), self.window_sigma, borderType=cv2.BORDER_REPLICATE)

        jxx, jyy, jxy = pmean(window(gx * gx)), pmean(window(gy * gy)), pmean(window(gx * gy))
        trace = jxx + jyy
        # Gradient direction g = 0.5 atan2(2 Jxy, Jxx - Jyy); the lines run at g + 90 degrees,
        # so the line's double angle is 2g + 180: (sin, cos) of it are minus those of 2g.
        diff, cross = jxx - jyy, 2.0 * jxy
        norm = torch.sqrt(diff * diff + cross * cross)
        safe = norm.clamp_min(1e-12)
        sin2 = torch.where(norm > 0, -cross / safe, torch.zeros_like(norm))
        cos2 = torch.where(norm > 0, -diff / safe, torch.ones_like(norm))
        angle = torch.rad2deg(0.5 * torch.atan2(sin2, cos2))            # line angle in (-90, 90]
        folded = torch.remainder(angle, 90.0)
        line_dev = torch.minimum(folded, 90.0 - folded)                  # distance to an axis
        coherence = norm / trace.clamp_min(1e-12)
        energy = trace * 1e3                                             # ~1 for dense text

        # Lighting: the local paper level and the page's global Otsu threshold.
        light = cv2.blur(x, (3, 3), borderType=cv2.BORDER_REPLICATE)
        k = max(3, 2 * p + 1)
        paper = pmean(cv2.dilate(light, np.ones((k, k), np.uint8), borderType=cv2.BORDER_REPLICATE))
        page_paper = float(paper.median().clamp_min(1e-3))
        levels = cv2.convertScaleAbs(x[:H, :W], alpha=255.0)
        otsu, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        t = float(otsu) / 255.0
        dark = pmean((x < t).astype(np.float32))
        feats = torch.stack([line_dev, sin2, cos2, coherence.clamp(0.0, 1.0), energy, paper, paper / page_paper,
                             paper - t, dark], dim=1).float().contiguous()
        return PatchFeatures(feats, (rows, cols), p, None)
