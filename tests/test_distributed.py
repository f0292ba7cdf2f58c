"""colkern.distributed: the Ray Data indexing pipeline (PDFs and images -> sharded Index,
failures, interruption and resume) and ShardedSearcher (results identical to Index.search,
actor restart and death, bad arguments), on a local 2-CPU Ray with the tiny ColPali model.

Every wait is bounded: the pipeline's stall_timeout_s, the searcher's timeout_s, and an alarm
per test, so a hang fails instead of blocking CI."""
import json
import os
import signal
import time

import pytest
import torch
from conftest import write_text_pdf

ray = pytest.importorskip("ray")
pymupdf = pytest.importorskip("pymupdf")

from colkern.colpali._torchvision_compat import apply_torchvision_shim  # noqa: E402

apply_torchvision_shim()
pytest.importorskip("colpali_engine")

from PIL import Image  # noqa: E402

import colkern  # noqa: E402
from colkern.cli import main  # noqa: E402
from colkern.colpali.indexing import page_id  # noqa: E402
from colkern.distributed import ShardedSearcher, collect_inputs, index_pdfs_ray  # noqa: E402
from colkern.distributed import pipeline as pipeline_mod  # noqa: E402
from colkern.distributed._ray import iterate_with_stall_timeout  # noqa: E402
from colkern.retrieval.manifest import read_manifest  # noqa: E402
from colkern.testing import build_tiny_colpali  # noqa: E402

DPI = 36
STALL = 120  # seconds without a batch before the pipeline raises


@pytest.fixture(autouse=True)
def _hang_guard():
    def boom(*_):
        raise TimeoutError("test_distributed: the test ran over 240 s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def local_ray():
    torch.set_num_threads(1)  # tiny forwards on a busy 2-core machine
    ray.init(num_cpus=2, object_store_memory=256 * 2**20, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_colpali(tmp_path_factory.mktemp("model") / "tiny-colpali"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "sub").mkdir()
    write_text_pdf(d / "report.pdf", ["Total revenue 2023", "Quarterly results by region", "Appendix"])
    write_text_pdf(d / "sub" / "invoice.pdf", ["Invoice number 42", "Amount due"])
    Image.new("RGB", (120, 170), (200, 40, 40)).save(d / "scan.png")
    Image.new("RGB", (150, 100), (40, 160, 40)).save(d / "sub" / "photo.jpg")
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\nnot a real pdf at all")
    (d / "bad.png").write_bytes(b"garbage, not a png")
    secret = pymupdf.open()
    secret.new_page().insert_text((50, 50), "secret")
    secret.save(d / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    secret.close()
    (d / "notes.txt").write_text("not an input")
    return d


def _expected_ids(d):
    pages = [("report.pdf", 3), ("scan.png", 1), ("sub/invoice.pdf", 2), ("sub/photo.jpg", 1)]
    return {page_id(str(d / f), p) for f, n in pages for p in range(n)}


@pytest.fixture(scope="module")
def encoder(model_dir):
    from colkern.colpali.encoder import ColPaliEncoder

    return ColPaliEncoder.load(model_dir, device="cpu")


@pytest.fixture(scope="module")
def indexed(local_ray, model_dir, encoder, corpus, tmp_path_factory):
    """A run killed after its first commit (the encoder object shipped to the actor), then the
    same run again with the model directory each actor loads (the resume); both predict each
    page's OCR quality on the same pass."""
    out = str(tmp_path_factory.mktemp("out") / "pages.idx")
    opts = dict(dpi=DPI, batch_pages=2, pages_per_shard=2, stall_timeout_s=STALL, quality=True)
    real_add = colkern.Index.add
    calls = []

    def crashing_add(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash after the first commit")
        return real_add(self, *a, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline_mod.Index, "add", crashing_add)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="simulated crash"):
        index_pdfs_ray([corpus], out, encoder, model=model_dir, **opts)
    mp.undo()
    after_crash = colkern.Index.open(out, verify=True).ids
    report = index_pdfs_ray([corpus], out, model_dir, **opts)
    return {"dir": out, "after_crash": after_crash, "report": report, "seconds": time.perf_counter() - t0}


def test_quality_is_predicted_on_the_same_pass(indexed):
    """quality=True: every indexed page carries the predicted CER / WER and verdict of the shipped
    Tesseract model, the same values colkern.quality.predict gives for that page image."""
    index = colkern.Index.open(indexed["dir"])
    metas = [index.metadata_of(i) for i in index.ids]
    assert metas and all({"cer", "wer", "verdict"} <= set(m) for m in metas)
    for m in metas:
        assert m["verdict"] in ("good", "fair", "poor", "empty")
        assert m["cer"] is None or 0.0 <= m["cer"] <= 1.0


def test_collect_inputs_walks_directories_for_pdfs_and_images(corpus):
    files = collect_inputs([corpus, corpus / "scan.png"])
    names = sorted(os.path.relpath(f, corpus) for f in files)
    assert names == ["bad.png", "broken.pdf", "locked.pdf", "report.pdf", "scan.png", "sub/invoice.pdf",
                     "sub/photo.jpg"]
    with pytest.raises(FileNotFoundError, match="nope"):
        collect_inputs([corpus / "nope"])


def test_interrupted_run_keeps_its_commit_and_the_rerun_resumes(indexed, corpus):
    assert len(indexed["after_crash"]) == 2  # the first shard was committed before the crash
    r = indexed["report"]
    assert r.skipped == 2 and r.added == 5 and r.num_pages == 7
    failed = {os.path.basename(f): (page, msg) for f, page, msg in r.failures}
    assert set(failed) == {"broken.pdf", "locked.pdf", "bad.png"}
    assert all(page is None for page, _ in failed.values())
    assert "encrypted" in failed["locked.pdf"][1] and "unreadable image" in failed["bad.png"][1]
    index = colkern.Index.open(indexed["dir"], verify=True)  # every shard matches the manifest
    assert set(index.ids) == _expected_ids(corpus)
    assert index.ids[:2] == indexed["after_crash"]
    assert len(index.shards) == 4  # 2 pages per shard: 1 shard before the crash, 3 after
    meta = index.metadata_of(page_id(str(corpus / "report.pdf"), 1))
    assert {k: meta[k] for k in ("file", "page")} == {"file": str(corpus / "report.pdf"), "page": 1}
    attrs = read_manifest(indexed["dir"]).attrs
    assert attrs["dpi"] == DPI and attrs["tiles"] == 1 and attrs["grid"] == [4, 4] and attrs["pool_factor"] is None


def test_embeddings_match_the_single_process_encoder(indexed, corpus, encoder):
    from colkern.colpali.indexing import encode_rendered_pages
    from colkern.documents.pdf import render_pdf

    enc = encoder
    index = colkern.Index.open(indexed["dir"])
    for p in (0, 2):  # encoded by the shipped encoder object (first commit) / the model directory
        page = list(render_pdf(corpus / "report.pdf", dpi=DPI, pages=[p]))[0]
        want = encode_rendered_pages([page], enc)[0]
        pos = index.index_of(page_id(str(corpus / "report.pdf"), p))
        s = int(torch.searchsorted(index.bases, torch.tensor(pos), right=True)) - 1
        sh = index.shards[s]
        lo, hi = int(sh.offsets[pos - int(index.bases[s])]), int(sh.offsets[pos - int(index.bases[s]) + 1])
        torch.testing.assert_close(sh.floats[lo:hi].float(), want, atol=2e-3, rtol=2e-3)  # stored as fp16
    Q = enc.encode_queries(["revenue"])[0]
    with ShardedSearcher(indexed["dir"], actors=2, timeout_s=60, actor_cpus=0.25) as ss:
        for kw in ({}, {"filter": {"file": str(corpus / "report.pdf")}}, {"nprobe": None, "k": 3}):
            a, b = index.search(Q, **kw), ss.search(Q, **kw)
            assert a.ids == b.ids and torch.equal(a.scores, b.scores)


def test_cli_index_ray_routes_its_options(monkeypatch, tmp_path, model_dir, capsys):
    from colkern.colpali.indexing import IndexingReport

    seen = {}

    def fake(inputs, index_dir, encoder, **kw):
        seen.update(inputs=inputs, index_dir=index_dir, encoder=encoder, **kw)
        return IndexingReport(index_path=index_dir, num_pages=3, added=1, skipped=2, failures=[("x.pdf", None, "bad")])

    monkeypatch.setattr(pipeline_mod, "index_pdfs_ray", fake)
    rc = main(["index", "in/", "-o", str(tmp_path / "o.idx"), "--model", model_dir, "--ray", "--address", "auto",
               "--pool-size", "3", "--pages-per-shard", "64", "--pool-factor", "2", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 1 and "3 pages (1 added, 2 already indexed, 1 failed)" in out and "failed: x.pdf: bad" in err
    assert seen["address"] == "auto" and seen["pool_size"] == 3 and seen["pages_per_shard"] == 64
    assert seen["pool_factor"] == 2 and seen["encoder"] == model_dir and seen["inputs"] == ["in/"]
    assert main(["index", "in/", "-o", "x", "--ray"]) == 2  # --model is required: one clear line
    assert "--model" in capsys.readouterr().err


def test_cli_search_ray(indexed, corpus, capsys):
    rc = main(["search", indexed["dir"], "quarterly results", "-k", "3", "--ray", "--actors", "1", "--json"])
    out, _ = capsys.readouterr()
    hits = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [h["rank"] for h in hits] == [1, 2, 3]
    assert all(page_id(h["file"], h["page"] - 1) in _expected_ids(corpus) for h in hits)


def test_cli_search_sharded_index_without_ray_equals_ray(indexed, capsys):
    """`colkern search DIR` on a sharded index searches it in this process: the same hits as --ray."""
    args = ["search", indexed["dir"], "quarterly results", "-k", "3", "--json"]
    assert main(args) == 0
    local = capsys.readouterr().out
    assert main(args + ["--ray", "--actors", "1"]) == 0
    assert capsys.readouterr().out == local and len(local.splitlines()) == 3


def test_settings_mismatch_and_bad_arguments(indexed, model_dir, corpus, tmp_path, local_ray):
    with pytest.raises(ValueError, match="other settings"):
        index_pdfs_ray([corpus], indexed["dir"], model_dir, dpi=DPI + 1)
    with pytest.raises(ConnectionError, match="127.0.0.1:1"):
        index_pdfs_ray([corpus], str(tmp_path / "x.idx"), model_dir, address="127.0.0.1:1", dpi=DPI)
    with pytest.raises(ValueError, match="address"):
        index_pdfs_ray([corpus], str(tmp_path / "x.idx"), model_dir, address="nowhere", dpi=DPI)
    with pytest.raises(FileNotFoundError, match="missing.pdf"):
        index_pdfs_ray([corpus / "missing.pdf"], str(tmp_path / "x.idx"), model_dir)
    with pytest.raises(FileNotFoundError):
        index_pdfs_ray([corpus], str(tmp_path / "x.idx"), str(tmp_path / "no-model"))
    for bad in (dict(batch_pages=0), dict(pool_size=0), dict(pages_per_shard=-1), dict(tiles=3), dict(dpi=0),
                dict(stall_timeout_s=0)):
        with pytest.raises(ValueError):
            index_pdfs_ray([corpus], str(tmp_path / "x.idx"), model_dir, **bad)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a colkern.Index"):
        index_pdfs_ray([corpus], str(tmp_path / "full"), model_dir)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ShardedSearcher(str(tmp_path / "no-index"), actors=2)
    with pytest.raises(ValueError, match="actors"):
        ShardedSearcher(indexed["dir"], actors=0)


def test_stall_timeout_raises_instead_of_hanging():
    def stuck():
        yield 1
        time.sleep(30)
        yield 2

    got = []
    with pytest.raises(TimeoutError, match="no progress for 0.5 s"):
        for x in iterate_with_stall_timeout(stuck(), 0.5, "test"):
            got.append(x)
    assert got == [1]
    assert list(iterate_with_stall_timeout(iter(range(5)), 5, "test")) == [0, 1, 2, 3, 4]


# -- ShardedSearcher on a synthetic index -----------------------------------------------------


def _unit(*shape, g):
    return torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """5 shards of 40 documents of 3-11 tokens, a small codebook (many approximate-score ties),
    metadata, and deletions in three shards."""
    g = torch.Generator().manual_seed(0)
    path = str(tmp_path_factory.mktemp("synthetic") / "docs.idx")
    index = colkern.Index.create(path, dim=16, centroids=8)
    for s in range(5):
        docs = [_unit(int(torch.randint(3, 12, (1,), generator=g)), 16, g=g) for _ in range(40)]
        index.add(docs, ids=[f"s{s}d{i}" for i in range(40)],
                  metadata=[{"lang": "en" if i % 3 else "fr", "shard": s} for i in range(40)])
    index.delete(["s0d1", "s2d5", "s4d39"])
    return path


@pytest.fixture(scope="module")
def searcher(local_ray, synthetic):
    with ShardedSearcher(synthetic, actors=3, timeout_s=60, actor_cpus=0.25) as s:
        yield s


SETTINGS = [
    {}, {"nprobe": None}, {"candidates": 20, "rescore": 10}, {"candidates": 30, "rescore": 5, "nprobe": 2},
    {"filter": {"lang": "fr"}, "candidates": 20, "rescore": 8},
    {"filter": {"shard": [1, 3]}, "nprobe": 1, "candidates": 10, "rescore": 10},
    {"filter": {"lang": "de"}}, {"k": 50, "candidates": 25, "rescore": 30},
    {"candidates": 20, "rescore": 10, "return_candidates": True}, {"nprobe": None, "return_candidates": True},
    {"k": 500, "candidates": 12, "rescore": 12},
]


def _assert_same(a, b):
    assert a.ids == b.ids
    assert torch.equal(a.indices, b.indices) and torch.equal(a.scores, b.scores)
    assert (a.score_kind, a.stage1, a.rescore) == (b.score_kind, b.stage1, b.rescore)
    if a.candidate_indices is not None:
        assert torch.equal(a.candidate_indices, b.candidate_indices)
        assert torch.equal(a.candidate_scores, b.candidate_scores)


@pytest.mark.parametrize("kw", SETTINGS, ids=[json.dumps(s, sort_keys=True) for s in SETTINGS])
def test_sharded_search_is_identical_to_index_search(searcher, synthetic, kw):
    index = colkern.Index.open(synthetic)
    g = torch.Generator().manual_seed(1)
    Q = _unit(6, 5, 16, g=g)
    q_mask = torch.ones(6, 5, dtype=torch.bool)
    q_mask[2, 3:] = False
    kw = {"k": 10, **kw}
    _assert_same(index.search(Q, **kw), searcher.search(Q, **kw))
    _assert_same(index.search(Q, q_mask=q_mask, **kw), searcher.search(Q, q_mask=q_mask, **kw))
    _assert_same(index.search(Q[0], **kw), searcher.search(Q[0], **kw))


def test_sharded_search_errors_match_index_search(searcher, synthetic):
    index = colkern.Index.open(synthetic)
    Q = torch.randn(4, 16)
    for bad, err in [({"filter": {"nokey": 1}}, ValueError), ({"k": 0}, ValueError), ({"filter": "x"}, TypeError)]:
        with pytest.raises(err) as single:
            index.search(Q, **bad)
        with pytest.raises(err) as sharded:
            searcher.search(Q, **bad)
        assert str(sharded.value).replace("ShardedSearcher", "Index") == str(single.value)
    with pytest.raises(ValueError, match="dim 8"):
        searcher.search(torch.randn(4, 8))


def test_bits_only_index_more_actors_than_shards_and_a_dead_actor(local_ray, tmp_path):
    g = torch.Generator().manual_seed(2)
    path = str(tmp_path / "bits.idx")
    index = colkern.Index.create(path, dim=16, keep_float=False, centroids=4)
    for s in range(3):
        index.add([_unit(5, 16, g=g) for _ in range(30)], ids=[f"{s}-{i}" for i in range(30)])
    Q = _unit(3, 4, 16, g=g)
    with ShardedSearcher(path, actors=5, max_restarts=0, timeout_s=60, actor_cpus=0.25) as ss:
        assert len(ss.actors) == 3  # one actor per shard at most
        for kw in ({}, {"candidates": 10, "k": 5}, {"nprobe": None}):
            _assert_same(index.search(Q, **kw), ss.search(Q, **kw))
        ray.kill(ss.actors[1])  # max_restarts=0: not restarted
        with pytest.raises(RuntimeError, match=r"actor 1 \(shards shard-\d+\.colk\).*died"):
            ss.search(Q)


def test_import_colkern_does_not_import_ray():
    import subprocess
    import sys

    code = ("import sys, colkern, colkern.distributed, colkern.cli; colkern.cli.main(['info']); "
            "assert 'ray' not in sys.modules, 'ray imported'")  # main() builds every command's parser
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)
