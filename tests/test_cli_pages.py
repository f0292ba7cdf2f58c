"""End to end with a tiny random-weight ColPali: PDFs -> `colkern index` -> `colkern search`
(with a heatmap) -> evaluation of float vs binary vs two-stage search, through the CLI."""
import json
import os

import pytest
import torch
from conftest import write_text_pdf

from colkern.colpali._torchvision_compat import apply_torchvision_shim  # noqa: E402

pymupdf = pytest.importorskip("pymupdf")
apply_torchvision_shim()  # colpali-engine beside a CPU-only torch: see colkern.colpali._torchvision_compat
pytest.importorskip("colpali_engine")

from PIL import Image  # noqa: E402

from colkern import MultiVectorIndex  # noqa: E402
from colkern.cli import main  # noqa: E402
from colkern.colpali.indexing import parse_page_id  # noqa: E402
from colkern.retrieval.metrics import SEARCH_MODES, compare_search_modes  # noqa: E402
from colkern.testing import build_tiny_colpali  # noqa: E402

DPI = 36


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.set_num_threads(1)  # tiny forwards: one thread, no contention
    return str(build_tiny_colpali(tmp_path_factory.mktemp("model") / "tiny-colpali"))


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "pdfs"
    d.mkdir()
    write_text_pdf(d / "report.pdf", ["Total revenue 2023", "Quarterly results by region", "Appendix"])
    write_text_pdf(d / "invoice.pdf", ["Invoice number 42", "Amount due"])
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\nnot a real pdf at all")
    secret = pymupdf.open()
    secret.new_page().insert_text((50, 50), "secret")
    secret.save(d / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    secret.close()
    return d


def test_index_search_heatmap_and_evaluate(tmp_path, corpus, model_dir, capsys):
    index_path = str(tmp_path / "pages.colk")
    rc = main(["index", str(corpus), "-o", index_path, "--model", model_dir, "--dpi", str(DPI),
               "--tiles", "4", "--batch-pages", "2", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 1  # two files failed; the other five pages are indexed
    assert "5 pages (5 added, 0 already indexed, 2 failed)" in out
    assert "broken.pdf" in err and "locked.pdf" in err
    index = MultiVectorIndex.load(index_path)
    assert index.num_docs == 5 and index.attrs["tiles"] == 4 and index.attrs["grid"] == [4, 4]
    assert index.lengths.tolist() == [4 * 16] * 5  # 4 tiles x 16 patches of the tiny model
    assert sorted({os.path.basename(parse_page_id(i)[0]) for i in index.ids}) == ["invoice.pdf", "report.pdf"]

    # a rerun resumes: nothing new to encode
    assert main(["index", str(corpus), "-o", index_path, "--model", model_dir, "--dpi", str(DPI),
                 "--tiles", "4", "--quiet"]) == 1
    assert "(0 added, 5 already indexed, 2 failed)" in capsys.readouterr().out

    png, tokens_png = str(tmp_path / "hit.png"), str(tmp_path / "tokens.png")
    assert main(["search", index_path, "total revenue", "-k", "3", "--heatmap", png, "--token-heatmaps",
                 tokens_png, "--json"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert all(h["file"].endswith(".pdf") and 1 <= h["page"] <= 3 for h in hits)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:  # the page of the best hit, at the index's DPI
        assert im.size == (round(300 * DPI / 72), round(420 * DPI / 72))
    with Image.open(tokens_png) as im:  # one panel per query token
        im.verify()

    # evaluation: the same queries through float, bits, hamming and two-stage search
    from colkern.colpali import ColPaliEncoder

    encoder = ColPaliEncoder.load(model_dir)
    texts = {"q1": "total revenue", "q2": "invoice number", "q3": "results by region"}
    queries = {qid: q for qid, q in zip(texts, encoder.encode_queries(list(texts.values())))}
    exact = {qid: index.ids[int(colkern_top1(Q, index))] for qid, Q in queries.items()}
    qrels = {qid: {doc: 1} for qid, doc in exact.items()}
    rows = compare_search_modes(queries, index, qrels, ks=(1, 5), oversample=10)
    assert [r["run"] for r in rows] == list(SEARCH_MODES)
    assert rows[0]["recall@1"] == 1.0  # exact float search finds the page it defines as relevant
    assert all(0.0 <= r["ndcg@5"] <= 1.0 for r in rows)


def colkern_top1(Q, index):
    import colkern

    return colkern.maxsim_topk(Q, index.packed_floats(), 1)[1][0]


def test_cli_errors_are_one_clear_line(tmp_path, corpus, model_dir, capsys):
    rc = main(["index", str(corpus), "-o", str(tmp_path / "x.colk"), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert rc == 2 and "no-model" in err and "does not exist" in err and "Traceback" not in err
    (tmp_path / "junk.colk").write_bytes(b"junk")
    rc = main(["search", str(tmp_path / "junk.colk"), "q", "--model", model_dir])
    assert rc == 2 and "not a colkern index file" in capsys.readouterr().err
