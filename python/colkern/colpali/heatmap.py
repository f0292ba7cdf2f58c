"""Where did the page match the query? Per-token similarity maps of late interaction, as heatmaps.

MaxSim scores a page as  sum over query tokens i of  max over patches j of <q_i, p_j>.  The
interaction matrix S[i, j] = <q_i, p_j> laid out on the page's patch grid shows, for every query
token, which region of the page it matched:

    maps = similarity_maps(query, page.embeddings, page.grid)      # [Lq, rows, cols] float32
    heat = aggregate(maps, "sum_of_max")                           # [rows, cols], sums to the score
    save_heatmap(page_image, heat, "match.png", title="score 12.3")
    save_token_heatmaps(page_image, maps, "tokens.png", tokens=query_tokens)

Patch order: a tile's patches are row-major over its (rows, cols) grid, as ColPali's SigLIP lays
them out; a page encoded as k tiles (colkern.pdf's tile split) is the concatenation of the tiles'
patches in the tiles' row-major order, and similarity_maps puts each tile's grid back in its place.

Everything is computed in float32 whatever the input dtype, as colkern.maxsim accumulates.
Pictures are drawn with matplotlib's Agg canvas (never pyplot, never a display) and PIL, and
written atomically: a temporary file in the target's directory, then os.replace().
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .._atomic import atomic_write
from .._types import PathLike

Grid = Tuple[int, int]

AGGREGATIONS = ("max", "sum_of_max")


# -- maps ----------------------------------------------------------------------------------------


def _check_grid(grid, name: str) -> Grid:
    if isinstance(grid, int) and not isinstance(grid, bool):
        side = math.isqrt(grid)
        if grid < 1 or side * side != grid:
            raise ValueError(f"{name}: an int must be a square number (4 means 2x2), got {grid}")
        return side, side
    if not isinstance(grid, (tuple, list)) or len(grid) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in grid):
        raise ValueError(f"{name} must be (rows, cols) of positive ints, got {grid!r}")
    return int(grid[0]), int(grid[1])


def similarity_maps(query: Tensor, page: Tensor, grid: Grid, *,
                    tiles_grid: Optional[Union[int, Grid]] = None) -> Tensor:
    """Similarity of every query token with every patch, on the page layout.

    query: [Lq, D] float (any float dtype); page: [n_patches, D] float, same D and device.
    grid: (rows, cols) of the patch grid of one image (the whole page, or one tile).
    tiles_grid: None for a page encoded whole (n_patches == rows * cols), or the tile layout
    (tile_rows, tile_cols) / a square tile count (4 -> 2x2) for a page encoded as tiles, whose
    patches are the tiles' patches concatenated in row-major tile order
    (n_patches == tile_rows * tile_cols * rows * cols).
    -> [Lq, tile_rows * rows, tile_cols * cols] float32: out[i, y, x] = <q_i, patch at (y, x)>.
    """
    if not isinstance(query, Tensor) or query.dim() != 2:
        raise ValueError(f"similarity_maps: query must be a [Lq, D] tensor, got "
                         f"{tuple(query.shape) if isinstance(query, Tensor) else type(query).__name__}")
    if not isinstance(page, Tensor) or page.dim() != 2:
        raise ValueError(f"similarity_maps: page must be a [n_patches, D] tensor, got "
                         f"{tuple(page.shape) if isinstance(page, Tensor) else type(page).__name__}")
    if not query.is_floating_point() or not page.is_floating_point():
        raise ValueError(f"similarity_maps: query and page must be float tensors, got {query.dtype} and {page.dtype}")
    if query.shape[1] != page.shape[1]:
        raise ValueError(f"similarity_maps: page has dim {page.shape[1]} but query has dim {query.shape[1]}")
    if query.device != page.device:
        raise ValueError(f"similarity_maps: query is on {query.device} but page is on {page.device}")
    if query.shape[0] == 0:
        raise ValueError("similarity_maps: query has no tokens")
    rows, cols = _check_grid(grid, "similarity_maps: grid")
    t_rows, t_cols = (1, 1) if tiles_grid is None else _check_grid(tiles_grid, "similarity_maps: tiles_grid")
    expected = t_rows * t_cols * rows * cols
    if page.shape[0] != expected:
        layout = f"{rows} x {cols} patches" + ("" if tiles_grid is None else f" x {t_rows * t_cols} tiles")
        raise ValueError(f"similarity_maps: page has {page.shape[0]} patches but {layout} make {expected}")
    sim = query.float() @ page.float().T  # [Lq, n_patches]
    lq = sim.shape[0]
    # [Lq, tile_row, tile_col, row, col] -> [Lq, tile_row, row, tile_col, col]: tiles side by side.
    sim = sim.reshape(lq, t_rows, t_cols, rows, cols).permute(0, 1, 3, 2, 4)
    return sim.reshape(lq, t_rows * rows, t_cols * cols).contiguous()


def aggregate(maps: Tensor, how: str = "max") -> Tensor:
    """One map for the whole query from per-token maps [Lq, R, C] -> [R, C] float32.

    how="max": each patch's best similarity with any query token; shows everything that matched
        something, including patches that no token ends up using.
    how="sum_of_max": the MaxSim contribution map. Each query token adds its max similarity to
        the one patch that attains it (the first in row-major order on a tie), so the map sums to
        the page's MaxSim score and shows exactly where the score comes from.
    """
    if not isinstance(maps, Tensor) or maps.dim() != 3 or maps.shape[0] == 0:
        raise ValueError(f"aggregate: maps must be a [Lq, R, C] tensor with Lq >= 1, got "
                         f"{tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__}")
    maps = maps.float()
    if how == "max":
        return maps.amax(dim=0)
    if how == "sum_of_max":
        lq, r, c = maps.shape
        best, where = maps.reshape(lq, r * c).max(dim=1)
        out = torch.zeros(r * c, dtype=torch.float32, device=maps.device)
        out.index_add_(0, where, best)
        return out.reshape(r, c)
    raise ValueError(f"aggregate: how must be one of {AGGREGATIONS}, got {how!r}")


# -- pictures ------------------------------------------------------------------------------------


def _heat_array(heat, name: str) -> np.ndarray:
    h = heat.detach().to("cpu", torch.float32).numpy() if isinstance(heat, Tensor) else np.asarray(heat, np.float32)
    if h.ndim != 2 or h.shape[0] < 1 or h.shape[1] < 1:
        raise ValueError(f"{name}: heat must be a 2-D [rows, cols] map, got shape {h.shape}")
    if not np.isfinite(h).all():
        raise ValueError(f"{name}: heat contains NaN or infinity")
    return h


def _colormap(cmap: str, name: str):
    import matplotlib

    try:
        return matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(f"{name}: unknown matplotlib colormap {cmap!r}") from None


def _check_image(image, name: str) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"{name}: page_image must be a PIL image, got {type(image).__name__}")
    return image.convert("RGB")


def overlay_heatmap(page_image: Image.Image, heat, *, alpha: float = 0.5, cmap: str = "jet",
                    vmin: Optional[float] = None, vmax: Optional[float] = None,
                    interpolation: str = "bilinear", title: Optional[str] = None) -> Image.Image:
    """The page with `heat` ([rows, cols] tensor or array) stretched over it and blended in.

    Same pixel size as page_image, RGB. Colours span [vmin, vmax] (default: the map's own min and
    max; a constant map gets the colormap's low end). interpolation: "bilinear" (smooth) or
    "nearest" (one block per patch). alpha: weight of the colours, in [0, 1]. title: drawn on a
    dark band along the top edge, inside the image, so the size does not change.
    """
    page = _check_image(page_image, "overlay_heatmap")
    h = _heat_array(heat, "overlay_heatmap")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay_heatmap: alpha must be in [0, 1], got {alpha}")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"overlay_heatmap: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
    colormap = _colormap(cmap, "overlay_heatmap")
    lo = float(h.min()) if vmin is None else float(vmin)
    hi = float(h.max()) if vmax is None else float(vmax)
    if hi < lo:
        raise ValueError(f"overlay_heatmap: vmax {hi} is below vmin {lo}")
    width, height = page.size
    t = torch.from_numpy(h)[None, None]
    if interpolation == "bilinear":
        up = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)
    else:
        up = F.interpolate(t, size=(height, width), mode="nearest")
    norm = (up[0, 0].numpy() - lo) / (hi - lo) if hi > lo else np.zeros((height, width), np.float32)
    colours = colormap(np.clip(norm, 0.0, 1.0))[..., :3]  # [H, W, 3] in [0, 1]
    base = np.asarray(page, dtype=np.float32) / 255.0
    blended = (1.0 - alpha) * base + alpha * colours
    out = Image.fromarray(np.round(blended * 255.0).astype(np.uint8), "RGB")
    if title:
        _draw_title(out, title)
    return out


def _draw_title(image: Image.Image, title: str) -> None:
    size = max(10, image.height // 40)
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = draw.textbbox((0, 0), title, font=font)
    pad = max(2, size // 4)
    draw.rectangle((0, 0, image.width, y1 - y0 + 2 * pad), fill=(0, 0, 0))
    draw.text((pad - x0, pad - y0), title, fill=(255, 255, 255), font=font)


def save_heatmap(page_image: Image.Image, heat, out_png: PathLike, *, alpha: float = 0.5,
                 title: Optional[str] = None, cmap: str = "jet", vmin: Optional[float] = None,
                 vmax: Optional[float] = None, interpolation: str = "bilinear") -> str:
    """Write overlay_heatmap(...) as a PNG of the page image's pixel size, atomically.
    The directory must exist. -> the path written."""
    picture = overlay_heatmap(page_image, heat, alpha=alpha, cmap=cmap, vmin=vmin, vmax=vmax,
                              interpolation=interpolation, title=title)
    return atomic_write(out_png, lambda f: picture.save(f, format="PNG"))


def save_token_heatmaps(page_image: Image.Image, maps: Tensor, out_png: PathLike, *,
                        tokens: Optional[Sequence[str]] = None, ncols: int = 4, alpha: float = 0.5,
                        cmap: str = "jet", shared_scale: bool = True, panel_px: int = 320,
                        title: Optional[str] = None) -> str:
    """One PNG with a panel per query token: the page (scaled so its longer side is panel_px)
    under that token's similarity map, titled with the token and its max similarity.

    maps: [Lq, rows, cols] (similarity_maps). tokens: Lq labels (default "token i").
    shared_scale: one colour scale for all panels (compare tokens) instead of one per panel
    (see each token's own peak). Written atomically; the directory must exist. -> the path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    page = _check_image(page_image, "save_token_heatmaps")
    if not isinstance(maps, Tensor) or maps.dim() != 3 or maps.shape[0] == 0:
        raise ValueError(f"save_token_heatmaps: maps must be a [Lq, rows, cols] tensor with Lq >= 1, got "
                         f"{tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__}")
    lq = maps.shape[0]
    if tokens is None:
        tokens = [f"token {i}" for i in range(lq)]
    elif len(tokens) != lq:
        raise ValueError(f"save_token_heatmaps: {len(tokens)} tokens given for {lq} maps")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"save_token_heatmaps: ncols must be a positive int, got {ncols!r}")
    if isinstance(panel_px, bool) or not isinstance(panel_px, int) or panel_px < 16:
        raise ValueError(f"save_token_heatmaps: panel_px must be an int >= 16, got {panel_px!r}")
    all_maps = _heat_array(maps.reshape(lq * maps.shape[1], maps.shape[2]), "save_token_heatmaps")
    vmin, vmax = (float(all_maps.min()), float(all_maps.max())) if shared_scale else (None, None)
    scale = panel_px / max(page.size)
    thumb = page.resize((max(1, round(page.width * scale)), max(1, round(page.height * scale))),
                        Image.Resampling.BILINEAR)

    ncols = min(ncols, lq)
    nrows = -(-lq // ncols)
    dpi = 100
    panel_w, panel_h = thumb.width / dpi, thumb.height / dpi + 0.3  # room for the panel title
    fig = Figure(figsize=(ncols * panel_w, nrows * panel_h + (0.4 if title else 0.0)), dpi=dpi)
    FigureCanvasAgg(fig)
    for i in range(lq):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(overlay_heatmap(thumb, maps[i], alpha=alpha, cmap=cmap, vmin=vmin, vmax=vmax))
        ax.set_title(f"{tokens[i]}  (max {float(maps[i].max()):.3g})", fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return atomic_write(out_png, lambda f: fig.savefig(f, format="png", dpi=dpi))
