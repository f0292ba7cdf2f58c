"""PDF pages as RGB images (whole page plus an n x n tile split) and the images embedded in PDFs.

    for item in render_pdf("report.pdf", dpi=144, tiles=4):
        if isinstance(item, PageFailure):
            ...                                  # one bad page; the rest of the file still renders
        else:
            item.image, item.tiles               # full page, 2x2 tiles (row-major)

    for item in iter_pdf_pages(["scans/", "extra.pdf"]):   # many files: failures become records
        ...

Rendering uses PyMuPDF (MuPDF). A page of W x H points (1/72 inch) renders to
(W * dpi / 72) x (H * dpi / 72) pixels, rounded the way MuPDF rounds its pixel box.

Why tiles: ColPali (PaliGemma / SigLIP) resizes every input to 448 x 448 pixels, so an A4 page
loses small print. Cutting the page into 2 x 2 tiles and encoding each tile at the model's input
size gives each patch a quarter of the area, about 4x the effective resolution. Tiles are listed
row-major (top-left, top-right, bottom-left, bottom-right for 4) and cover the page exactly, with
no overlap; colkern.heatmap.similarity_maps puts the tiles' patch grids back in the same order.

Errors. A problem with a whole file (missing, not a PDF, damaged beyond repair, encrypted without
the right password, no pages) raises at once: FileNotFoundError for a missing file, PdfError (a
ValueError) otherwise, always naming the file. A problem with one page (MuPDF fails on it, or the
pixmap would be too large) becomes a PageFailure record, so a batch goes on. iter_pdf_pages turns
whole-file errors into FileFailure records as well. A file MuPDF had to repair (e.g. truncated)
renders with a PdfWarning, since some of its pages may be missing or blank.

Embedded images: extract_images yields the raster images a PDF contains, minus "junk" (icons,
rules, logos) that only adds noise to an index; see is_junk_image for the rule and its defaults.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import pymupdf
from PIL import Image

from .._types import PathLike

Box = Tuple[int, int, int, int]

MAX_DPI = 600
# Largest pixmap rendered or decoded, in pixels: 2**26 (67 MP, ~200 MB as RGB) holds an A4 page
# at 600 dpi (35 MP) with room to spare but refuses a poster-sized page at high dpi.
MAX_PIXELS = 1 << 26

# Junk-image defaults, after the rule of thumb "drop images under 5 KB or with an extreme aspect
# ratio": icons, bullets, separator lines and tracking pixels fall under them, figures do not.
JUNK_MIN_BYTES = 5_000     # encoded size as stored in the PDF
JUNK_MIN_SIDE = 32         # pixels, the shorter side
JUNK_MAX_ASPECT = 8.0      # longer side / shorter side


class PdfError(ValueError):
    """A PDF that cannot be used as a whole: not a PDF, damaged, encrypted or without pages."""

    def __init__(self, file: PathLike, reason: str):
        self.file = os.fspath(file)
        self.reason = reason
        super().__init__(f"{self.file}: {reason}")


class PdfWarning(UserWarning):
    """Something in a PDF that was worked around (a repaired file, an undecodable image)."""


@dataclass(frozen=True)
class Tile:
    """One tile of a rendered page: `box` = (x0, y0, x1, y1) in page pixels, x1/y1 exclusive;
    `image` is that crop of the page, RGB, of size (x1 - x0, y1 - y0)."""

    box: Box
    image: Image.Image


@dataclass(frozen=True)
class RenderedPage:
    """A page rendered at `dpi`: `image` RGB of the whole page, `tiles` row-major, covering it."""

    file: str
    page: int  # 0-based
    image: Image.Image
    tiles: List[Tile]
    dpi: float


@dataclass(frozen=True)
class PageFailure:
    """A page that could not be rendered (the other pages of the file still are)."""

    file: str
    page: int  # 0-based
    error: str


@dataclass(frozen=True)
class FileFailure:
    """A file that could not be opened as a PDF at all (iter_pdf_pages only)."""

    file: str
    error: str


@dataclass(frozen=True)
class ExtractedImage:
    """A raster image embedded in a PDF, decoded to RGB (transparency composited onto white).

    xref: the PDF object number of the image; nbytes: its encoded size as stored in the PDF;
    width/height: its own pixel size (not its size on the page); junk: is_junk_image's verdict."""

    file: str
    page: int  # 0-based, the first page that shows the image
    xref: int
    image: Image.Image
    nbytes: int
    width: int
    height: int
    junk: bool = False


# -- tiles ---------------------------------------------------------------------------------------


def tile_grid(tiles: int) -> Tuple[int, int]:
    """(rows, cols) of a tile count: 1 -> (1, 1), 4 -> (2, 2), n*n -> (n, n)."""
    if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1 or math.isqrt(tiles) ** 2 != tiles:
        raise ValueError(f"tiles must be a square number of tiles (1 for the whole page, 4 for 2x2), got {tiles!r}")
    side = math.isqrt(tiles)
    return side, side


def tile_boxes(width: int, height: int, tiles: int) -> List[Box]:
    """Boxes (x0, y0, x1, y1), x1/y1 exclusive, of `tiles` tiles of a width x height image,
    row-major. Cuts fall at floor(i * size / side), so the boxes cover every pixel exactly once;
    tiles differ by at most one pixel in each direction."""
    rows, cols = tile_grid(tiles)
    for name, v, n in (("width", width, cols), ("height", height, rows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < n:
            raise ValueError(f"tile_boxes: {name} must be an int >= {n} for {tiles} tiles, got {v!r}")
    xs = [i * width // cols for i in range(cols + 1)]
    ys = [j * height // rows for j in range(rows + 1)]
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(rows) for i in range(cols)]


def split_tiles(image: Image.Image, tiles: int) -> List[Tile]:
    """Cut `image` into `tiles` Tiles (see tile_boxes). tiles=1 gives one tile, the image itself."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"split_tiles: image must be a PIL image, got {type(image).__name__}")
    boxes = tile_boxes(image.width, image.height, tiles)
    if len(boxes) == 1:
        return [Tile(boxes[0], image)]
    return [Tile(box, image.crop(box)) for box in boxes]


# -- opening and rendering -----------------------------------------------------------------------


def _check_dpi(dpi) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not math.isfinite(dpi) \
            or not 0 < dpi <= MAX_DPI:
        raise ValueError(f"dpi must be a number in (0, {MAX_DPI}], got {dpi!r}")
    return float(dpi)


def _check_max_pixels(max_pixels) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")


def _open_pdf(path: PathLike, password: Optional[str]) -> pymupdf.Document:
    """Open `path` as a PDF or raise FileNotFoundError / PdfError naming it."""
    file = os.fspath(path)
    if not os.path.exists(file):
        raise FileNotFoundError(f"{file}: no such file")
    if os.path.isdir(file):
        raise PdfError(file, "is a directory, not a PDF file (use collect_pdfs / iter_pdf_pages for folders)")
    if os.path.getsize(file) == 0:
        raise PdfError(file, "empty file (0 bytes)")
    try:
        doc = pymupdf.open(file, filetype="pdf")
    except Exception as e:  # pymupdf.FileDataError and friends: the bytes are not a usable PDF
        raise PdfError(file, f"not a readable PDF ({type(e).__name__}: {e})") from e
    try:
        # MuPDF sniffs the content and opens e.g. a PNG as a 1-page image document even when
        # told filetype="pdf"; only real PDFs go on.
        if not doc.is_pdf:
            raise PdfError(file, f"not a PDF (its content is {doc.metadata.get('format') or 'another format'})")
        if doc.needs_pass:
            if password is None:
                raise PdfError(file, "encrypted, a password is needed to open it")
            if not doc.authenticate(password):
                raise PdfError(file, "encrypted, and the password given does not open it")
        if doc.page_count == 0:
            raise PdfError(file, "has no pages")
    except BaseException:
        doc.close()
        raise
    if doc.is_repaired:
        warnings.warn(f"{file}: damaged PDF repaired by MuPDF; some pages may be missing or blank",
                      PdfWarning, stacklevel=3)
    return doc


def _check_pages(pages: Optional[Iterable[int]], page_count: int, file: str) -> List[int]:
    if pages is None:
        return list(range(page_count))
    out = []
    for p in pages:
        if isinstance(p, bool) or not isinstance(p, int):
            raise ValueError(f"pages: page numbers must be ints, got {p!r} for {file}")
        if not 0 <= p < page_count:
            raise ValueError(f"pages: page {p} out of range for {file}, which has {page_count} pages "
                             f"(pages are 0-based)")
        out.append(p)
    return out


def _render(doc: pymupdf.Document, page: int, dpi: float, max_pixels: int) -> Image.Image:
    """Render one page to RGB; raises RuntimeError/ValueError with a reason on failure."""
    pg = doc.load_page(page)
    zoom = dpi / 72.0
    matrix = pymupdf.Matrix(zoom, zoom)
    box = (pg.rect * matrix).irect  # the pixmap's size, computed before allocating it
    if box.width < 1 or box.height < 1:
        raise ValueError(f"page area is empty at {dpi:g} dpi ({pg.rect.width:g} x {pg.rect.height:g} pt)")
    if box.width * box.height > max_pixels:
        raise ValueError(f"page would render to {box.width} x {box.height} pixels at {dpi:g} dpi, over "
                         f"max_pixels={max_pixels}; lower the dpi")
    pix = pg.get_pixmap(matrix=matrix, colorspace=pymupdf.csRGB, alpha=False)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples, "raw", "RGB", pix.stride)


def render_pdf(path: PathLike, *, dpi: float = 144, tiles: int = 1, pages: Optional[Iterable[int]] = None,
               password: Optional[str] = None,
               max_pixels: int = MAX_PIXELS) -> Iterator[Union[RenderedPage, PageFailure]]:
    """Render the pages of one PDF: an iterator of RenderedPage, or PageFailure for a page that fails.

    dpi: in (0, 600]; 144 renders an A4 page to 1191 x 1684. tiles: 1 (whole page) or 4 (2x2),
    any n*n works. pages: 0-based page numbers, in the order wanted (default: all).
    password: for an encrypted PDF. max_pixels: larger pages become PageFailures.

    The file is opened and checked when render_pdf is called, not on the first next(): a
    missing file raises FileNotFoundError, an unusable one PdfError, bad arguments ValueError.
    """
    dpi = _check_dpi(dpi)
    tile_grid(tiles)
    _check_max_pixels(max_pixels)
    file = os.fspath(path)
    doc = _open_pdf(file, password)
    try:
        wanted = _check_pages(pages, doc.page_count, file)
    except BaseException:
        doc.close()
        raise
    return _render_pages(doc, file, wanted, dpi, tiles, max_pixels)


def _render_pages(doc, file, wanted, dpi, tiles, max_pixels):
    try:
        for p in wanted:
            try:
                image = _render(doc, p, dpi, max_pixels)
                parts = split_tiles(image, tiles)
            except Exception as e:  # one bad page (MuPDF error, too large, too small to tile)
                yield PageFailure(file, p, f"{type(e).__name__}: {e}")
                continue
            yield RenderedPage(file, p, image, parts, dpi)
    finally:
        doc.close()


def render_page_image(path: PathLike, page: int, dpi: float = 144, *, password: Optional[str] = None,
                      max_pixels: int = MAX_PIXELS) -> Image.Image:
    """One page (0-based) of a PDF as an RGB image; any failure raises, naming file and page."""
    (item,) = list(render_pdf(path, dpi=dpi, pages=[page], password=password, max_pixels=max_pixels))
    if isinstance(item, PageFailure):
        raise PdfError(item.file, f"page {item.page}: {item.error}")
    return item.image


def render_open_page(page: pymupdf.Page, dpi: int, *, gray: bool = False) -> Image.Image:
    """A page of a document the caller holds open (one it builds, or one whose text layer it
    also reads) as an image at `dpi`: RGB, or "L" with gray=True; info["dpi"] is (dpi, dpi).
    dpi in (0, 600]. Unlike render_pdf there is no pixel limit: the caller knows the page."""
    _check_dpi(dpi)
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY if gray else pymupdf.csRGB, alpha=False)
    mode = "L" if gray else "RGB"
    image = Image.frombytes(mode, (pix.width, pix.height), pix.samples, "raw", mode, pix.stride)
    image.info["dpi"] = (dpi, dpi)
    return image


# -- many files ----------------------------------------------------------------------------------


def collect_pdfs(inputs: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """Expand files and directories into a list of PDF paths.

    Files named explicitly are kept whatever their suffix (the caller chose them). Directories
    are walked recursively (symlinked directories are not followed, so no loops) for files whose
    suffix is .pdf in any case; each directory's files come sorted by their path. The result keeps
    the order of `inputs` and lists a file once even if named twice. A missing input raises
    FileNotFoundError naming it.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: List[Path] = []
    seen = set()

    def add(p: Path) -> None:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = []
            for root, dirs, files in os.walk(p):
                found.extend(Path(root) / f for f in files if f.lower().endswith(".pdf"))
            for f in sorted(found, key=lambda q: q.as_posix()):
                add(f)
        elif p.exists():
            add(p)
        else:
            raise FileNotFoundError(f"{os.fspath(p)}: no such file or directory")
    return out


def iter_pdf_pages(inputs: Union[PathLike, Sequence[PathLike]], *, dpi: float = 144, tiles: int = 1,
                   password: Optional[str] = None, max_pixels: int = MAX_PIXELS,
                   progress: bool = False) -> Iterator[Union[RenderedPage, PageFailure, FileFailure]]:
    """Render every page of every PDF in `inputs` (files and/or directories, see collect_pdfs).

    Never stops on a bad file or page: a file that cannot be opened yields one FileFailure, a page
    that cannot be rendered a PageFailure, and the batch goes on. Argument errors (dpi, tiles,
    a missing input) still raise before anything is rendered. progress: a tqdm bar over files.
    """
    _check_dpi(dpi)
    tile_grid(tiles)
    _check_max_pixels(max_pixels)
    files = collect_pdfs(inputs)
    bar = files
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(files, desc="rendering PDFs", unit="file")
    for f in bar:
        try:
            pages = render_pdf(f, dpi=dpi, tiles=tiles, password=password, max_pixels=max_pixels)
        except (PdfError, OSError) as e:  # OSError: removed or unreadable since it was listed
            yield FileFailure(os.fspath(f), str(e))
            continue
        yield from pages


# -- embedded images -----------------------------------------------------------------------------


def _check_junk_thresholds(min_bytes, min_side, max_aspect, name: str) -> None:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (min_bytes, min_side, max_aspect))
    if not (ok and min_bytes >= 0 and min_side >= 0 and max_aspect >= 1):
        raise ValueError(f"{name}: thresholds must be numbers with min_bytes >= 0, min_side >= 0 and "
                         f"max_aspect >= 1, got {min_bytes!r}, {min_side!r}, {max_aspect!r}")


def is_junk_image(nbytes: int, width: int, height: int, *, min_bytes: int = JUNK_MIN_BYTES,
                  min_side: int = JUNK_MIN_SIDE, max_aspect: float = JUNK_MAX_ASPECT) -> bool:
    """True for an image not worth indexing: encoded size under `min_bytes` (5,000), shorter side
    under `min_side` pixels (32), or longer/shorter side over `max_aspect` (8). Any one suffices.
    A 0-pixel side is junk."""
    for name, v in (("nbytes", nbytes), ("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"is_junk_image: {name} must be a non-negative int, got {v!r}")
    _check_junk_thresholds(min_bytes, min_side, max_aspect, "is_junk_image")
    short, long = min(width, height), max(width, height)
    if short == 0:
        return True
    return nbytes < min_bytes or short < min_side or long / short > max_aspect


def _decode_image(doc: pymupdf.Document, xref: int, smask: int) -> Image.Image:
    """Decode image `xref` to RGB, compositing its soft mask (transparency) onto white, since a
    transparent logo decoded without it would sit on black."""
    pix = pymupdf.Pixmap(doc, xref)
    if pix.colorspace is None:
        raise ValueError("image mask without colour (a stencil), nothing to show")
    if pix.alpha:
        pix = pymupdf.Pixmap(pix, 0)
    if pix.colorspace.n != 3:
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    rgb = Image.frombytes("RGB", (pix.width, pix.height), pix.samples, "raw", "RGB", pix.stride)
    if smask:
        mask = pymupdf.Pixmap(doc, smask)
        if (mask.width, mask.height) == (pix.width, pix.height) and mask.n == 1:
            alpha = Image.frombytes("L", (mask.width, mask.height), mask.samples, "raw", "L", mask.stride)
            white = Image.new("RGB", rgb.size, (255, 255, 255))
            rgb = Image.composite(rgb, white, alpha)
    return rgb


def extract_images(path: PathLike, *, keep_junk: bool = False, min_bytes: int = JUNK_MIN_BYTES,
                   min_side: int = JUNK_MIN_SIDE, max_aspect: float = JUNK_MAX_ASPECT,
                   password: Optional[str] = None,
                   max_pixels: int = MAX_PIXELS) -> Iterator[ExtractedImage]:
    """The raster images embedded in a PDF, each once (on the first page that shows it), in page
    order, decoded to RGB. Junk (is_junk_image with the given thresholds) is skipped unless
    keep_junk, which yields it with junk=True. The junk test reads only the PDF's image
    dictionary and stream length, so skipped images are never decoded.

    Opens the file at call time (FileNotFoundError / PdfError as render_pdf). An image that
    cannot be decoded, or is over max_pixels, is skipped with a PdfWarning naming file, page and
    xref: one odd image should not lose the others.
    """
    _check_max_pixels(max_pixels)
    _check_junk_thresholds(min_bytes, min_side, max_aspect, "extract_images")
    file = os.fspath(path)
    doc = _open_pdf(file, password)
    return _extract(doc, file, keep_junk, min_bytes, min_side, max_aspect, max_pixels)


def _extract(doc, file, keep_junk, min_bytes, min_side, max_aspect, max_pixels):
    seen = set()
    try:
        for p in range(doc.page_count):
            for info in doc.load_page(p).get_images(full=True):
                xref, smask, width, height = info[0], info[1], info[2], info[3]
                if xref in seen or xref <= 0:
                    continue
                seen.add(xref)
                nbytes = len(doc.xref_stream_raw(xref) or b"")
                junk = is_junk_image(nbytes, width, height, min_bytes=min_bytes, min_side=min_side,
                                     max_aspect=max_aspect)
                if junk and not keep_junk:
                    continue
                where = f"{file}: page {p}, image xref {xref}"
                if width * height > max_pixels:
                    warnings.warn(f"{where}: {width} x {height} pixels is over max_pixels={max_pixels}, skipped",
                                  PdfWarning, stacklevel=2)
                    continue
                try:
                    image = _decode_image(doc, xref, smask)
                except Exception as e:
                    warnings.warn(f"{where}: cannot decode ({type(e).__name__}: {e}), skipped",
                                  PdfWarning, stacklevel=2)
                    continue
                yield ExtractedImage(file, p, xref, image, nbytes, width, height, junk)
    finally:
        doc.close()
