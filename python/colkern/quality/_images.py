"""Page-image facts shared by the OCR engines, the patch encoders, the source pages and the
degradations: the page with its transparency flattened onto white paper, the resolution an image
file declares, and how many pixels a 150-dpi pixel size is at that resolution."""
from __future__ import annotations

from typing import Optional

from PIL import Image


def flatten_alpha(image: Image.Image) -> Image.Image:
    """`image` composited onto white paper (RGBA, fully opaque) when it has transparency (an alpha
    band, or a palette with a transparent entry); otherwise `image` itself."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba)
    return image


def _declared_dpi(image: Image.Image) -> Optional[float]:
    """The horizontal resolution in PIL's info["dpi"]; None when there is none (or 0)."""
    dpi = image.info.get("dpi")
    if isinstance(dpi, (tuple, list)) and dpi and dpi[0]:
        return float(dpi[0])
    return None


def image_dpi(image: Image.Image) -> Optional[int]:
    """The horizontal resolution stored with the image (PIL info["dpi"]), rounded; None when the
    image has none (or 0)."""
    dpi = _declared_dpi(image)
    return (int(round(dpi)) or None) if dpi is not None else None


DEGRADE_REFERENCE_DPI = 150.0


def px_scale(image: Image.Image) -> float:
    """Pixels per 150-dpi pixel at the image's resolution (1.0 when it declares none): the
    degradations give their pixel sizes at 150 dpi, so a severity means the same damage at any DPI."""
    dpi = _declared_dpi(image)
    return dpi / DEGRADE_REFERENCE_DPI if dpi is not None else 1.0
