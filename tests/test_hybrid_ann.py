"""The dense routes' HNSW graphs (colkern.hybrid.ann): recall against exact search, exact scores,
the graph in the index directory (save / open, indexes without one, damaged files), options."""
import json
import os
import sys
import zlib

import numpy as np
import pytest
import torch

pytest.importorskip("usearch")

from colkern.hybrid import HybridIndex, HybridIndexError  # noqa: E402
from colkern.hybrid.ann import (  # noqa: E402
    ANN_MIN_ITEMS,
    AnnIndex,
    build_anns,
    check_ann_mode,
    wants_ann,
)
from colkern.hybrid.build import dense_index  # noqa: E402
from colkern.hybrid.store import FORMAT, VERSION, save_dir  # noqa: E402
from colkern.retrieval.search import search as mv_search  # noqa: E402

N, D, NQ, K = 3000, 64, 50, 10


def _unit(rng, n, d=D):
    x = torch.from_numpy(rng.standard_normal((n, d), dtype=np.float32))
    return torch.nn.functional.normalize(x, dim=1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = _unit(rng, N)
    # queries near items (as real queries are near their answers), plus a few unrelated ones
    near = torch.nn.functional.normalize(x[rng.choice(N, NQ - 10, replace=False)] + 0.7 * _unit(rng, NQ - 10), dim=1)
    return x, torch.cat([near, _unit(rng, 10)])


@pytest.fixture(scope="module")
def sub(data):
    return dense_index([data[0]], [f"text:{i}" for i in range(N)], {"kind": "colkern.hybrid.text"})


@pytest.fixture(scope="module")
def ann(data):
    return AnnIndex.build(data[0])


def _exact(sub, Q, k=K):
    r = mv_search(Q[:, None, :].contiguous(), sub, k, stage1="float")
    return [list(zip(i, s)) for i, s in zip(r.indices.tolist(), r.scores.tolist())]


def _recall(found, exact):
    return np.mean([len({p for p, _ in f} & {p for p, _ in e}) / len(e) for f, e in zip(found, exact)])


class _Queries:
    """A stand-in text encoder: query "q<i>" is the i-th row of Q."""

    dim = D

    def __init__(self, Q):
        self.Q = Q

    def encode(self, texts):
        return self.Q[[int(t[1:]) for t in texts]]


def _save(path, sub, anns=None):
    manifest = {"format": FORMAT, "version": VERSION, "files": ["/a.pdf"], "counts": {"text": sub.num_docs}}
    rows = [{"file": 0, "page": 0, "bbox": [0, 0, 1, 1], "text": f"chunk {i}"} for i in range(sub.num_docs)]
    return save_dir(path, manifest, [], {"text": sub}, {"text": rows}, anns=anns)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, sub, ann):
    return _save(tmp_path_factory.mktemp("ann") / "idx", sub, {"text": ann})


# -- the graph -----------------------------------------------------------------------------------


def test_recall_and_scores_against_exact_search(data, sub, ann):
    x, Q = data
    exact = _exact(sub, Q)
    found = ann.search(Q, sub.floats, K)
    assert _recall(found, exact) >= 0.95
    ref = (Q.double() @ x.double().T).float()
    for b, (f, e) in enumerate(zip(found, exact)):
        assert len(f) == K and [s for _, s in f] == sorted((s for _, s in f), reverse=True)
        exact_score = dict(e)
        for pos, score in f:
            assert score == pytest.approx(float(ref[b, pos]), abs=1e-5)
            if pos in exact_score:  # the same kernel on the same vectors: the exact route's very score
                assert score == exact_score[pos]
    # the graph's own scores: usearch's "ip" distance is 1 - dot
    for b, (keys, scores) in enumerate(ann.candidates(Q, K)):
        assert len(keys) == K and keys.dtype == np.int64
        np.testing.assert_allclose(scores, ref[b, keys].numpy(), atol=1e-5)


def test_ties_go_to_the_lower_position_as_in_exact_search():
    x = torch.nn.functional.normalize(torch.ones(40, 8), dim=1)  # 40 identical vectors
    sub = dense_index([x], [f"t{i}" for i in range(40)], {})
    ann = AnnIndex.build(x)
    # which of the tied items the graph finds is its own affair; among those found, the lower position comes first
    found = [p for p, _ in ann.search(x[:1], sub.floats, 5)[0]]
    assert len(found) == 5 and found == sorted(found)
    assert ann.search(x[:1], sub.floats, 40) == _exact(sub, x[:1], 40)


def test_expansion_search_trades_recall(data, sub, ann):
    x, Q = data
    exact = _exact(sub, Q)
    default = ann.expansion_search
    try:
        ann.expansion_search = 16
        narrow = _recall(ann.search(Q, sub.floats, K), exact)
        ann.expansion_search = 512
        wide = _recall(ann.search(Q, sub.floats, K), exact)
        assert narrow < wide and wide >= 0.99
    finally:
        ann.expansion_search = default
    with pytest.raises(ValueError, match="expansion_search must be a positive int"):
        ann.expansion_search = 0


# -- in the index directory ------------------------------------------------------------------------


def test_save_and_open_round_trip(saved, data, sub):
    x, Q = data
    assert sorted(os.listdir(saved)) == ["hybrid.json", "pages.json", "text.colk", "text.json", "text.usearch"]
    with open(os.path.join(saved, "hybrid.json")) as f:
        record = json.load(f)["ann"]["text"]
    assert record["file"] == "text.usearch" and record["count"] == N and record["dim"] == D
    assert record["metric"] == "ip" and record["connectivity"] == 16 and len(record["sha256"]) == 64
    queries = [f"q{i}" for i in range(NQ)]
    exact = _exact(sub, Q, 20)
    for kw in ({}, {"mmap": False}):
        index = HybridIndex.open(saved, text_model=_Queries(Q), **kw)
        assert set(index.anns) == {"text"} and index.anns["text"].count == N
        found = index.route_rankings(queries, depth=20)["text"]
        assert _recall(found, exact) >= 0.95
        assert index.route_rankings(queries, depth=20, exact=True)["text"] == exact
        hit = index.search("q3", k=1)[0]
        assert hit.kind == "text" and hit.score == pytest.approx(float(Q[3] @ x[hit.position]), abs=1e-5)
    wide = HybridIndex.open(saved, text_model=_Queries(Q), expansion_search=300)
    assert wide.anns["text"].expansion_search == 300
    assert HybridIndex.open(saved, exact=True).anns == {}


def test_an_index_without_a_graph_opens_and_searches_exactly(tmp_path, data, sub):
    x, Q = data
    path = _save(tmp_path / "old", sub)  # what a build before graphs (or below the threshold) wrote
    assert "text.usearch" not in os.listdir(path)
    with open(os.path.join(path, "hybrid.json")) as f:
        assert "ann" not in json.load(f)
    index = HybridIndex.open(path, text_model=_Queries(Q))
    assert index.anns == {}
    assert index.route_rankings([f"q{i}" for i in range(NQ)], depth=K)["text"] == _exact(sub, Q)


def test_a_missing_or_damaged_graph_is_refused(tmp_path, sub, ann):
    path = _save(tmp_path / "idx", sub, {"text": ann})
    graph = os.path.join(path, "text.usearch")
    with open(graph, "r+b") as f:
        f.seek(os.path.getsize(graph) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(HybridIndexError, match="text graph: text.usearch is damaged.*exact=True"):
        HybridIndex.open(path)
    assert HybridIndex.open(path, exact=True).anns == {}  # the exact route does not read the graph
    with open(graph, "wb") as f:
        f.write(b"not a usearch file")
    with pytest.raises(HybridIndexError, match="damaged"):
        HybridIndex.open(path)
    os.remove(graph)
    with pytest.raises(HybridIndexError, match="text.usearch is missing but the manifest records it"):
        HybridIndex.open(path)
    manifest_path = os.path.join(path, "hybrid.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest["ann"] = {"page": manifest["ann"]["text"]}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    with pytest.raises(HybridIndexError, match="not a dense route"):
        HybridIndex.open(path)


def test_a_graph_that_does_not_match_its_route_is_not_saved(tmp_path, sub):
    small = AnnIndex.build(sub.floats[:100])
    with pytest.raises(ValueError, match=r"anns\['text'\] must index the 3000 items"):
        _save(tmp_path / "bad", sub, {"text": small})
    assert not (tmp_path / "bad").exists()  # nothing left behind


# -- options -------------------------------------------------------------------------------------


def test_ann_mode_and_threshold(sub):
    assert ANN_MIN_ITEMS == 20_000
    assert not wants_ann("auto", ANN_MIN_ITEMS - 1) and wants_ann("auto", ANN_MIN_ITEMS)
    assert wants_ann("always", 1) and not wants_ann("always", 0) and not wants_ann("never", 10 ** 9)
    assert wants_ann("auto", 500, min_items=500)
    image = dense_index([sub.floats[:100]], [f"image:{i}" for i in range(100)], {})
    subs = {"page": None, "text": sub, "image": image}
    assert build_anns(subs, "auto") == {}
    assert set(build_anns(subs, "auto", min_items=1000)) == {"text"}
    assert set(build_anns(subs, "always")) == {"image", "text"}
    assert build_anns(subs, "never", min_items=1) == {}


def test_bad_ann_arguments_give_clear_errors(tmp_path):
    for bad in ("sometimes", True, None, 1):
        with pytest.raises(ValueError, match="ann must be one of"):
            check_ann_mode(bad, ANN_MIN_ITEMS)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="ann_min_items must be a positive int"):
            check_ann_mode("auto", bad)
    # checked before any file or model is read
    with pytest.raises(ValueError, match="ann must be one of"):
        HybridIndex.build([tmp_path / "missing.pdf"], tmp_path / "out", text_model=object(), ann="fast")
    with pytest.raises(ValueError, match="ann_min_items"):
        HybridIndex.build([tmp_path / "missing.pdf"], tmp_path / "out", text_model=object(), ann_min_items=0)
    with pytest.raises(ValueError, match="vectors must be a float tensor"):
        AnnIndex.build(torch.zeros(0, 8))
    with pytest.raises(ValueError, match="connectivity must be a positive int"):
        AnnIndex.build(torch.ones(4, 8), connectivity=0)
    with pytest.raises(ValueError, match=r"Q must be a float tensor \[B, 8\]"):
        AnnIndex.build(torch.ones(4, 8)).candidates(torch.ones(2, 9), 3)


def test_without_usearch_auto_keeps_exact_search_and_graphs_are_named(monkeypatch, saved, sub):
    monkeypatch.setitem(sys.modules, "usearch.index", None)  # import fails as if not installed
    with pytest.warns(UserWarning, match="text route.* keep exact search"):
        assert build_anns({"text": sub}, "auto", min_items=10) == {}
    with pytest.raises(ImportError, match="pip install 'usearch"):
        build_anns({"text": sub}, "always")
    with pytest.raises(ImportError, match="text route has an HNSW graph.*exact=True"):
        HybridIndex.open(saved)
    assert HybridIndex.open(saved, exact=True).anns == {}


# -- end to end ------------------------------------------------------------------------------------


class _BagOfWords:
    """A stand-in text model for a build without transformers: hashed word counts, L2-normalised."""

    dim = D

    def encode(self, texts):
        out = torch.zeros(len(texts), D)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.strip(".,?!:;()").encode()) % D] += 1
        return torch.nn.functional.normalize(out, dim=1)


def test_build_with_a_graph_end_to_end(tmp_path):
    pytest.importorskip("pymupdf")
    from colkern.hybrid.sample import sample_manual_path

    index = HybridIndex.build([sample_manual_path()], tmp_path / "demo", text_model=_BagOfWords(), ann="always")
    assert set(index.anns) == {"text"} and "ann" in index.report.seconds
    assert os.path.isfile(os.path.join(index.path, "text.usearch"))
    for question in ("How do I replace a blown fuse?", "maximum output current", "output voltage drops under load"):
        hits = index.search(question, k=5)
        assert hits[0].kind == "text"
        # a graph over a handful of chunks finds them all: the same list as exact search
        assert [h.to_dict() for h in hits] == [h.to_dict() for h in index.search(question, k=5, exact=True)]
    assert "fuse" in index.search("replace the blown fuse", k=1)[0].text.lower()
    never = HybridIndex.build([sample_manual_path()], tmp_path / "never", text_model=_BagOfWords(), ann="never")
    assert never.anns == {} and not os.path.exists(os.path.join(never.path, "text.usearch"))
