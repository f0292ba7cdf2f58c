"""PixelPatchEncoder: weight-free statistics of the raw pixels of every patch, at native resolution.

Intensity, gradient, Laplacian, high-frequency share, noise and JPEG blocking (PIXEL_FEATURES,
D = 17); ~0.07 s for a 1200 x 1700 page on one core (OpenCV filters, one 256-level histogram per
patch, block means). A patch is content when its 5th-percentile intensity is at least
`content_threshold` darker than the page's paper level (the median of the patch medians), which
is what content pooling (colkern.quality.encoders.pooling) keys on.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .patches import ImageLike, PatchFeatures, patch_means, to_gray
from .tiled import TiledPatchEncoder, check_patch

# Immerkaer (1996), "Fast noise variance estimation": the difference of two Laplacians cancels
# smooth image structure; sigma = sqrt(pi/2) / 6 * mean |I * M| for Gaussian noise.
_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=np.float32)
_LEVELS = torch.arange(256, dtype=torch.float32) / 255.0  # histogram bin -> intensity

PIXEL_FEATURES = (
    "mean",            # mean intensity (0 black, 1 white)
    "std",             # intensity standard deviation (population, ddof 0)
    "p05", "p50", "p95",  # intensity percentiles (robust min / median / max)
    "contrast",        # p95 - p05
    "ink_frac",        # fraction of pixels darker than 0.5
    "gray_frac",       # fraction of pixels in [0.2, 0.8]: blur and faint print create grey
    "grad_mean",       # mean Sobel gradient magnitude (intensity change per pixel)
    "grad_max",        # largest gradient magnitude in the patch
    "edge_sharpness",  # grad_max / max(contrast, 0.05): steepest edge relative to its height
    "edge_density",    # fraction of pixels with gradient > 0.1 per pixel
    "lap_abs_mean",    # mean |Laplacian|
    "lap_var",         # variance of the Laplacian: the classic focus / blur measure
    "hf_ratio",        # energy of (x - 3x3 box blur) / (variance + 1e-4): high-frequency share
    "noise_sigma",     # Immerkaer noise standard deviation estimate
    "blockiness",      # mean step across 8-px JPEG block borders minus the mean step elsewhere
)


class PixelPatchEncoder(TiledPatchEncoder):
    """Weight-free per-patch image statistics at native resolution.

    patch:      patch side in pixels (default 16: a 12 pt text line at 150 DPI spans ~2 patches).
    edge:       "pad" (default): the image is padded to a multiple of `patch` by mirroring its
                last rows / columns (numpy "symmetric"), so the grid covers every pixel and has
                ceil(H / patch) x ceil(W / patch) patches; mirroring keeps edge statistics close
                to the real content (a constant pad would look like blank paper).
                "drop": the partial last row / column of patches is left out, grid
                floor(H / patch) x floor(W / patch); an image smaller than one patch is an error.
    content_threshold: a patch is content when its p05 is at least this much darker than the
                page's paper level (median of patch medians).

    Intensity statistics come from each patch's 256-level histogram (exact for 8-bit images).
    Assumes dark ink on light paper (the content mask and ink_frac do). Features depend on the
    rendering resolution: train and predict at the same DPI.
    encode(image) -> PatchFeatures with features float32 [rows * cols, 17] and a content mask.
    """

    name = "pixel"
    has_content_mask = True
    FEATURES = PIXEL_FEATURES

    def __init__(self, patch: int = 16, *, edge: str = "pad", content_threshold: float = 0.15):
        if edge not in ("pad", "drop"):
            raise ValueError(f"PixelPatchEncoder: edge must be 'pad' or 'drop', got {edge!r}")
        if not 0.0 < float(content_threshold) < 1.0:
            raise ValueError(f"PixelPatchEncoder: content_threshold must lie in (0, 1), got {content_threshold!r}")
        self.patch = check_patch("PixelPatchEncoder", patch)
        self.edge = edge
        self.content_threshold = float(content_threshold)

    def params(self) -> Dict[str, Any]:
        """The constructor arguments (JSON-able): stored in a model header, checked on use."""
        return {"patch": self.patch, "edge": self.edge, "content_threshold": self.content_threshold}

    def grid_for(self, height: int, width: int) -> Tuple[int, int]:
        """(rows, cols) of the grid for an image of height x width pixels."""
        p = self.patch
        if self.edge == "pad":
            return -(-height // p), -(-width // p)
        return height // p, width // p

    def encode(self, image: ImageLike) -> PatchFeatures:
        """-> PatchFeatures(features float32 [rows * cols, 17], grid, patch, content bool)."""
        gray = to_gray(image)
        H, W = gray.shape
        p = self.patch
        rows, cols = self.grid_for(H, W)
        if rows == 0 or cols == 0:
            raise ValueError(f"PixelPatchEncoder: image of {W} x {H} pixels is smaller than one "
                             f"{p}-pixel patch; use edge='pad'")
        if self.edge == "pad":
            gray = np.pad(gray, ((0, rows * p - H), (0, cols * p - W)), mode="symmetric")
        else:
            gray = gray[: rows * p, : cols * p]
        feats = self._features(np.ascontiguousarray(gray), rows, cols)
        paper = feats[:, PIXEL_FEATURES.index("p50")].median()
        content = feats[:, PIXEL_FEATURES.index("p05")] <= paper - self.content_threshold
        return PatchFeatures(feats, (rows, cols), p, content)

    def _features(self, x: np.ndarray, rows: int, cols: int) -> Tensor:
        """x: float32 [rows * patch, cols * patch] -> float32 [rows * cols, 17]."""
        p = self.patch
        n = rows * cols

        def pmean(m: np.ndarray) -> Tensor:  # float32 [Hp, Wp] map -> [n] patch means
            return patch_means(m, rows, cols)

        def pmax(m: np.ndarray) -> Tensor:
            return F.max_pool2d(torch.from_numpy(m)[None, None], p).reshape(n)

        # Filters run on the whole page with replicated borders, so at a patch border they see
        # the neighbouring patch's pixels and the statistics do not depend on the grid
        # alignment. OpenCV's SIMD filters are ~8x faster than torch's conv2d with 1 channel.
        border = cv2.BORDER_REPLICATE
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=border)
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=border)
        grad = cv2.magnitude(gx, gy)
        grad *= 1.0 / 8.0  # Sobel / 8 = the slope per pixel on an intensity ramp
        lap = cv2.Laplacian(x, cv2.CV_32F, ksize=1, borderType=border)  # 4-neighbour kernel
        resid = x - cv2.blur(x, (3, 3), borderType=border)
        imm = cv2.filter2D(x, cv2.CV_32F, _IMMERKAER, borderType=border)

        mean, var, p05, p50, p95, ink, gray_frac = self._intensity_stats(x, rows, cols)
        contrast = p95 - p05
        grad_max = pmax(grad)
        lap_mean = pmean(lap)
        lap_var = (pmean(lap * lap) - lap_mean * lap_mean).clamp_min(0.0)
        hf = pmean(resid * resid) / (var + 1e-4)
        noise = pmean(np.abs(imm)) * (math.sqrt(math.pi / 2.0) / 6.0)
        cols_ = [mean, var.sqrt(), p05, p50, p95, contrast, ink, gray_frac, pmean(grad), grad_max,
                 grad_max / contrast.clamp_min(0.05), pmean((grad > 0.1).astype(np.float32)),
                 pmean(np.abs(lap)), lap_var, hf, noise, self._blockiness(x, rows, cols, pmean)]
        return torch.stack(cols_, dim=1).contiguous()

    def _intensity_stats(self, x: np.ndarray, rows: int, cols: int):
        """Mean, variance, p05 / p50 / p95, ink and grey fractions of each patch, from its
        256-level histogram (exact for 8-bit images; float pixels are rounded to 1/255).
        A histogram costs one scatter; sorting every patch would cost ~6x more.
        Percentile q is the sorted patch's element round(q * (p*p - 1))."""
        p = self.patch
        n = rows * cols
        q = torch.from_numpy(cv2.convertScaleAbs(x, alpha=255.0))  # round to uint8 levels
        q = q.view(rows, p, cols, p).permute(0, 2, 1, 3).reshape(n, p * p).long()
        # float32 counts are exact (at most p*p) and cumsum in float32 is ~4x faster than in int32.
        counts = torch.zeros(n, 256, dtype=torch.float32)
        counts.scatter_add_(1, q, torch.ones(1, 1).expand(n, p * p))
        cum = torch.cumsum(counts, 1)
        ranks = torch.tensor([round(f * (p * p - 1)) for f in (0.05, 0.5, 0.95)], dtype=torch.float32)
        pct = torch.searchsorted(cum, ranks.expand(n, 3).contiguous(), right=True).float() / 255.0
        freq = counts / (p * p)
        mean = freq @ _LEVELS
        var = (freq @ (_LEVELS * _LEVELS) - mean * mean).clamp_min(0.0)
        ink = cum[:, 127] / (p * p)  # levels 0..127: intensity < 0.5
        gray = freq[:, 51:205].sum(1)  # levels 51..204: intensity in [0.2, 0.8]
        return mean, var, pct[:, 0], pct[:, 1], pct[:, 2], ink, gray

    @staticmethod
    def _blockiness(x: np.ndarray, rows: int, cols: int, pmean) -> Tensor:
        """JPEG compresses 8 x 8 blocks aligned to the image origin independently, which leaves
        steps at block borders: mean |step| across block borders minus mean |step| elsewhere
        (horizontal and vertical steps together); 0 for a patch with no block border."""
        Hp, Wp = x.shape
        p = Hp // rows
        hd = np.zeros_like(x)
        vd = np.zeros_like(x)
        np.abs(x[:, 1:] - x[:, :-1], out=hd[:, :-1])  # step between column j and j + 1
        np.abs(x[1:, :] - x[:-1, :], out=vd[:-1, :])
        col_b = ((np.arange(Wp) % 8 == 7) & (np.arange(Wp) < Wp - 1)).astype(np.float32)
        row_b = ((np.arange(Hp) % 8 == 7) & (np.arange(Hp) < Hp - 1)).astype(np.float32)
        border = np.zeros_like(x)  # the steps on block borders only: strided copies, no products
        border[:, 7:-1:8] = hd[:, 7:-1:8]
        border[7:-1:8, :] += vd[7:-1:8, :]
        on = pmean(border)
        total = pmean(hd) + pmean(vd)
        # Share of each patch's step positions that lie on a block border (of 2 p^2 in all).
        frac = torch.from_numpy(row_b.reshape(rows, p).mean(1))[:, None] \
            + torch.from_numpy(col_b.reshape(cols, p).mean(1))[None, :]
        frac = frac.reshape(-1)
        mean_on = torch.where(frac > 0, on / frac.clamp_min(1e-12), torch.zeros_like(on))
        return torch.where(frac > 0, mean_on - (total - on) / (2.0 - frac), torch.zeros_like(on))
