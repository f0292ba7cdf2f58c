"""What a flatbed or sheet-fed scanner, and the paper it scans, do to a page that the print and
pixel recipes (colkern.quality.degrade) and the camera ops (colkern.quality.capture) do not:

  ink            toner running low or ink spreading: strokes thinned and lightened (a grey
                 dilation of the page blended in, ink lifted by up to 45%) or thickened (a grey
                 erosion blended in, then softened), the direction drawn per page
  paper          recycled or yellowed paper: the paper level lowered by up to 22% with a
                 blotchy low-frequency texture and fine grain (multiplicative: ink stays ink)
  bleed_through  the other side showing through: the page mirrored left-right (a stand-in for
                 its verso), blurred by the paper, shifted, and multiplied in at up to 40%
  border         the scanner lid or the glass beyond a smaller page: dark bands along one or
                 two edges, up to 7% of the page deep, with a wavering edge
  binarize       a bilevel (1-bit) scan: the page thresholded at its Otsu level moved up to 35%
                 of the way towards the paper (strokes fill in, specks appear) or the ink (thin
                 strokes break), after the scanner's optics blur it slightly

Each op maps a severity in [0, 1] to its parameters and returns (image, params) as the capture
ops do; pixel sizes are at 150 dpi, scaled with the image's DPI (colkern.quality._images.px_scale).
colkern.quality.capture orders them among the camera ops and draws them (sample_capture(kind="scanner")).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from ._images import px_scale

__all__ = ["SCANNER_APPLY"]


def _array(image: Image.Image) -> np.ndarray:
    """float32 [H, W, C] (C = 1 for a grey page), 0..255."""
    a = np.asarray(image, dtype=np.float32)
    return a[..., None] if a.ndim == 2 else a


def _image(a: np.ndarray, like: Image.Image) -> Image.Image:
    a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(a[..., 0] if like.mode == "L" else a, mode=like.mode)


def _smooth_noise(rng, h: int, w: int, cell: float) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse random grid (one value per `cell` pixels)
    resized with bicubic interpolation."""
    gh, gw = max(2, int(np.ceil(h / cell)) + 1), max(2, int(np.ceil(w / cell)) + 1)
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


def _ink(image, s, rng):
    fade = bool(rng.random() < 0.5)
    k = 3 if px_scale(image) < 1.5 else 5
    if fade:
        # MaxFilter spreads the paper over the strokes' edges: thin strokes break first.
        moved = _array(image.filter(ImageFilter.MaxFilter(k)))
        a = _array(image)
        out = (1.0 - s) * a + s * moved
        out = 255.0 - (255.0 - out) * (1.0 - 0.45 * s)
    else:
        moved = _array(image.filter(ImageFilter.MinFilter(k)))
        out = (1.0 - s) * _array(image) + s * moved
        out = _array(_image(out, image).filter(ImageFilter.GaussianBlur(0.4 * s * px_scale(image))))
    return _image(out, image), {"mode": "fade" if fade else "spread", "kernel_px": k, "weight": round(float(s), 4)}


def _paper(image, s, rng):
    h, w = image.height, image.width
    level = 1.0 - 0.22 * s
    blotch = 0.06 * s * _smooth_noise(rng, h, w, cell=60.0 * px_scale(image))
    grain = (0.03 * s * rng.standard_normal((h, w))).astype(np.float32)
    tint = np.array([1.0, 0.97, 0.88], np.float32) if image.mode == "RGB" else np.ones(1, np.float32)
    tint = 1.0 - (1.0 - tint) * s                     # yellowed paper in colour, grey paper in grey
    gain = np.clip(level + blotch + grain, 0.0, 1.0)[..., None] * tint
    return _image(_array(image) * gain, image), {"level": round(level, 4), "blotch": round(0.06 * s, 4),
                                                 "grain": round(0.03 * s, 4)}


def _bleed_through(image, s, rng):
    scale = px_scale(image)
    verso = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    sigma = float(rng.uniform(1.0, 2.5)) * scale      # the paper diffuses the other side's ink
    verso = verso.filter(ImageFilter.GaussianBlur(sigma))
    dx, dy = (int(round(v * scale)) for v in rng.uniform(-20.0, 20.0, size=2))
    v = np.roll(_array(verso), (dy, dx), axis=(0, 1)) / 255.0
    alpha = 0.4 * s
    out = _array(image) * (1.0 - alpha * (1.0 - v))
    return _image(out, image), {"alpha": round(alpha, 4), "sigma_px": round(sigma, 3), "shift_px": [dx, dy]}


def _border(image, s, rng):
    h, w = image.height, image.width
    scale = px_scale(image)
    n_edges = 1 + int(rng.random() < 0.5)
    edges = [str(e) for e in rng.choice(["left", "right", "top", "bottom"], size=n_edges, replace=False)]
    tone = float(rng.uniform(0.0, 90.0))              # a black lid to a grey one
    a = _array(image)
    for edge in edges:
        along, across = (h, w) if edge in ("left", "right") else (w, h)
        depth = 0.07 * s * across * float(rng.uniform(0.5, 1.0))
        waver = depth * 0.15 * _smooth_noise(rng, 1, along, cell=80.0 * scale)[0]
        reach = np.clip(depth + waver, 0.0, None)                       # [along] band depth
        dist = np.arange(across, dtype=np.float32)[None, :]             # from the edge inwards
        if edge in ("right", "bottom"):
            dist = dist[:, ::-1]
        cover = np.clip(reach[:, None] - dist + 0.5, 0.0, 1.0)         # [along, across], 1 in the band
        cover = cover if edge in ("left", "right") else cover.T
        a = a * (1.0 - cover[..., None]) + tone * cover[..., None]
    return _image(a, image), {"edges": edges, "tone": round(tone, 1), "depth_frac": round(0.07 * s, 4)}


def _binarize(image, s, rng):
    import cv2

    grey = image.convert("L").filter(ImageFilter.GaussianBlur(0.5 * px_scale(image)))
    g = np.asarray(grey)
    otsu, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    paper, ink = float(np.percentile(g, 95)), float(np.percentile(g, 1))
    towards_paper = bool(rng.random() < 0.5)
    shift = 0.35 * s * ((paper - otsu) if towards_paper else (ink - otsu))
    t = float(otsu) + shift
    bits = np.where(g > t, 255, 0).astype(np.uint8)
    out = Image.fromarray(bits, mode="L")
    return (out if image.mode == "L" else out.convert(image.mode)), {
        "threshold": round(t, 2), "otsu": float(otsu), "towards": "paper" if towards_paper else "ink"}


SCANNER_APPLY = {"ink": _ink, "paper": _paper, "bleed_through": _bleed_through, "border": _border,
                 "binarize": _binarize}
