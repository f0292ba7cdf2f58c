"""Where the damage is: a per-patch map of predicted OCR error over a page.

    pf = encoder.encode(page)                                   # PatchFeatures, grid rows x cols
    qmap = patch_quality_map(model, pf, target="cer", window=5)  # float32 [rows, cols]
    save_overlay(page, qmap, "page_cer.png", patch=pf.patch)     # same pixel size as the page

Method (sliding-window page model): for every patch, the patches of the window x window
neighbourhood around it (clipped at the page border) are pooled exactly as a whole page is
pooled for the model (encoders.pool_features: [mean | max | std] over the window's patches, the
same over its content patches, content_frac of the window) and the page-level model predicts
from that vector. The value is therefore "the error rate the model predicts for a page that
looks everywhere like this neighbourhood". No second model and no attribution heuristics: the
map uses the trained model as it is, and a region gets a bad score only through the same
features that make whole pages bad. log2_n_patches keeps the page's value (it stands for the
page's resolution, which a window shares).

Caveats, by construction: the model never saw window-sized "pages", so absolute values on the
map are less reliable than the page prediction (compare regions, do not read them as the CER
of that region); a window must hold enough text to pool meaningfully (window 5 of 16-px patches
is 80 x 80 px, a few words at 150 DPI). A window without any content patch (blank paper) has no
text to misread: its value is NaN and the overlay leaves it uncoloured. ColPali pages carry no
content masks, so every window of theirs is scored.
"""
from __future__ import annotations

import io
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .._atomic import atomic_write_bytes
from ..ops import patch_pool
from .encoders.patches import ImageLike, PatchFeatures
from .encoders.pooling import global_features
from .model import QualityPredictor

_CHUNK_BYTES = 256 << 20  # gathered window features per chunk: bounds memory for 2048-d hidden states


def _window_index(rows: int, cols: int, window: int):
    """-> (idx int64 [rows*cols, window^2], valid bool [rows*cols, window^2]): the patches of
    each cell's neighbourhood, clipped at the grid border (invalid slots point at patch 0)."""
    h = window // 2
    r = torch.arange(rows)[:, None, None, None]
    c = torch.arange(cols)[None, :, None, None]
    dr = torch.arange(-h, h + 1)[None, None, :, None]
    dc = torch.arange(-h, h + 1)[None, None, None, :]
    rr, cc = r + dr, c + dc
    valid = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
    idx = torch.where(valid, rr * cols + cc, torch.zeros_like(rr))
    n = rows * cols
    return idx.reshape(n, window * window), valid.reshape(n, window * window)


def window_features(pf: PatchFeatures, window: int = 5, *, content: Optional[bool] = None,
                    globals: bool = True) -> tuple:
    """Page-model inputs for every cell's neighbourhood.

    -> (X float32 [rows*cols, F] with pool_features' columns, n_content int64 [rows*cols] (the
    window's content patches) or None without content pooling).
    """
    if not isinstance(pf, PatchFeatures):
        raise TypeError(f"window_features: patch_features must be PatchFeatures, got {type(pf).__name__}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window_features: window must be an odd int >= 1, got {window!r}")
    if content is None:
        content = pf.content is not None
    if content and pf.content is None:
        raise ValueError("window_features: content pooling needs a content mask, but these patch "
                         "features have none (ColPali features: the model must use content=False)")
    rows, cols = pf.grid
    idx, valid = _window_index(rows, cols, window)
    n, D = rows * cols, pf.dim
    step = max(1, _CHUNK_BYTES // (window * window * D * 4))
    parts_all, parts_content, counts = [], [], []
    for s in range(0, n, step):
        i, v = idx[s:s + step], valid[s:s + step]
        x = pf.features[i]  # [chunk, window^2, D], gathered per chunk
        parts_all.append(patch_pool(x, mask=v))
        if content:
            cm = v & pf.content[i]
            parts_content.append(patch_pool(x, mask=cm))
            counts.append(cm.sum(1))
    parts = [torch.cat(parts_all, 0)]
    n_content = None
    if content:
        parts.append(torch.cat(parts_content, 0))
        n_content = torch.cat(counts, 0).to(torch.int64)
    if globals:
        g = global_features(valid.sum(1).to(torch.int64), n_content)
        g[:, 0] = float(np.log2(max(n, 1)))  # the page's resolution proxy, not the window's size
        parts.append(g)
    return torch.cat(parts, 1), n_content


def patch_quality_map(predictor: QualityPredictor, patch_features: PatchFeatures, target: str = "cer",
                      window: int = 5) -> Tensor:
    """Predicted `target` for every patch's window x window neighbourhood (see the module
    docstring): -> float32 [rows, cols] in [0, 1], NaN where the window holds no content patch."""
    if target not in predictor.targets:
        raise ValueError(f"patch_quality_map: the model predicts {list(predictor.targets)}, not {target!r}")
    X, n_content = window_features(patch_features, window, **predictor.pooling)
    pred = torch.from_numpy(predictor.predict(X)[target]).to(torch.float32)
    if n_content is not None:
        pred[n_content == 0] = float("nan")
    return pred.reshape(patch_features.grid)


def _page_rgb(page_image: ImageLike) -> np.ndarray:
    if isinstance(page_image, Image.Image):
        return np.asarray(page_image.convert("RGB"), dtype=np.float32)
    if isinstance(page_image, np.ndarray):
        a = page_image
        if a.dtype == np.uint8:
            a = a.astype(np.float32)
        elif np.issubdtype(a.dtype, np.floating):
            a = np.clip(a.astype(np.float32), 0.0, 1.0) * 255.0
        else:
            raise ValueError(f"page_image: pixel dtype must be uint8 or float in [0, 1], got {a.dtype}")
        if a.ndim == 2:
            return np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim == 3 and a.shape[2] in (3, 4):
            return a[:, :, :3]
        raise ValueError(f"page_image must be [H, W], [H, W, 3] or [H, W, 4], got shape {a.shape}")
    raise TypeError(f"page_image must be a PIL.Image or a numpy array, got {type(page_image).__name__}")


def _cell_index(rows: int, cols: int, height: int, width: int, patch: Optional[int]):
    """Nearest-neighbour upsampling: the grid cell of every pixel row and column (rows / cols
    for pixels outside the grid), so every cell becomes a flat block (no detail the map does not
    have). patch: cells are patch x patch pixels from the top-left corner (pixel encoder grids;
    with edge="drop" the grid may stop short of the right and bottom margins); None: the grid
    is stretched over the whole image (ColPali)."""
    if patch is None:
        ri = np.minimum(np.arange(height) * rows // height, rows - 1)
        ci = np.minimum(np.arange(width) * cols // width, cols - 1)
    else:
        ri = np.minimum(np.arange(height) // patch, rows)
        ci = np.minimum(np.arange(width) // patch, cols)
    return ri, ci


def overlay_image(page_image: ImageLike, qmap: Union[Tensor, np.ndarray], *, patch: Optional[int] = None,
                  vmax: float = 0.5, alpha: float = 0.45, cmap: str = "RdYlGn_r") -> Image.Image:
    """The page (RGB, its own pixel size) with the map blended over it: colour `cmap` from 0
    (green: fine) to >= vmax (red: expect errors), fixed so maps of different pages compare;
    NaN cells are left uncoloured. qmap: [rows, cols] (patch_quality_map); patch as _cell_index."""
    from matplotlib import colormaps

    q = np.asarray(qmap.detach().cpu() if isinstance(qmap, Tensor) else qmap, dtype=np.float32)
    if q.ndim != 2 or q.size == 0:
        raise ValueError(f"overlay_image: qmap must be a non-empty [rows, cols] map, got shape {q.shape}")
    if not vmax > 0:
        raise ValueError(f"overlay_image: vmax must be > 0, got {vmax}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay_image: alpha must lie in [0, 1], got {alpha}")
    if patch is not None and (isinstance(patch, bool) or not isinstance(patch, int) or patch < 1):
        raise ValueError(f"overlay_image: patch must be a positive int or None, got {patch!r}")
    page = _page_rgb(page_image)
    H, W = page.shape[:2]
    rows, cols = q.shape
    # Colour the cells (plus one uncoloured cell for pixels outside the grid), then upsample.
    cells = np.full((rows + 1, cols + 1), np.nan, dtype=np.float32)
    cells[:rows, :cols] = q
    colour = (colormaps[cmap](np.clip(np.nan_to_num(cells, nan=0.0) / vmax, 0.0, 1.0))[:, :, :3] * 255.0)
    weight = np.where(np.isfinite(cells), alpha, 0.0)[:, :, None]
    ri, ci = _cell_index(rows, cols, H, W, patch)
    cell_rgb = (colour * weight).astype(np.float32)
    keep = (1.0 - weight).astype(np.float32)
    out = page * keep[ri][:, ci] + cell_rgb[ri][:, ci]
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def save_overlay(page_image: ImageLike, qmap: Union[Tensor, np.ndarray], out_png, *, patch: Optional[int] = None,
                 vmax: float = 0.5, alpha: float = 0.45, cmap: str = "RdYlGn_r") -> None:
    """overlay_image(...) written as a PNG of the page's pixel size, atomically."""
    img = overlay_image(page_image, qmap, patch=patch, vmax=vmax, alpha=alpha, cmap=cmap)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(out_png, buf.getvalue())
