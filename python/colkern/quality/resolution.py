"""A page image at the quality model's resolution: what resolution an image declares or
implies (page_dpi), and the image brought to the model's (at_model_dpi), with the way a page above
it is shrunk (DOWNSAMPLE, _downsample). Used by colkern.quality.pipeline and api for every page
they predict."""
from __future__ import annotations

import numpy as np

# When no resolution is declared: a page's short side in inches (A4 8.27, US Letter 8.5), and the
# page shapes (long / short side) taken for a whole page.
_PAGE_SHORT_SIDE_IN = 8.4
_PAGE_ASPECT = (1.25, 1.5)
# A declared resolution that makes the image wider than this many inches is a default (a JPEG
# camera's 72 dpi), not a measurement.
_MAX_PAGE_IN = 17.0


def page_dpi(image) -> tuple:
    """The resolution of a page image and where it comes from: -> (dpi, "declared") from PIL's
    info["dpi"] when it is plausible, (dpi, "page size") for an image shaped like a whole page
    (A4 / Letter proportions; the short side taken as 8.4 inches), else (None, None)."""
    from ._images import image_dpi

    if isinstance(image, np.ndarray):
        h, w = image.shape[:2]
        declared = None
    else:
        w, h = image.size
        declared = image_dpi(image)
    if declared and w / declared <= _MAX_PAGE_IN and h / declared <= _MAX_PAGE_IN * 1.5:
        return float(declared), "declared"
    short, long = min(w, h), max(w, h)
    if short and _PAGE_ASPECT[0] <= long / short <= _PAGE_ASPECT[1]:
        return short / _PAGE_SHORT_SIDE_IN, "page size"
    return None, None


def at_model_dpi(image, dpi: int):
    """`image` resampled to the model's resolution `dpi`; -> (image, scale applied).

    The pixel features are learnt at one resolution: a 300-dpi scan read as it is looks like large,
    blurred print to a 150-dpi model (measured on a blurred Debian manual page, when shrinking was
    an area average: predicted CER 0.67 as is, 0.29 after resampling, 0.31 for the same page
    rendered at 150 dpi). So:
    - an image that declares its resolution (PIL info["dpi"]: a PNG's pHYs, a TIFF's tags) is
      resampled when that is more than 5% off - unless the declaration is implausible (a photo
      that "is" 40 inches wide at a camera's default 72 dpi);
    - otherwise an image shaped like a whole page (A4 / Letter proportions) whose short side is
      over 1.25 x 8.4 inches at `dpi` is taken as a page 8.4 inches wide (a phone photo or a
      high-resolution scan) and downsampled; it is never enlarged on that guess;
    - anything else (a crop, a receipt strip, a page at about `dpi`) is taken as it is.
    Numpy arrays are read as a grey page when they are resampled. Enlarging is bicubic; shrinking
    is _downsample's (whole-pixel decimation, then an area average for what is left)."""
    from PIL import Image

    have, how = page_dpi(image)
    if have is None or abs(have / dpi - 1.0) <= 0.05 or (how == "page size" and have < 1.25 * dpi):
        return image, 1.0
    if isinstance(image, np.ndarray):
        from .encoders.patches import to_gray

        image = Image.fromarray(np.rint(to_gray(image) * 255.0).astype(np.uint8), mode="L")
    scale = dpi / have
    size = (max(1, int(round(image.width * scale))), max(1, int(round(image.height * scale))))
    out = _downsample(image, size, have / dpi) if scale < 1 else image.resize(size, Image.Resampling.BICUBIC)
    out.info["dpi"] = (dpi, dpi)
    return out, scale


# How a page above the model's resolution is brought down to it: "decimate" (below) or "area" (a
# box filter over the whole factor, like a coarser sensor; what colkern did before).
DOWNSAMPLE = "decimate"


def _downsample(image, size, factor: float):
    """`image` shrunk to `size` (factor = its DPI / the model's, > 1).

    The label the model predicts is the engine's reading of the page at the page's own resolution,
    and the engine binarises the pixels it is given: per-pixel noise and specks that an area
    average over 2 x 2 pixels would halve are what the engine sees at full strength. So the
    image is first decimated by the whole part of the factor (every k-th pixel, from the middle of
    each k x k cell: per-pixel statistics kept, glyph sizes scaled), and only the remaining factor
    (under 2) is an area average. On 247 real pages rendered, damaged (scanned or photographed) and
    read by Tesseract at 300 dpi, of PDFs no shipped model trained on, the shipped models' CER
    Spearman went from 0.74 (English) and 0.74 (Japanese) with the area average to 0.88 and 0.89
    (benchmarks/quality_real_pages.py check-resampling; benchmarks/results/quality-real-pages-300dpi/)."""
    from PIL import Image

    from ._images import flatten_alpha

    k = int(factor + 1e-6) if DOWNSAMPLE == "decimate" else 1
    if k >= 2:
        if image.mode not in ("L", "RGB"):   # palette, alpha, 1-bit, 16-bit: as the encoders read them
            image = flatten_alpha(image).convert("RGB" if image.mode in ("P", "PA", "RGBA", "CMYK") else "L")
        arr = np.asarray(image)
        image = Image.fromarray(np.ascontiguousarray(arr[k // 2::k, k // 2::k]), mode=image.mode)
    if image.size == tuple(size):
        return image
    return image.resize(size, Image.Resampling.BOX)
