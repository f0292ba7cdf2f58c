"""Page-image facts shared by the OCR engines, the patch encoders and the source pages: the page
with its transparency flattened onto white paper, and the resolution an image file declares."""
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


def image_dpi(image: Image.Image) -> Optional[int]:
    """The horizontal resolution stored with the image (PIL info["dpi"]), rounded; None when the
    image has none (or 0)."""
    dpi = image.info.get("dpi")
    if isinstance(dpi, (tuple, list)) and dpi and dpi[0]:
        return int(round(float(dpi[0]))) or None
    return None
