"""The render stage of colkern.distributed.index_pdfs_ray: input files -> rows of page pixels.

Runs in Ray Data CPU tasks (flat_map). PDFs are rendered with colkern.documents.pdf, images
(png / jpg / tif) are one page each; every failure becomes a row, so one bad file never stops
the run. Rows hold plain columns (str, int, bytes) so Ray Data keeps them in Arrow blocks.
"""
from __future__ import annotations

import json
import os
from typing import List, Optional, Sequence, Union

from .._types import PathLike

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
INPUT_SUFFIXES = (".pdf",) + IMAGE_SUFFIXES


def collect_inputs(inputs: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    """Absolute paths of the PDFs and images in `inputs`: files named explicitly are kept whatever
    their suffix; directories are walked recursively for .pdf / .png / .jpg / .jpeg / .tif /
    .tiff (any case), sorted. Each file once. FileNotFoundError naming a missing input."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: List[str] = []
    seen = set()
    for raw in inputs:
        p = os.path.abspath(os.fspath(raw))
        if os.path.isdir(p):
            found = [os.path.join(root, f) for root, _, files in os.walk(p) for f in files
                     if f.lower().endswith(INPUT_SUFFIXES)]
            files = sorted(found)
        elif os.path.exists(p):
            files = [p]
        else:
            raise FileNotFoundError(f"{os.fspath(raw)}: no such file or directory")
        for f in files:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def _row(kind: str, file: str, page: int = -1, error: str = "", image=None) -> dict:
    return {"kind": kind, "file": file, "page": int(page), "error": error,
            "pixels": image.tobytes() if image is not None else b"", "ntiles": 0,
            "height": image.height if image is not None else 0, "width": image.width if image is not None else 0}


def _page_row(file: str, page: int, image, tiles: int, fit: Optional[tuple]) -> dict:
    """A rendered page: the whole image (ntiles 0: the actor splits it), or with `fit` =
    (height, width, resample) its tiles already resized to the model's input size."""
    if fit is None:
        return _row("page", file, page, image=image)
    from ..documents.pdf import split_tiles

    H, W, resample = fit
    parts = [t.image.resize((W, H), resample=resample) for t in split_tiles(image, tiles)]
    row = _row("page", file, page)
    row.update(pixels=b"".join(p.tobytes() for p in parts), ntiles=len(parts), height=H, width=W)
    return row


def render_file(item: dict, *, dpi: int, tiles: int = 1, fit: Optional[tuple] = None) -> List[dict]:
    """One input file -> rows: a "page" row per rendered page (RGB pixels, see _page_row), a
    "fail" row per file or page that fails, one "skip" row counting pages already indexed (in
    `page`)."""
    from PIL import Image

    file, done = item["file"], set(json.loads(item["done"]))
    rows: List[dict] = []
    if file.lower().endswith(IMAGE_SUFFIXES):
        if 0 in done:
            return [_row("skip", file, 1)]
        try:
            with Image.open(file) as im:
                image = im.convert("RGB")
        except Exception as e:  # noqa: BLE001 - any unreadable image is reported, the run goes on
            return [_row("fail", file, -1, f"unreadable image: {type(e).__name__}: {e}")]
        return [_page_row(file, 0, image, tiles, fit)]
    import pymupdf

    from ..documents.pdf import PageFailure, render_pdf

    try:
        wanted = None
        if done:
            with pymupdf.open(file) as doc:
                count = doc.page_count
            wanted = [p for p in range(count) if p not in done]
            rows.append(_row("skip", file, count - len(wanted)))
            if not wanted:
                return rows
        for page in render_pdf(file, dpi=dpi, pages=wanted):
            if isinstance(page, PageFailure):
                rows.append(_row("fail", file, page.page, page.error))
            else:
                rows.append(_page_row(file, page.page, page.image, tiles, fit))
    except Exception as e:  # noqa: BLE001 - corrupt, encrypted, unreadable: one failure for the file
        rows.append(_row("fail", file, -1, str(e)))
    return rows
