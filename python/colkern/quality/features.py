"""Per-patch features of page images and their pooling into one vector per page.

Two encoders produce the same thing, `PatchFeatures` (one row of D features per patch of a grid):

  PixelPatchEncoder      weight-free statistics of the raw pixels at native resolution
                         (intensity, gradient, Laplacian, high-frequency, noise, JPEG blocking);
                         D = 17, ~0.07 s for a 1200 x 1700 page on one core (OpenCV filters,
                         one 256-level histogram per patch, block means).
  ColPaliFeatureEncoder  adapter over a ColPali page encoder: the 128-d retrieval projection or
                         the 2048-d language-model hidden states of each image patch.

A page becomes one fixed-length vector with `pool_features` (colkern.patch_pool, packed rows +
offsets): [mean | max | std] over all patches (3*D), by default also [mean | max | std] over the
page's *content* patches only (3*D more; see below) and two global features. Every column has a
name (`pooled_feature_names`), which the quality model stores in its header.

Why content pooling: on a typical page most patches are blank paper, so the mean of a blur or
noise statistic over all patches mostly measures how much paper there is. The same statistics
over the patches that hold ink measure the text itself. The pixel encoder marks a patch as
content when its 5th-percentile intensity is at least `content_threshold` darker than the
page's paper level (the median of the patch medians); ColPali features carry no such mask, so
their pages pool over all patches only.

Global features (appended when `globals=True`):
  log2_n_patches  log2 of the patch count: the page's size in patches, a resolution proxy
                  (the same text rendered at a lower DPI covers fewer pixels and OCRs worse);
  content_frac    fraction of content patches (NaN without content masks).
Pages (or windows) without any content patch get NaN in the content columns; LightGBM treats
NaN as missing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..ops import patch_pool

ImageLike = Union[Image.Image, np.ndarray]

POOL_STATS = ("mean", "max", "std")
GLOBAL_FEATURES = ("log2_n_patches", "content_frac")


@dataclass(frozen=True)
class PatchFeatures:
    """Features of one page's patches.

    features: float32 [n_patches, D], row-major over the grid (patch (r, c) is row r * cols + c).
    grid:     (rows, cols) with rows * cols == n_patches.
    patch:    side of a square patch in pixels of the encoded image, or None when the grid is
              stretched over the whole image (ColPali resizes every page to a fixed size).
    content:  bool [n_patches], True where the patch holds ink (see the module docstring), or
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


# -- image input --------------------------------------------------------------------------------

def to_gray(image: ImageLike, arg: str = "image") -> np.ndarray:
    """A page image as float32 [H, W] in [0, 1] (0 = black ink, 1 = white paper).

    PIL images of any mode (transparent ones are composited onto white first); numpy arrays
    [H, W], [H, W, 1], [H, W, 3] (RGB) or [H, W, 4] (RGBA), uint8 / uint16 / bool or float in
    [0, 1]. Colour uses the ITU-R 601 luma weights, as PIL's "L" mode."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        arr = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
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


# -- the pixel encoder --------------------------------------------------------------------------

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


class PixelPatchEncoder:
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

    def __init__(self, patch: int = 16, *, edge: str = "pad", content_threshold: float = 0.15):
        if isinstance(patch, bool) or not isinstance(patch, int) or patch < 4:
            raise ValueError(f"PixelPatchEncoder: patch must be an int >= 4, got {patch!r}")
        if edge not in ("pad", "drop"):
            raise ValueError(f"PixelPatchEncoder: edge must be 'pad' or 'drop', got {edge!r}")
        if not 0.0 < float(content_threshold) < 1.0:
            raise ValueError(f"PixelPatchEncoder: content_threshold must lie in (0, 1), got {content_threshold!r}")
        self.patch = patch
        self.edge = edge
        self.content_threshold = float(content_threshold)

    def params(self) -> Dict[str, Any]:
        """The constructor arguments (JSON-able): stored in a model header, checked on use."""
        return {"patch": self.patch, "edge": self.edge, "content_threshold": self.content_threshold}

    def feature_names(self) -> List[str]:
        return list(PIXEL_FEATURES)

    def __repr__(self) -> str:
        return f"PixelPatchEncoder(patch={self.patch}, edge={self.edge!r}, content_threshold={self.content_threshold})"

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

    def encode_many(self, images: Sequence[ImageLike]) -> List[PatchFeatures]:
        return [self.encode(im) for im in images]

    def _features(self, x: np.ndarray, rows: int, cols: int) -> Tensor:
        """x: float32 [rows * patch, cols * patch] -> float32 [rows * cols, 17]."""
        p = self.patch
        n = rows * cols

        def pmean(m: np.ndarray) -> Tensor:  # float32 [Hp, Wp] map -> [n] patch means
            # INTER_AREA by an integer factor is the exact block mean (and 2x avg_pool2d's speed).
            return torch.from_numpy(cv2.resize(m, (cols, rows), interpolation=cv2.INTER_AREA)).reshape(n)

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


# -- the ColPali adapter ------------------------------------------------------------------------

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


# -- pooling ------------------------------------------------------------------------------------

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
