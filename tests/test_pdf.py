"""colkern.documents.pdf: page rendering and tiles, whole-file and per-page failures, file collection,
embedded images and the junk filter. Every PDF is generated here with PyMuPDF."""
import io
import os
import warnings

import numpy as np
import pymupdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from colkern.documents.pdf import (
    JUNK_MAX_ASPECT,
    JUNK_MIN_BYTES,
    JUNK_MIN_SIDE,
    MAX_DPI,
    ExtractedImage,
    FileFailure,
    PageFailure,
    PdfError,
    PdfWarning,
    RenderedPage,
    collect_pdfs,
    extract_images,
    is_junk_image,
    iter_pdf_pages,
    render_page_image,
    render_pdf,
    split_tiles,
    tile_boxes,
)

PAGE_W, PAGE_H = 200, 300  # points
RED = (255, 0, 0)


def _marker(i):
    """Page i carries a red square at a page-specific place: (x0, y0, x1, y1) in points."""
    x0, y0 = 20 + 40 * i, 30 + 60 * i
    return x0, y0, x0 + 30, y0 + 30


def _make_doc(n_pages=3, sizes=None):
    doc = pymupdf.open()
    for i in range(n_pages):
        w, h = sizes[i] if sizes else (PAGE_W, PAGE_H)
        page = doc.new_page(width=w, height=h)
        page.insert_text((10, 20), f"page {i}", fontsize=11)
        page.draw_rect(pymupdf.Rect(*_marker(i)), color=(1, 0, 0), fill=(1, 0, 0))
    return doc


def _save(doc, path, **kw):
    doc.save(os.fspath(path), **kw)
    return os.fspath(path)


@pytest.fixture
def pdf3(tmp_path):
    return _save(_make_doc(3), tmp_path / "three.pdf")


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# -- rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dpi", [72, 144, 36])
def test_render_size_is_page_size_times_dpi_over_72(pdf3, dpi):
    items = list(render_pdf(pdf3, dpi=dpi))
    assert [type(x) for x in items] == [RenderedPage] * 3
    assert [x.page for x in items] == [0, 1, 2]
    for x in items:
        assert x.file == pdf3 and x.dpi == dpi
        assert x.image.mode == "RGB"
        assert x.image.size == (PAGE_W * dpi // 72, PAGE_H * dpi // 72)


def test_render_non_integer_page_size_rounds_within_a_pixel(tmp_path):
    path = _save(_make_doc(1, sizes=[(101.3, 77.7)]), tmp_path / "odd.pdf")
    (item,) = render_pdf(path, dpi=100)
    assert abs(item.image.width - 101.3 * 100 / 72) <= 1
    assert abs(item.image.height - 77.7 * 100 / 72) <= 1


def test_render_draws_each_page_in_place(pdf3):
    dpi = 144
    zoom = dpi / 72
    for item in render_pdf(pdf3, dpi=dpi):
        arr = np.asarray(item.image)
        for j in range(3):
            x0, y0, x1, y1 = _marker(j)
            cx, cy = int((x0 + x1) / 2 * zoom), int((y0 + y1) / 2 * zoom)
            is_red = tuple(arr[cy, cx]) == RED
            assert is_red == (j == item.page), (item.page, j)


def test_pages_selects_and_orders(pdf3):
    assert [x.page for x in render_pdf(pdf3, pages=[2, 0], dpi=36)] == [2, 0]


@pytest.mark.parametrize("pages", [[3], [-1], [0, 7], ["0"], [True]])
def test_pages_out_of_range_or_not_int(pdf3, pages):
    with pytest.raises(ValueError, match="pages"):
        render_pdf(pdf3, pages=pages)


@pytest.mark.parametrize("dpi", [0, -72, MAX_DPI + 1, float("nan"), float("inf"), True, "144"])
def test_absurd_dpi_rejected(pdf3, dpi):
    with pytest.raises(ValueError, match="dpi"):
        render_pdf(pdf3, dpi=dpi)


def test_max_dpi_accepted(tmp_path):
    path = _save(_make_doc(1, sizes=[(36, 18)]), tmp_path / "small.pdf")  # half x quarter inch
    (item,) = render_pdf(path, dpi=MAX_DPI)
    assert item.image.size == (36 * MAX_DPI // 72, 18 * MAX_DPI // 72)


def test_huge_page_is_a_page_failure_and_the_rest_still_renders(tmp_path):
    path = _save(_make_doc(3, sizes=[(100, 100), (3000, 3000), (100, 100)]), tmp_path / "mixed.pdf")
    dpi = 144
    # Page 1 needs 6000 x 6000 pixels; allow only what the 200 x 200 pages need.
    items = list(render_pdf(path, dpi=dpi, max_pixels=200 * 200))
    assert [type(x) for x in items] == [RenderedPage, PageFailure, RenderedPage]
    fail = items[1]
    assert fail.file == path and fail.page == 1
    assert "6000 x 6000" in fail.error and "max_pixels" in fail.error
    with pytest.raises(PdfError, match="page 1.*max_pixels"):
        render_page_image(path, 1, dpi, max_pixels=200 * 200)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_bad_max_pixels(pdf3, bad):
    with pytest.raises(ValueError, match="max_pixels"):
        render_pdf(pdf3, max_pixels=bad)


def test_render_page_image(pdf3):
    img = render_page_image(pdf3, 1, dpi=72)
    assert img.size == (PAGE_W, PAGE_H)
    (item,) = render_pdf(pdf3, pages=[1], dpi=72)
    assert img.tobytes() == item.image.tobytes()
    with pytest.raises(ValueError, match="out of range"):
        render_page_image(pdf3, 3)


# -- tiles ---------------------------------------------------------------------------------------


def _coverage(boxes, width, height):
    count = np.zeros((height, width), dtype=np.int32)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        count[y0:y1, x0:x1] += 1
    return count


def test_four_tiles_cover_the_page_exactly(pdf3):
    (item,) = render_pdf(pdf3, dpi=144, tiles=4, pages=[0])
    w, h = item.image.size
    assert len(item.tiles) == 4
    assert (_coverage([t.box for t in item.tiles], w, h) == 1).all()
    # Row-major: top-left, top-right, bottom-left, bottom-right.
    (tl, tr, bl, br) = [t.box for t in item.tiles]
    assert tl[:2] == (0, 0) and tr[1] == 0 and tr[0] > 0 and bl[0] == 0 and bl[1] > 0 and br[2:] == (w, h)
    for t in item.tiles:
        assert t.image.size == (t.box[2] - t.box[0], t.box[3] - t.box[1])
        assert t.image.tobytes() == item.image.crop(t.box).tobytes()


def test_one_tile_is_the_page(pdf3):
    (item,) = render_pdf(pdf3, dpi=72, tiles=1, pages=[0])
    (tile,) = item.tiles
    assert tile.box == (0, 0, PAGE_W, PAGE_H)
    assert tile.image.tobytes() == item.image.tobytes()


@settings(max_examples=60, deadline=None)
@given(width=st.integers(3, 40), height=st.integers(3, 40), tiles=st.sampled_from([1, 4, 9]))
def test_tile_boxes_partition_any_size(width, height, tiles):
    boxes = tile_boxes(width, height, tiles)
    assert len(boxes) == tiles
    assert (_coverage(boxes, width, height) == 1).all()
    side = int(tiles ** 0.5)
    sizes_x = {x1 - x0 for x0, _, x1, _ in boxes}
    sizes_y = {y1 - y0 for _, y0, _, y1 in boxes}
    assert max(sizes_x) - min(sizes_x) <= 1 and max(sizes_y) - min(sizes_y) <= 1
    assert min(sizes_x) == width // side and min(sizes_y) == height // side


@pytest.mark.parametrize("tiles", [0, 2, 3, -4, True, 4.0])
def test_bad_tile_counts(pdf3, tiles):
    with pytest.raises(ValueError, match="tiles"):
        tile_boxes(10, 10, tiles)
    with pytest.raises(ValueError, match="tiles"):
        render_pdf(pdf3, tiles=tiles)


def test_too_small_to_tile():
    with pytest.raises(ValueError, match="width"):
        tile_boxes(1, 10, 4)
    with pytest.raises(TypeError, match="PIL"):
        split_tiles(np.zeros((4, 4, 3), np.uint8), 4)


def test_split_tiles_matches_boxes():
    img = Image.fromarray(np.arange(7 * 5 * 3, dtype=np.uint8).reshape(7, 5, 3))
    tiles = split_tiles(img, 4)
    assert [t.box for t in tiles] == tile_boxes(5, 7, 4)
    assert all(t.image.tobytes() == img.crop(t.box).tobytes() for t in tiles)


# -- whole-file failures -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = os.fspath(tmp_path / "nope.pdf")
    with pytest.raises(FileNotFoundError, match="nope.pdf"):
        render_pdf(missing)


def test_directory_is_not_a_pdf(tmp_path):
    with pytest.raises(PdfError, match="directory"):
        render_pdf(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.pdf"
    path.write_bytes(b"")
    with pytest.raises(PdfError, match="zero.pdf.*empty"):
        render_pdf(path)


def test_pdf_without_pages(tmp_path):
    # PyMuPDF refuses to save a 0-page document, so write the minimal PDF by hand.
    with pytest.raises(ValueError):
        pymupdf.open().tobytes()
    path = tmp_path / "nopages.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                     b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
    with pytest.raises(PdfError, match="nopages.pdf: has no pages"):
        render_pdf(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pdf"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(PdfError, match="noise.pdf: not a readable PDF"):
        render_pdf(path)


def test_png_named_pdf_is_not_opened_as_an_image(tmp_path):
    path = tmp_path / "picture.pdf"
    path.write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(PdfError, match="picture.pdf"):
        render_pdf(path)


def test_truncated_pdf(tmp_path, pdf3):
    data = open(pdf3, "rb").read()
    head = tmp_path / "head.pdf"
    head.write_bytes(data[: len(data) // 5])
    with pytest.raises(PdfError, match="head.pdf"):
        render_pdf(head)
    # Losing only the tail (the xref table) is repairable: it renders, with a warning.
    tail_cut = tmp_path / "tailcut.pdf"
    tail_cut.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.warns(PdfWarning, match="tailcut.pdf: damaged PDF repaired"):
        items = list(render_pdf(tail_cut, dpi=36))
    assert items and all(isinstance(x, (RenderedPage, PageFailure)) for x in items)


def test_encrypted_pdf(tmp_path):
    path = _save(_make_doc(2), tmp_path / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256,
                 user_pw="user-secret", owner_pw="owner-secret")
    with pytest.raises(PdfError, match="locked.pdf: encrypted, a password is needed"):
        render_pdf(path)
    with pytest.raises(PdfError, match="password given does not open it"):
        render_pdf(path, password="wrong")
    items = list(render_pdf(path, password="user-secret", dpi=72))
    assert [x.image.size for x in items] == [(PAGE_W, PAGE_H)] * 2


# -- many files ----------------------------------------------------------------------------------


def _tree(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    good_a = _save(_make_doc(2), tmp_path / "a.pdf")
    good_b = _save(_make_doc(1), tmp_path / "sub" / "deeper" / "B.PDF")
    noise = tmp_path / "sub" / "broken.pdf"
    noise.write_bytes(b"%PDF-1.7 but nothing else of use" * 10)
    locked = _save(_make_doc(1), tmp_path / "sub" / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256,
                   user_pw="pw", owner_pw="pw2")
    (tmp_path / "notes.txt").write_text("not a pdf")
    return good_a, good_b, os.fspath(noise), locked


def test_collect_pdfs_recursive_sorted_dedup(tmp_path):
    good_a, good_b, noise, locked = _tree(tmp_path)
    found = [os.fspath(p) for p in collect_pdfs([tmp_path])]
    assert found == sorted([good_a, good_b, noise, locked])
    notes = os.fspath(tmp_path / "notes.txt")
    # Explicit files are kept whatever their suffix; a file named twice appears once, order kept.
    again = [os.fspath(p) for p in collect_pdfs([notes, good_b, tmp_path / "sub"])]
    assert again == [notes, good_b] + sorted([noise, locked])
    assert collect_pdfs(good_a) == collect_pdfs([good_a])
    with pytest.raises(FileNotFoundError, match="missing-dir"):
        collect_pdfs([tmp_path / "missing-dir"])


def test_iter_pdf_pages_goes_on_after_bad_files(tmp_path):
    good_a, good_b, noise, locked = _tree(tmp_path)
    items = list(iter_pdf_pages([tmp_path], dpi=36, tiles=4))
    summary = [(type(x).__name__, os.fspath(x.file), getattr(x, "page", None)) for x in items]
    # Path order: a.pdf, sub/broken.pdf, sub/deeper/B.PDF, sub/locked.pdf.
    assert summary == [("RenderedPage", good_a, 0), ("RenderedPage", good_a, 1),
                       ("FileFailure", noise, None), ("RenderedPage", good_b, 0),
                       ("FileFailure", locked, None)]
    failures = {x.file: x.error for x in items if isinstance(x, FileFailure)}
    assert "not a readable PDF" in failures[noise] and "password" in failures[locked]
    assert all(len(x.tiles) == 4 for x in items if isinstance(x, RenderedPage))


def test_iter_pdf_pages_checks_arguments_first(tmp_path):
    _tree(tmp_path)
    with pytest.raises(ValueError, match="dpi"):
        next(iter_pdf_pages([tmp_path], dpi=10_000))
    with pytest.raises(ValueError, match="tiles"):
        next(iter_pdf_pages([tmp_path], tiles=2))


# -- embedded images -----------------------------------------------------------------------------


@pytest.mark.parametrize("nbytes,w,h,junk", [
    (JUNK_MIN_BYTES, JUNK_MIN_SIDE, JUNK_MIN_SIDE, False),          # every threshold exactly met
    (JUNK_MIN_BYTES - 1, 500, 400, True),                           # too few bytes
    (10**6, JUNK_MIN_SIDE - 1, 400, True),                          # a side too short
    (10**6, int(JUNK_MIN_SIDE * JUNK_MAX_ASPECT), JUNK_MIN_SIDE, False),   # aspect exactly the limit
    (10**6, int(JUNK_MIN_SIDE * JUNK_MAX_ASPECT) + 1, JUNK_MIN_SIDE, True),
    (10**6, 0, 100, True),
])
def test_is_junk_image(nbytes, w, h, junk):
    assert is_junk_image(nbytes, w, h) is junk
    assert is_junk_image(nbytes, h, w) is junk  # orientation does not matter


def test_is_junk_image_thresholds_and_bad_input():
    assert is_junk_image(100, 10, 10, min_bytes=0, min_side=0, max_aspect=100) is False
    assert is_junk_image(100, 100, 10, min_bytes=0, min_side=0, max_aspect=5) is True
    for args in [(-1, 10, 10), (10, -1, 10), (10, 10, 2.5), (True, 10, 10)]:
        with pytest.raises(ValueError, match="is_junk_image"):
            is_junk_image(*args)
    with pytest.raises(ValueError, match="max_aspect >= 1"):
        is_junk_image(100, 10, 10, max_aspect=0.5)


@pytest.fixture
def images_pdf(tmp_path):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)    # noise: large even compressed
    tiny = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)       # an icon
    rule = np.full((2, 400, 3), 128, np.uint8)                   # a separator line
    rgba = np.dstack([rng.integers(0, 256, (60, 60, 3), dtype=np.uint8), np.full((60, 60), 255, np.uint8)])
    rgba[:, :30, 3] = 0                                          # left half transparent
    doc = pymupdf.open()
    p0 = doc.new_page(width=300, height=300)
    p0.insert_image(pymupdf.Rect(10, 10, 106, 74), stream=_png(photo))
    p0.insert_image(pymupdf.Rect(150, 10, 160, 20), stream=_png(tiny))
    p0.insert_image(pymupdf.Rect(10, 200, 290, 202), stream=_png(rule))
    p1 = doc.new_page(width=300, height=300)
    p1.insert_image(pymupdf.Rect(10, 10, 106, 74), stream=_png(photo))   # same image again
    p1.insert_image(pymupdf.Rect(150, 150, 210, 210), stream=_png(rgba))
    return _save(doc, tmp_path / "images.pdf", deflate=True), photo, rgba


def test_extract_images_skips_junk_and_repeats(images_pdf):
    path, photo, rgba = images_pdf
    got = list(extract_images(path))
    assert [(x.page, x.width, x.height) for x in got] == [(0, 96, 64), (1, 60, 60)]
    assert all(isinstance(x, ExtractedImage) and not x.junk and x.nbytes >= JUNK_MIN_BYTES for x in got)
    assert np.array_equal(np.asarray(got[0].image), photo)          # lossless round trip
    out = np.asarray(got[1].image)
    assert (out[:, :30] == 255).all()                               # transparent -> white
    assert np.array_equal(out[:, 30:], rgba[:, 30:, :3])


def test_extract_images_keep_junk(images_pdf):
    path, _, _ = images_pdf
    got = list(extract_images(path, keep_junk=True))
    assert sorted((x.width, x.height, x.junk) for x in got) == [(4, 4, True), (60, 60, False),
                                                                (96, 64, False), (400, 2, True)]
    for x in got:
        assert x.image.size == (x.width, x.height) and x.image.mode == "RGB"
        assert x.junk == is_junk_image(x.nbytes, x.width, x.height)
    # Looser thresholds let the line through: it is junk by shape only.
    loose = list(extract_images(path, min_bytes=0, min_side=2, max_aspect=1000))
    assert (400, 2) in [(x.width, x.height) for x in loose] and (4, 4) in [(x.width, x.height) for x in loose]


def test_extract_images_oversized_image_warns_and_goes_on(images_pdf):
    path, _, _ = images_pdf
    with pytest.warns(PdfWarning, match="page 0, image xref .*max_pixels"):
        got = list(extract_images(path, max_pixels=60 * 60))
    assert [(x.width, x.height) for x in got] == [(60, 60)]


def test_extract_images_bad_thresholds(images_pdf):
    with pytest.raises(ValueError, match="thresholds"):
        extract_images(images_pdf[0], min_side=-1)


def test_extract_images_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        extract_images(tmp_path / "missing.pdf")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(PdfError, match="bad.pdf"):
        extract_images(bad)


def test_no_warnings_on_a_clean_file(pdf3):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(render_pdf(pdf3, dpi=36))) == 3
