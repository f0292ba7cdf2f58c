"""How a scanner or a phone camera degrades a page: geometry (a curled page, a skewed or
photographed-at-an-angle page), lighting (a shadow, vignetting) and a shaking hand.

    capture = sample_capture(rng)              # e.g. (("skew", 0.31), ("shadow", 0.72))
    img, steps = apply_steps(page.image, capture, seed=7)     # colkern.quality.degrade runs them

colkern.quality.degrade's recipe ops damage print and pixels (blur, noise, resolution, JPEG) and
leave the page where it was; real scans and photos also move and light it unevenly, and a
predictor that never saw a rotated line or a shadow reads them as damage (or misses the damage
they do). Each op maps a severity in [0, 1] to its parameters; pixel sizes are given at 150 dpi
and scaled with the image's DPI:

  warp         a page curling away from the glass: rows bend by up to 3% of the page height
               (sin profile across the width, random phase), so text lines become arcs
  skew         rotated by up to 8 degrees (random sign), the uncovered corners paper-coloured
  perspective  photographed at an angle: each corner moves inwards by up to 12% of the page
               size (drawn per corner), the frame around it a desk tone drawn in [30, 200]
  shadow       lit unevenly: a soft-edged shadow (a half-plane at a random angle) darkens by up
               to 70%, vignetting by up to 35% in the corners
  motion_blur  a shaking hand: a line kernel 12 s px long at a random angle

Scanner ops (colkern.quality.scanner): ink (faded or spread), paper (tinted, textured),
bleed_through, border (the lid or glass around the page) and binarize (a 1-bit scan).

CAPTURE_OPS lists every op in the order they act (print and paper, page pose, scanner edges,
light, exposure, the scanner's output encoding). A capture is not part of a recipe's severity
sweep: it is drawn once per source with its own severities (`sample_capture`, per CAPTURE_KINDS:
"camera" or "scanner"), so the same page is seen rotated or shadowed both clean and damaged - a
rotation alone must not read as a bad page.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image

from ._images import px_scale
from .scanner import SCANNER_APPLY

__all__ = ["CAPTURE_OPS", "CAPTURE_APPLY", "CAPTURE_KINDS", "Capture", "sample_capture"]

CAPTURE_OPS = ("ink", "paper", "bleed_through", "warp", "skew", "perspective", "border", "shadow", "motion_blur",
               "binarize")
# What sample_capture draws per kind: op -> (how often, the factor on its drawn severity), and at
# most how many ops by default. The camera kind's ops, weights and order are those it always had,
# so camera data sets built before the scanner kind existed draw the same captures.
CAPTURE_KINDS = {
    # scanners and phones skew and shadow pages most often
    "camera": {"ops": {"warp": (0.8, 1.0), "skew": (1.2, 1.0), "perspective": (1.0, 1.0), "shadow": (1.2, 1.0),
                       "motion_blur": (0.8, 1.0)}, "max_ops": 2},
    # a page on the glass or through a feeder: worn print, poor paper, the other side, the lid, a
    # 1-bit output; skewed only a little (severity x 0.4: up to 3.2 degrees)
    "scanner": {"ops": {"ink": (1.2, 1.0), "paper": (1.0, 1.0), "bleed_through": (0.8, 1.0), "skew": (1.0, 0.4),
                        "border": (0.8, 1.0), "binarize": (0.8, 1.0)}, "max_ops": 3},
}

Capture = Tuple[Tuple[str, float], ...]  # ((op, severity in [0, 1]), ...) in CAPTURE_OPS order


def _paper_tone(image: Image.Image):
    """The page's paper colour: the 90th percentile of its pixels (per band), what a rotation or
    a warp fills the uncovered corners with."""
    a = np.asarray(image)
    tone = np.percentile(a.reshape(-1, a.shape[2]) if a.ndim == 3 else a.ravel(), 90, axis=0)
    return tuple(int(round(t)) for t in np.atleast_1d(tone)) if a.ndim == 3 else int(round(float(tone)))


def _fill(image: Image.Image, grey: float):
    return (int(grey),) * 3 if image.mode == "RGB" else int(grey)


def _warp(image, s, rng):
    w, h = image.size
    amp = 0.03 * s * h
    periods = float(rng.uniform(0.5, 1.0))  # at most one full bend across the page
    phase = float(rng.uniform(0.0, 2 * np.pi))
    # The displacement is a function of x only, so each column shifts vertically by its own
    # amount: an exact resampling with a per-column bilinear shift.
    x = np.arange(w, dtype=np.float64)
    dy = amp * np.sin(2 * np.pi * periods * x / w + phase)
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    tone = np.asarray(_paper_tone(image), dtype=np.float32).reshape(1, 1, -1)
    ys = np.arange(h, dtype=np.float64)[:, None] + dy[None, :]       # [H, W] source rows
    y0 = np.floor(ys).astype(np.int64)
    f = (ys - y0).astype(np.float32)[..., None]
    cols = np.arange(w)[None, :]

    def rows(yy):
        inside = ((yy >= 0) & (yy < h))[..., None]
        return np.where(inside, a[np.clip(yy, 0, h - 1), cols], tone)

    out = rows(y0) * (1 - f) + rows(y0 + 1) * f
    out = out[..., 0] if image.mode == "L" else out
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode=image.mode), {
        "amplitude_px": round(float(amp), 3), "periods": round(periods, 4), "phase": round(phase, 4)}


def _skew(image, s, rng):
    angle = 8.0 * s * (1.0 if rng.random() < 0.5 else -1.0)
    out = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=_paper_tone(image))
    return out, {"angle_deg": round(angle, 4)}


def _perspective_coeffs(dst, src):
    """PIL's PERSPECTIVE data: the 8 coefficients mapping output points `dst` to input points
    `src` (x_in = (a x + b y + c) / (g x + h y + 1), likewise y_in), from four point pairs."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return tuple(np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64)).tolist())


def _perspective(image, s, rng):
    w, h = image.size
    inset = 0.12 * s * rng.uniform(0.3, 1.0, size=(4, 2)) * np.array([w, h])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    inwards = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64)
    dst = corners + inwards * inset          # where the page's corners land in the photo
    desk = float(rng.uniform(30.0, 200.0))
    out = image.transform((w, h), Image.Transform.PERSPECTIVE, _perspective_coeffs(dst, corners),
                          resample=Image.Resampling.BICUBIC, fillcolor=_fill(image, desk))
    return out, {"corners": np.round(dst, 1).tolist(), "desk": round(desk, 1)}


def _shadow(image, s, rng):
    w, h = image.size
    x = (np.arange(w, dtype=np.float32) + 0.5) / w - 0.5
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h - 0.5) * (h / w)
    angle = float(rng.uniform(0.0, 2 * np.pi))
    offset = float(rng.uniform(-0.3, 0.3))          # where the shadow's edge crosses the page
    soft = float(rng.uniform(0.02, 0.2))            # edge width, a fraction of the page width
    depth = 0.7 * s
    d = x[None, :] * np.cos(angle) + y[:, None] * np.sin(angle) - offset
    shade = 1.0 / (1.0 + np.exp(-d / (soft / 4.0)))  # 0 lit .. 1 in the shadow
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / (0.25 + 0.25 * (h / w) ** 2)  # 1 in the corners
    light = (1.0 - depth * shade) * (1.0 - 0.35 * s * r2)
    a = np.asarray(image, dtype=np.float32)
    out = a * (light[..., None] if a.ndim == 3 else light)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode=image.mode), {
        "depth": round(depth, 4), "angle": round(angle, 4), "offset": round(offset, 4), "soft": round(soft, 4),
        "vignette": round(0.35 * s, 4)}


def _motion_blur(image, s, rng):
    length = 12.0 * s * px_scale(image)
    angle = float(rng.uniform(0.0, np.pi))
    n = int(np.ceil(length)) + 1
    if length < 0.5:
        return image.copy(), {"length_px": 0.0, "angle": round(angle, 4)}
    a = np.asarray(image, dtype=np.float32)
    t = np.linspace(-length / 2, length / 2, n)
    shifts = {(int(round(k * np.sin(angle))), int(round(k * np.cos(angle)))) for k in t}
    m = max(max(abs(dy), abs(dx)) for dy, dx in shifts)
    pad = ((m, m), (m, m)) + (((0, 0),) if a.ndim == 3 else ())
    p = np.pad(a, pad, mode="edge")
    hh, ww = a.shape[:2]
    out = np.zeros_like(a)
    for dy, dx in shifts:  # the average of the page shifted along the line: a box kernel
        out += p[m + dy:m + dy + hh, m + dx:m + dx + ww]
    out /= len(shifts)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), mode=image.mode), {
        "length_px": round(length, 3), "angle": round(angle, 4)}


CAPTURE_APPLY = {"warp": _warp, "skew": _skew, "perspective": _perspective, "shadow": _shadow,
                 "motion_blur": _motion_blur, **SCANNER_APPLY}
assert set(CAPTURE_APPLY) == set(CAPTURE_OPS)
assert all(set(k["ops"]) <= set(CAPTURE_OPS) for k in CAPTURE_KINDS.values())


def sample_capture(rng: Union[np.random.Generator, int], *, max_ops: Optional[int] = None,
                   kind: str = "camera") -> Capture:
    """Draw 1..max_ops distinct ops of a capture kind (CAPTURE_KINDS: "camera" or "scanner"; max_ops
    defaults to the kind's: 2 camera, 3 scanner), each at a severity in [0.1, 1] (times the op's
    factor), mostly mild (its own, not the recipe's).
    -> ((op, severity), ...) in CAPTURE_OPS order, for apply_steps / degrade(capture=)."""
    if kind not in CAPTURE_KINDS:
        raise ValueError(f"sample_capture: kind must be one of {tuple(CAPTURE_KINDS)}, got {kind!r}")
    ops = CAPTURE_KINDS[kind]["ops"]
    names = [op for op in CAPTURE_OPS if op in ops]
    if max_ops is None:
        max_ops = CAPTURE_KINDS[kind]["max_ops"]
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if isinstance(max_ops, bool) or not isinstance(max_ops, int) or not 1 <= max_ops <= len(names):
        raise ValueError(f"sample_capture: max_ops must be an int in 1..{len(names)} for {kind!r}, got {max_ops!r}")
    n = int(rng.integers(1, max_ops + 1))
    p = np.array([ops[o][0] for o in names], np.float64)
    # Severity 0.1 + 0.9 u^2: mostly mild (median 0.33: a 2.6 degree skew), as scanners and careful
    # photographers mostly are; with u uniform, half the pages were skewed past 4 degrees, where
    # Tesseract (psm 4) already reads a clean Debian manual page at CER 0.47 (0.01 straight), and
    # the steered variants could no longer reach low CERs.
    picked = {names[int(i)]: round(ops[names[int(i)]][1] * (0.1 + 0.9 * float(rng.random()) ** 2), 4)
              for i in rng.choice(len(names), size=n, replace=False, p=p / p.sum())}
    return tuple((op, picked[op]) for op in CAPTURE_OPS if op in picked)
