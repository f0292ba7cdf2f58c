"""colkern.colpali.indexing: PDFs -> page index (resumable, incremental, failure-tolerant), search, heatmaps.

The encoder here is a small deterministic stand-in (pixels of a 4x4 patch grid through a fixed
random projection), so these tests exercise the indexing logic quickly; tests/test_cli_pages.py
runs the same path end to end with a real (tiny, random-weight) ColPali model.
"""
import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch

pymupdf = pytest.importorskip("pymupdf")

from PIL import Image  # noqa: E402

from colkern import MultiVectorIndex, maxsim_ref  # noqa: E402
from colkern.colpali.indexing import (  # noqa: E402
    index_pdfs,
    page_embeddings,
    page_id,
    parse_page_id,
    save_page_heatmap,
    search_pages,
)
from colkern.retrieval.index import IndexFormatError  # noqa: E402

DPI = 36  # small renders: fast, and the stand-in encoder only looks at a 4x4 grid anyway


@dataclass
class _Emb:
    embeddings: torch.Tensor


class StandInEncoder:
    """Deterministic page encoder: 4x4 patch means and stds of the RGB tile -> 16 vectors of dim 16."""

    grid = (4, 4)
    dim = 16

    def __init__(self, fail_on=None, interrupt_after=None):
        self.proj = torch.randn(6, self.dim, generator=torch.Generator().manual_seed(0))
        self.queries = torch.randn(5, self.dim, generator=torch.Generator().manual_seed(1))
        self.fail_on = fail_on  # a pixel sum that makes encoding fail (one particular page)
        self.interrupt_after = interrupt_after  # raise KeyboardInterrupt on this call
        self.calls = 0
        self.encoded = 0

    def encode_images(self, images, hidden_states=False):
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt("simulated interruption")
        out = []
        for im in images:
            a = torch.from_numpy(np.asarray(im.convert("RGB").resize((64, 64)), dtype=np.float32) / 255.0)
            if self.fail_on is not None and int(a.sum()) == self.fail_on:
                raise RuntimeError("cannot encode this page")
            p = a.reshape(4, 16, 4, 16, 3).permute(0, 2, 1, 3, 4).reshape(16, 256, 3)
            feats = torch.cat([p.mean(1), p.std(1)], 1)  # [16, 6]
            out.append(_Emb(torch.nn.functional.normalize(feats @ self.proj, dim=1)))
        self.encoded += len(images)
        return out

    def encode_queries(self, texts):
        return [self.queries for _ in texts]


def _pdf(path, n_pages, seed=0):
    doc = pymupdf.open()
    rng = np.random.default_rng(seed)
    for i in range(n_pages):
        page = doc.new_page(width=300, height=400)
        page.insert_text((20, 40 + 30 * (i % 5)), f"page {i} of {os.path.basename(path)}", fontsize=14)
        page.draw_rect(pymupdf.Rect(*rng.integers(0, 150, 2), *rng.integers(160, 300, 2)), color=(0, 0, 0),
                       fill=tuple(rng.random(3)))
    doc.save(path)
    doc.close()
    return str(path)


@pytest.fixture
def pdfs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    return [_pdf(d / "a.pdf", 3, seed=1), _pdf(d / "b.pdf", 2, seed=2)]


def _index(inputs, out, enc, **kw):
    kw.setdefault("dpi", DPI)
    kw.setdefault("batch_pages", 2)
    return index_pdfs(inputs, out, enc, model="stand-in", **kw)


def test_page_id_round_trip(tmp_path):
    f = str(tmp_path / "x#page=2.pdf")  # the separator inside the file name still parses
    assert parse_page_id(page_id(f, 4)) == (os.path.abspath(f), 4)
    for bad in ("file.pdf", "file.pdf#page=0", "file.pdf#page=x"):
        with pytest.raises(ValueError, match="not a colkern page id"):
            parse_page_id(bad)


@pytest.mark.parametrize("tiles", [1, 4])
def test_index_search_and_heatmap(tmp_path, pdfs, tiles):
    out = str(tmp_path / "pages.colk")
    enc = StandInEncoder()
    report = _index([os.path.dirname(pdfs[0])], out, enc, tiles=tiles)
    assert (report.num_pages, report.added, report.skipped, report.failures) == (5, 5, 0, [])
    assert enc.encoded == 5 * tiles and not os.path.exists(out + ".parts")
    index = MultiVectorIndex.load(out, mmap=True)
    assert [parse_page_id(i) for i in index.ids] == [(os.path.abspath(f), p) for f, n in zip(pdfs, (3, 2))
                                                       for p in range(n)]
    assert index.attrs["tiles"] == tiles and index.attrs["dpi"] == DPI and index.attrs["grid"] == [4, 4]
    assert index.lengths.tolist() == [16 * tiles] * 5

    hits = search_pages(index, enc, "anything", k=3, oversample=100)  # keeps all: exact float ranking
    exact = maxsim_ref(enc.queries[None], [page_embeddings(index, i) for i in range(5)])[0]
    assert [h.position for h in hits] == exact.argsort(descending=True)[:3].tolist()
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score == pytest.approx(float(exact.max()), rel=2e-3)  # Q meets fp16 docs in fp16

    png = save_page_heatmap(index, enc, "anything", hits[0], str(tmp_path / "hit.png"))
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.size == (round(300 * DPI / 72), round(400 * DPI / 72))


def test_interrupted_run_resumes_without_losing_pages(tmp_path, pdfs):
    out = str(tmp_path / "pages.colk")
    _index(pdfs, str(tmp_path / "whole.colk"), StandInEncoder())
    whole = MultiVectorIndex.load(tmp_path / "whole.colk")

    with pytest.raises(KeyboardInterrupt):
        _index(pdfs, out, StandInEncoder(interrupt_after=2))  # 2 batches of 2 pages done, then stop
    assert not os.path.exists(out)
    assert sorted(os.listdir(out + ".parts")) == ["part-000000.colk", "part-000001.colk"]

    enc = StandInEncoder()
    report = _index(pdfs, out, enc)
    assert (report.added, report.skipped, report.num_pages) == (1, 4, 5) and enc.encoded == 1
    resumed = MultiVectorIndex.load(out)
    assert resumed.ids == whole.ids
    assert torch.equal(resumed.floats, whole.floats) and torch.equal(resumed.bits, whole.bits)
    assert not os.path.exists(out + ".parts")


def test_rerun_and_new_files_only_encode_new_pages(tmp_path, pdfs):
    out = str(tmp_path / "pages.colk")
    _index(pdfs[:1], out, StandInEncoder())
    enc = StandInEncoder()
    report = _index(pdfs, out, enc)
    assert (report.added, report.skipped, report.num_pages, enc.encoded) == (2, 3, 5, 2)
    enc = StandInEncoder()
    assert _index(pdfs, out, enc).added == 0 and enc.encoded == 0
    assert MultiVectorIndex.load(out).num_docs == 5


def test_other_settings_are_refused(tmp_path, pdfs):
    out = str(tmp_path / "pages.colk")
    _index(pdfs[:1], out, StandInEncoder())
    with pytest.raises(ValueError, match="dpi: 36 there, 72 now"):
        _index(pdfs, out, StandInEncoder(), dpi=72)
    with pytest.raises(ValueError, match="binary: False there, True now"):
        _index(pdfs, out, StandInEncoder(), binary=True)
    foreign = tmp_path / "plain.colk"
    MultiVectorIndex.build([torch.randn(3, 16)]).save(foreign)
    with pytest.raises(IndexFormatError, match="not a PDF page index"):
        _index(pdfs, str(foreign), StandInEncoder())
    with pytest.raises(ValueError, match="not a PDF page index"):
        search_pages(MultiVectorIndex.load(foreign), StandInEncoder(), "q")


def test_corrupt_part_is_named(tmp_path, pdfs):
    out = str(tmp_path / "pages.colk")
    with pytest.raises(KeyboardInterrupt):
        _index(pdfs, out, StandInEncoder(interrupt_after=1))
    part = os.path.join(out + ".parts", "part-000000.colk")
    with open(part, "r+b") as f:
        f.truncate(100)
    with pytest.raises(IndexFormatError, match="part-000000.colk.*delete"):
        _index(pdfs, out, StandInEncoder())


def test_bad_files_and_pages_are_reported_and_the_rest_indexed(tmp_path, pdfs):
    bad = tmp_path / "docs" / "corrupt.pdf"
    bad.write_bytes(b"%PDF-1.7 this is not really a pdf")
    # make encoding of one particular page fail: find its pixel sum with a first run
    probe = StandInEncoder()
    from colkern.documents.pdf import render_page_image
    im = render_page_image(pdfs[1], 1, dpi=DPI)
    a = np.asarray(im.convert("RGB").resize((64, 64)), dtype=np.float32) / 255.0
    enc = StandInEncoder(fail_on=int(torch.from_numpy(a).sum()))
    out = str(tmp_path / "pages.colk")
    report = _index([str(bad)] + pdfs, out, enc)
    assert report.num_pages == report.added == 4
    failed = {(os.path.basename(f), p) for f, p, _ in report.failures}
    assert failed == {("corrupt.pdf", None), ("b.pdf", 1)}
    assert all(msg for _, _, msg in report.failures)
    assert page_id(pdfs[1], 1) not in MultiVectorIndex.load(out).ids
    del probe


def test_binary_index_searches_with_bits(tmp_path, pdfs):
    out = str(tmp_path / "pages.colk")
    _index(pdfs, out, StandInEncoder(), binary=True)
    index = MultiVectorIndex.load(out)
    assert index.floats is None and index.attrs["binary"] is True
    hits = search_pages(index, StandInEncoder(), "q", k=5, oversample=10)
    assert sorted(h.position for h in hits) == list(range(5))
    emb = page_embeddings(index, 0)
    assert set(emb.unique().tolist()) <= {-1.0, 1.0}


def test_bad_arguments(tmp_path, pdfs):
    with pytest.raises(ValueError, match="tiles must be 1 or 4"):
        _index(pdfs, str(tmp_path / "x.colk"), StandInEncoder(), tiles=2)
    with pytest.raises(ValueError, match="batch_pages"):
        _index(pdfs, str(tmp_path / "x.colk"), StandInEncoder(), batch_pages=0)
    with pytest.raises(FileNotFoundError, match="nope"):
        _index([str(tmp_path / "nope")], str(tmp_path / "x.colk"), StandInEncoder())
