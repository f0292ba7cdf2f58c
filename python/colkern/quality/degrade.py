"""Seeded image degradations with one severity knob, recorded so every sample can be reproduced.

    recipe = sample_recipe(rng)                       # e.g. (("blur", 1.0), ("jpeg", 0.6))
    img, steps = degrade(page.image, recipe, severity=0.4, seed=123)
    steps   # [{"op": "blur", "severity": 0.4, "params": {"sigma_px": 1.2}}, {"op": "jpeg", ...}]
    img2, _ = apply_steps(page.image, [("noise", 0.3)], seed=123)     # one op, explicit severity

Every op maps a severity in [0, 1] to its parameters (0 = no change; 1 = about where Tesseract
stops reading a 10 pt page on its own); pixel-sized parameters are given at 150 dpi and scaled
with the image's DPI (image.info["dpi"]), so a severity means the same damage at 150 and 200 dpi.

  brightness   darker page:   out = x * (1 - 0.75 s)
  contrast     faded print:   out = c + (x - c) * (1 - 0.96 s), c drawn in [150, 250] (paper tone)
  blur         Gaussian blur, sigma = 2.4 s px
  downscale    shrink by f = 1 - 0.78 s, enlarge back (bilinear or nearest, drawn): lost resolution
  noise        additive Gaussian noise, sigma = 70 s grey levels
  salt_pepper  a fraction 0.08 s of the pixels set to black or white
  jpeg         JPEG re-encoding at quality round(28 (1 - s)^1.5) + 2 (text survives q > 30)

Combinations (recipes) apply their ops in a fixed, physical order - print (brightness, contrast),
optics (blur), sensor (downscale, noise, salt_pepper), compression (jpeg) - each at
severity * weight. All randomness comes from the `seed` argument (numpy PCG64): the same image,
recipe, severity and seed always give the same pixels.

Regions (`sample_region`, `degrade(..., region=)`): the damage covers the whole page, or a part
of it that grows with the severity (a front sweeping across the page, a blob growing from a point).

Capture (`degrade(..., capture=)`, colkern.quality.capture): how a scanner or phone camera moves
and lights the page (warp, skew, perspective, shadow, motion_blur), applied first at severities
of their own; apply_steps runs those ops too.
"""
from __future__ import annotations

import io
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageFilter

from ._images import px_scale
from .capture import CAPTURE_APPLY, CAPTURE_OPS, Capture, sample_capture

__all__ = ["OPS", "CAPTURE_OPS", "STRONG_OPS", "REGIONS", "Recipe", "apply_steps", "degrade", "region_mask",
           "sample_capture", "sample_recipe", "sample_region"]

OPS = ("brightness", "contrast", "blur", "downscale", "noise", "salt_pepper", "jpeg")
# How often sample_recipe draws each op: the ops that actually move OCR error (blur, resolution,
# noise) come up more often than the ones Tesseract's binarisation mostly shrugs off.
_OP_WEIGHTS = {"brightness": 0.6, "contrast": 1.0, "blur": 1.6, "downscale": 1.4, "noise": 1.4,
               "salt_pepper": 1.0, "jpeg": 1.0}
# Ops that on their own take a 10 pt page from CER ~0 to ~1 over the severity range.
STRONG_OPS = ("blur", "downscale", "noise", "salt_pepper")

Recipe = Tuple[Tuple[str, float], ...]  # ((op, weight in (0, 1]), ...) in OPS order
Steps = List[Dict[str, Any]]


def _as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def _to_image(a: np.ndarray, like: Image.Image) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode=like.mode)


def _brightness(image, s, rng):
    factor = 1.0 - 0.75 * s
    return _to_image(_as_array(image) * factor, image), {"factor": round(factor, 4)}


def _contrast(image, s, rng):
    factor = 1.0 - 0.96 * s
    centre = float(rng.uniform(150.0, 250.0))
    out = centre + (_as_array(image) - centre) * factor
    return _to_image(out, image), {"factor": round(factor, 4), "centre": round(centre, 2)}


def _blur(image, s, rng):
    sigma = 2.4 * s * px_scale(image)
    if sigma < 0.05:
        return image.copy(), {"sigma_px": 0.0}
    return image.filter(ImageFilter.GaussianBlur(radius=sigma)), {"sigma_px": round(sigma, 4)}


def _downscale(image, s, rng):
    factor = 1.0 - 0.78 * s
    w, h = image.size
    sw, sh = max(1, int(round(w * factor))), max(1, int(round(h * factor)))
    if (sw, sh) == (w, h):
        return image.copy(), {"factor": 1.0, "upsample": "none"}
    up = "nearest" if rng.random() < 0.3 else "bilinear"
    small = image.resize((sw, sh), Image.Resampling.BOX)  # area average, like a low-res sensor
    method = Image.Resampling.NEAREST if up == "nearest" else Image.Resampling.BILINEAR
    return small.resize((w, h), method), {"factor": round(factor, 4), "upsample": up}


def _noise(image, s, rng):
    sigma = 70.0 * s
    a = _as_array(image)
    return _to_image(a + rng.normal(0.0, sigma, a.shape).astype(np.float32), image), {"sigma": round(sigma, 3)}


def _salt_pepper(image, s, rng):
    amount = 0.08 * s
    a = np.array(image)  # a writable uint8 copy
    hit = rng.random(a.shape[:2]) < amount
    salt = rng.random(a.shape[:2]) < 0.5
    a[hit & salt] = 255
    a[hit & ~salt] = 0
    return Image.fromarray(a, mode=image.mode), {"amount": round(amount, 5)}


def _jpeg(image, s, rng):
    quality = int(round(28.0 * (1.0 - s) ** 1.5)) + 2
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        out = im.convert(image.mode)
    return out, {"quality": quality}


_APPLY = {"brightness": _brightness, "contrast": _contrast, "blur": _blur, "downscale": _downscale,
          "noise": _noise, "salt_pepper": _salt_pepper, "jpeg": _jpeg}
assert tuple(_APPLY) == OPS
_APPLY.update(CAPTURE_APPLY)  # apply_steps runs the scanner / camera ops too (colkern.quality.capture)


def _check_image(image: Image.Image, who: str) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"{who}: image must be a PIL.Image.Image, got {type(image).__name__}")
    if image.mode not in ("L", "RGB"):
        raise ValueError(f"{who}: image mode must be 'L' or 'RGB', got {image.mode!r} (convert it first)")
    return image


def _check_severity(s, who: str, name: str = "severity") -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float, np.floating)) or not 0.0 <= float(s) <= 1.0:
        raise ValueError(f"{who}: {name} must be a number in [0, 1], got {s!r}")
    return float(s)


def apply_steps(image: Image.Image, steps: Sequence[Tuple[str, float]], *, seed: int) -> Tuple[Image.Image, Steps]:
    """Apply (op, severity) pairs in the given order.

    image: PIL "L" or "RGB"; seed: int for every random draw. Ops with severity 0 are skipped.
    -> (degraded image, same mode and size, info["dpi"] kept; [{"op", "severity", "params"}, ...]).
    """
    image = _check_image(image, "apply_steps")
    rng = np.random.default_rng(seed)
    dpi = image.info.get("dpi")
    record: Steps = []
    out = image
    for i, step in enumerate(steps):
        if not (isinstance(step, (tuple, list)) and len(step) == 2):
            raise ValueError(f"apply_steps: steps[{i}] must be an (op, severity) pair, got {step!r}")
        op, s = step
        if op not in _APPLY:
            raise ValueError(f"apply_steps: steps[{i}] has unknown op {op!r}; known: {OPS + CAPTURE_OPS}")
        s = _check_severity(s, "apply_steps", f"steps[{i}] severity")
        if s == 0.0:
            continue
        if dpi is not None:
            out.info["dpi"] = dpi  # PIL drops info in some ops; the pixel scale needs it
        out, params = _APPLY[op](out, s, rng)
        record.append({"op": op, "severity": round(s, 6), "params": params})
    if out is image:
        out = image.copy()
    if dpi is not None:
        out.info["dpi"] = dpi
    return out, record


def degrade(image: Image.Image, recipe: Recipe, severity: float, *, seed: int,
            region: Optional[Mapping[str, Any]] = None, capture: Capture = ()) -> Tuple[Image.Image, Steps]:
    """Apply a recipe at an overall severity: each op runs at severity * its weight, in OPS order.

    region: where the damage lands (see `sample_region`); None or {"kind": "full"} degrades the
    whole page uniformly. Otherwise the local severity is severity * region_mask(...): the page is
    degraded at 1/3, 2/3 and 3/3 of the severity (same seed, so one noise pattern) and each pixel
    interpolates between those images and the clean page according to its mask value.
    capture: scanner / camera ops ((op, severity), ... from colkern.quality.capture, e.g.
    sample_capture's draw) applied first, at their own severities: the recipe then damages the
    photographed page (a region follows the page as it appears in the photo).
    -> (image, the capture's steps then the recipe's at the full severity, as apply_steps returns them).
    """
    severity = _check_severity(severity, "degrade")
    order = {op: i for i, op in enumerate(OPS)}
    for op, w in recipe:
        if op not in order:
            raise ValueError(f"degrade: recipe has unknown op {op!r}; known: {OPS}")
        _check_severity(w, "degrade", f"weight of {op!r}")
    ordered = sorted(recipe, key=lambda t: order[t[0]])
    captured: Steps = []
    if capture:
        for step in capture:
            if not (isinstance(step, (tuple, list)) and len(step) == 2 and step[0] in CAPTURE_OPS):
                raise ValueError(f"degrade: capture must be (op, severity) pairs with ops from {CAPTURE_OPS}, "
                                 f"got {step!r}")
        # Its own stream of random draws: the recipe's pixels stay those of the same seed without capture.
        image, captured = apply_steps(image, capture, seed=(seed * 0x9E3779B1 + 0xCA97) % 2**63)

    def at(level: float):
        return apply_steps(image, [(op, min(1.0, severity * level * float(w))) for op, w in ordered], seed=seed)

    if region is None or region.get("kind") == "full":
        out, steps = at(1.0)
        return out, captured + steps
    mask = region_mask(region, image.size, severity)
    full, steps = at(1.0)
    levels = ([_as_array(_check_image(image, "degrade"))] + [_as_array(at(l)[0]) for l in (1 / 3, 2 / 3)]
              + [_as_array(full)])
    pos = mask * (len(levels) - 1)                    # [H, W] in [0, 3]
    j = np.minimum(pos.astype(np.int64), len(levels) - 2)
    frac = pos - j
    if image.mode == "RGB":
        j, frac = j[..., None], frac[..., None]
    stack = np.stack(levels)                          # [4, H, W(, 3)] float32
    lo = np.take_along_axis(stack, j[None], axis=0)[0]
    hi = np.take_along_axis(stack, (j + 1)[None], axis=0)[0]
    out = _to_image(lo + (hi - lo) * frac, image)
    if "dpi" in image.info:
        out.info["dpi"] = image.info["dpi"]
    return out, captured + steps


REGIONS = ("full", "ramp", "blob")


def sample_region(rng: Union[np.random.Generator, int]) -> Dict[str, Any]:
    """Where a recipe's damage lands: the "full" page (p 0.4), a "ramp" sweeping across the page at
    a random angle (p 0.4: uneven lighting, a page curling away from the scanner glass), or a
    "blob" growing from a random centre (p 0.2: a stain, a crease). `band` is the width of the
    soft edge, as a fraction of the page."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    u = rng.random()
    band = round(float(rng.uniform(0.05, 0.3)), 4)
    if u < 0.4:
        return {"kind": "full"}
    if u < 0.8:
        return {"kind": "ramp", "angle": round(float(rng.uniform(0.0, 2 * np.pi)), 4), "band": band}
    return {"kind": "blob", "cx": round(float(rng.uniform(0.15, 0.85)), 4),
            "cy": round(float(rng.uniform(0.15, 0.85)), 4), "band": band}


def region_mask(region: Mapping[str, Any], size: Tuple[int, int], severity: float) -> np.ndarray:
    """float32 [H, W] in [0, 1]: the share of `severity` each pixel gets. size = (W, H).

    Each pixel has a position q in [0, 1]: along direction `angle` for a ramp, the distance to
    (cx, cy) over the largest such distance for a blob (coordinates are fractions of the page, y
    scaled by the aspect ratio). The damage front sits at severity * (1 + band): pixels behind it
    get the full severity, then a linear edge `band` wide. So severity 1 covers the whole page and
    the damaged area grows with severity - Tesseract tends to read a uniformly degraded page
    perfectly or not at all, but a growing region destroys a growing share of the lines, which is
    where intermediate CERs come from.
    """
    w, h = size
    kind = region.get("kind")
    if kind == "full":
        return np.ones((h, w), np.float32)
    x = (np.arange(w, dtype=np.float32) + 0.5) / w
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    aspect = h / w
    if kind == "ramp":
        c, s = np.cos(region["angle"]), np.sin(region["angle"])
        q = (x[None, :] - 0.5) * c + (y[:, None] - 0.5) * aspect * s
        extent = 0.5 * (abs(c) + abs(s) * aspect)  # the corners project to +-extent
        q = (q + extent) / (2 * extent)
    elif kind == "blob":
        d = np.sqrt((x[None, :] - region["cx"]) ** 2 + ((y[:, None] - region["cy"]) * aspect) ** 2)
        q = d / d.max()
    else:
        raise ValueError(f"region_mask: unknown region kind {kind!r}; known: {REGIONS}")
    band = max(float(region["band"]), 1e-3)
    front = severity * (1.0 + band)
    return np.clip((front - q) / band, 0.0, 1.0).astype(np.float32)


def sample_recipe(rng: Union[np.random.Generator, int], *, max_ops: int = 3) -> Recipe:
    """Draw 1..max_ops distinct ops with weights.

    The first op is one of STRONG_OPS at weight 1, so that severity 1 makes any recipe hard to read
    (brightness, contrast and even JPEG at quality 2 alone leave Tesseract at CER < 0.1 on clean
    10 pt pages: a recipe of only those could never reach the intermediate CER range). The others
    are drawn from all remaining ops, weighted by how much they move OCR error, at weights in
    [0.5, 1]. -> ((op, weight), ...) in OPS order.
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if not isinstance(max_ops, int) or not 1 <= max_ops <= len(OPS):
        raise ValueError(f"sample_recipe: max_ops must be an int in 1..{len(OPS)}, got {max_ops!r}")
    n = int(rng.integers(1, max_ops + 1))
    strong = [o for o in OPS if o in STRONG_OPS]
    p = np.array([_OP_WEIGHTS[o] for o in strong], dtype=np.float64)
    pairs = {strong[int(rng.choice(len(strong), p=p / p.sum()))]: 1.0}
    rest = [o for o in OPS if o not in pairs]
    p = np.array([_OP_WEIGHTS[o] for o in rest], dtype=np.float64)
    for i in rng.choice(len(rest), size=n - 1, replace=False, p=p / p.sum()):
        pairs[rest[int(i)]] = round(float(rng.uniform(0.5, 1.0)), 4)
    return tuple((op, pairs[op]) for op in OPS if op in pairs)
