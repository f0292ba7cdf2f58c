"""colkern.retrieval.sharded.Index: add / delete / compact / filter semantics, the files on disk,
crash safety (including kill -9 of a writer), lazy mmap open, clear errors, and random operation
sequences against a dict model."""
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import colkern
from colkern.retrieval import manifest as manifest_mod
from colkern.retrieval.index import MultiVectorIndex
from colkern.retrieval.index_format import IndexFormatError
from colkern.retrieval.search import search as two_stage
from colkern.retrieval.sharded import Index

DIM = 16


def make_docs(n, seed, dim=DIM, lo=1, hi=12):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(int(torch.randint(lo, hi, (1,), generator=g)), dim, generator=g) for _ in range(n)]


def brute(Q, docs_by_id, k):
    """Exact top-k over a dict id -> vectors (fp16, as the index stores them), ties by insertion order."""
    ids = list(docs_by_id)
    if not ids:
        return [], torch.empty(0)
    s = colkern.maxsim(Q.half(), [docs_by_id[i].half() for i in ids])
    order = torch.sort(s, descending=True, stable=True).indices[:k]
    return [ids[i] for i in order.tolist()], s[order]


@pytest.fixture
def small(tmp_path):
    docs = make_docs(60, 0)
    index = Index.create(tmp_path / "idx", dim=DIM)
    index.add(docs[:40], ids=[f"d{i}" for i in range(40)], metadata=[{"lang": "en" if i % 2 else "de", "n": i}
                                                                      for i in range(40)])
    index.add(docs[40:], ids=[f"d{i}" for i in range(40, 60)], metadata=[{"lang": "fr", "n": i} for i in range(40, 60)])
    return index, docs


def shard_files(path):
    return sorted(f for f in os.listdir(path) if f.startswith("shard-"))


# -- add / open / search ----------------------------------------------------------------------


def test_add_writes_one_new_shard_and_never_rewrites_old_ones(tmp_path):
    index = Index.create(tmp_path / "idx", dim=DIM)
    index.add(make_docs(10, 1), ids=[f"a{i}" for i in range(10)])
    first = shard_files(index.path)
    before = {f: open(os.path.join(index.path, f), "rb").read() for f in first}
    index.add(make_docs(5, 2), ids=[f"b{i}" for i in range(5)])
    now = shard_files(index.path)
    assert len(now) == 2 and set(first) < set(now)
    assert all(open(os.path.join(index.path, f), "rb").read() == b for f, b in before.items())
    assert len(Index.open(index.path)) == 15


def test_search_matches_brute_force_and_positions_are_insertion_order(small):
    index, docs = small
    reopened = Index.open(index.path)
    assert len(reopened) == 60 and reopened.ids == [f"d{i}" for i in range(60)]
    Q = torch.randn(3, 5, DIM)
    for idx in (index, reopened):
        for nprobe in (None, 10_000):
            r = idx.search(Q, k=7, nprobe=nprobe, candidates=60, rescore=60)
            for b in range(3):
                want_ids, want_s = brute(Q[b], {f"d{i}": d for i, d in enumerate(docs)}, 7)
                assert r.ids[b] == want_ids
                assert r.indices[b].tolist() == [int(i[1:]) for i in want_ids]
                assert torch.allclose(r.scores[b], want_s, atol=1e-5)


def test_few_probed_documents_still_give_k_results(small):
    index, _ = small
    q = torch.randn(1, DIM)  # one token, one probe: its list holds few documents
    r = index.search(q, k=10, nprobe=1, candidates=1, rescore=1, return_candidates=True)
    assert len(r.ids) == 10 and len(set(r.ids)) == 10
    assert r.candidate_indices.numel() >= 10


def test_single_query_masks_and_batches_agree(small):
    index, _ = small
    Q = torch.randn(2, 6, DIM)
    mask = torch.tensor([[True] * 6, [True, True, False, True, False, False]])
    batch = index.search(Q, k=5, q_mask=mask)
    one = index.search(Q[1][mask[1]], k=5)
    assert batch.ids[1] == one.ids and torch.allclose(batch.scores[1], one.scores)
    assert isinstance(one.ids[0], str) and one.scores.shape == (5,)


def test_default_ids_and_metadata(tmp_path):
    index = Index.create(tmp_path / "idx", dim=DIM)
    index.add(make_docs(3, 0))
    index.delete(["1"])
    index.compact()
    index.add(make_docs(2, 1), metadata=[{"x": 1}, None])
    assert index.ids == ["0", "2", "3", "4"]  # default ids never repeat, even after a compaction
    assert index.metadata_of("3") == {"x": 1} and index.metadata_of("4") == {} and index.metadata_of("0") == {}


def test_create_with_a_training_sample_and_centroids(tmp_path):
    sample = torch.randn(500, DIM)
    index = Index.create(tmp_path / "idx", dim=DIM, centroids=64, train_sample=sample)
    assert index.codebook.num_centroids == 64
    index.add(make_docs(5, 0))
    assert Index.open(index.path).codebook.num_centroids == 64
    with pytest.raises(FileExistsError, match="already holds an index"):
        Index.create(tmp_path / "idx", dim=DIM)


# -- delete / filters ---------------------------------------------------------------------------


def test_delete_tombstones_everywhere_and_keeps_positions(small):
    index, docs = small
    Q = docs[3][:4]  # document d3's own vectors: it is the best match
    assert index.search(Q, k=1).ids == ["d3"]
    index.delete(["d3", "d45"])
    assert len(index) == 58 and "d3" not in index.ids
    for idx in (index, Index.open(index.path)):
        for kw in ({}, {"nprobe": None}, {"nprobe": 10_000, "candidates": 60, "rescore": 60},
                   {"filter": {"lang": "en"}}):
            r = idx.search(Q, k=60, **kw)
            assert "d3" not in r.ids and "d45" not in r.ids
        assert idx.index_of("d10") == 10  # positions do not move on delete
    with pytest.raises(KeyError, match="'d3'"):
        index.delete(["d3"])
    with pytest.raises(KeyError, match="'nope'"):
        index.delete(["d1", "nope"])
    assert "d1" in index.ids  # all or nothing
    with pytest.raises(KeyError, match="'d2'"):
        index.delete(["d2", "d2"])


def test_readding_a_deleted_id_replaces_it(small):
    index, docs = small
    with pytest.raises(ValueError, match="'d5' is already in the index"):
        index.add([docs[0]], ids=["d5"])
    index.delete(["d5"])
    index.add([docs[0]], ids=["d5"])
    assert index.index_of("d5") == 60 and len(index) == 60
    assert index.search(docs[0], k=2, nprobe=None).ids[:2] == ["d0", "d5"]


def test_filters(small):
    index, docs = small
    Q = torch.randn(4, DIM)
    r = index.search(Q, k=60, filter={"lang": "en"})
    assert sorted(r.ids) == sorted(f"d{i}" for i in range(1, 40, 2))
    r = index.search(Q, k=60, filter={"lang": ["en", "fr"], "n": [1, 3, 41, 59]})
    assert sorted(r.ids) == ["d1", "d3", "d41", "d59"]
    assert index.search(Q, k=5, filter={"lang": "xx"}).ids == []
    assert index.search(Q, k=5, filter={"n": True}).ids == []  # JSON: true is not 1
    with pytest.raises(ValueError, match="unknown filter key 'lnag'"):
        index.search(Q, k=5, filter={"lnag": "en"})
    # applied before scoring: a one-document filter finds it even with a tiny candidate stage
    r = index.search(Q, k=3, filter={"n": 17}, nprobe=1, candidates=1, rescore=1)
    assert r.ids == ["d17"]
    want, _ = brute(Q, {f"d{i}": docs[i] for i in range(0, 40, 2)}, 5)
    assert index.search(Q, k=5, filter={"lang": "de"}, nprobe=None).ids == want


# -- compaction ---------------------------------------------------------------------------------


def test_compact_renumbers_keeps_ids_and_removes_files(small):
    index, docs = small
    index.delete([f"d{i}" for i in range(0, 60, 3)])
    old = set(shard_files(index.path))
    Q = torch.randn(5, DIM)
    before = index.search(Q, k=10, nprobe=None)
    index.compact(max_shard_vectors=150)
    now = set(shard_files(index.path))
    assert not (old & now) and len(now) > 1  # merged shards of bounded size; old files gone
    for idx in (index, Index.open(index.path)):
        assert len(idx) == 40 and idx.num_positions == 40
        after = idx.search(Q, k=10, nprobe=None)
        assert after.ids == before.ids and torch.allclose(after.scores, before.scores)
        assert idx.index_of("d1") == 0 and idx.metadata_of("d59") == {"lang": "fr", "n": 59}
        assert len(idx.search(Q, k=60, filter={"lang": "fr"}).ids) == sum(1 for i in range(40, 60) if i % 3)


def test_compact_retrain_keeps_results_exact(small):
    index, docs = small
    index.delete(["d0"])
    index.compact(retrain=True)
    live = {f"d{i}": d for i, d in enumerate(docs) if i}
    Q = torch.randn(4, DIM)
    r = index.search(Q, k=8, nprobe=10_000, candidates=100, rescore=100)
    assert r.ids == brute(Q, live, 8)[0]


# -- crash safety -------------------------------------------------------------------------------


def test_crash_before_manifest_swap_leaves_old_index(small, monkeypatch):
    index, docs = small
    ids_before = index.ids

    def boom(*a, **k):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr("colkern.retrieval.sharded.write_manifest", boom)
    with pytest.raises(RuntimeError):
        index.add(make_docs(3, 9), ids=["x", "y", "z"])
    with pytest.raises(RuntimeError):
        index.compact()
    monkeypatch.undo()
    leftovers = set(shard_files(index.path))
    reopened = Index.open(index.path)
    assert reopened.ids == ids_before and len(leftovers) > 2  # unreferenced files are ignored ...
    reopened.delete(["d1"])
    reopened.compact()
    assert set(shard_files(index.path)) == {reopened.shards[0].path.rsplit("/", 1)[1]}  # ... and cleaned here


def test_crash_after_compaction_commit_leaves_new_index(small, monkeypatch):
    index, _ = small
    index.delete(["d1"])
    monkeypatch.setattr("colkern.retrieval.sharded.os.unlink", lambda p: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        index.compact()
    monkeypatch.undo()
    reopened = Index.open(index.path)
    assert len(reopened.shards) == 1 and len(reopened) == 59 and reopened.num_positions == 59


_CHILD = r"""
import sys, torch
from colkern.retrieval.sharded import Index
index = Index.open(sys.argv[1])
print("ready", flush=True)
for j in range(10_000):
    if j % 3 == 0:
        g = torch.Generator().manual_seed(j)
        index.add([torch.randn(40, 32, generator=g) for _ in range(150)], ids=[f"a{j}_{i}" for i in range(150)])
    elif j % 3 == 1:
        index.delete([f"a{j - 1}_0", f"a{j - 1}_1"])
    else:
        index.compact()
    print(j, flush=True)
"""


def _model_ids(n_ops):
    live = []
    for j in range(n_ops):
        if j % 3 == 0:
            live += [f"a{j}_{i}" for i in range(150)]
        elif j % 3 == 1:
            live = [d for d in live if d not in (f"a{j - 1}_0", f"a{j - 1}_1")]
    return live


def test_kill_9_during_add_and_compact_keeps_committed_state(tmp_path):
    rng = random.Random(0)
    for round_ in range(5):
        path = tmp_path / f"idx{round_}"
        Index.create(path, dim=32, centroids=64)
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 2.5))
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait()
        done = [int(x) for x in proc.stdout.read().split()]
        last = done[-1] + 1 if done else 0  # ops known committed; op `last` may have committed unprinted
        index = Index.open(path, verify=True)
        assert index.ids in (_model_ids(last), _model_ids(last + 1)), f"round {round_}: after {last} ops"
        for d in index.ids[:: max(1, len(index) // 5)]:  # the stored vectors are the right ones
            j, i = map(int, d[1:].split("_"))
            g = torch.Generator().manual_seed(j)
            vec = [torch.randn(40, 32, generator=g) for _ in range(i + 1)][i]
            assert index.search(vec, k=1, nprobe=None).ids == [d]


# -- files, mmap, errors --------------------------------------------------------------------------


def _rss_file():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssFile"))


def test_open_does_not_read_the_payload(tmp_path):
    index = Index.create(tmp_path / "idx", dim=128, centroids=4)  # a tiny codebook: this test is about I/O
    g = torch.Generator().manual_seed(0)
    index.add(colkern.PackedDocs(torch.randn(300_000, 128, generator=g).half(),
                                 torch.arange(0, 300_001, 1000, dtype=torch.int64)))
    payload = sum(s.floats.numel() * 2 for s in index.shards)  # ~77 MB of floats
    del index
    before = _rss_file()
    opened = Index.open(tmp_path / "idx")
    grew_open = _rss_file() - before
    total = float(sum(s.floats.float().sum() for s in opened.shards))  # touch every page
    grew_touch = _rss_file() - before
    assert total == total and grew_open < payload // 20 and grew_touch > payload // 2


def test_corrupt_payload_is_found_by_verify_not_by_open(small):
    index, _ = small
    path = index.shards[0].path
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - 3)
        f.write(b"\xff\xfe\xfd")
    Index.open(index.path)  # lazy: the payload is not read
    with pytest.raises(IndexFormatError, match=os.path.basename(path)):
        Index.open(index.path, verify=True)
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.open(index.path).verify()


def test_missing_or_corrupt_files_name_the_file(small):
    index, _ = small
    mpath = os.path.join(index.path, manifest_mod.MANIFEST)
    text = open(mpath).read()
    with open(mpath, "w") as f:
        f.write(text.replace('"dim": 16', '"dim": 17'))
    with pytest.raises(IndexFormatError, match="MANIFEST.json.*checksum"):
        Index.open(index.path)
    with open(mpath, "w") as f:
        f.write(text[:50])
    with pytest.raises(IndexFormatError, match="MANIFEST.json"):
        Index.open(index.path)
    with open(mpath, "w") as f:
        f.write(text)
    shard = index.shards[1].path
    data = open(shard, "rb").read()
    with open(shard, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(IndexFormatError, match=os.path.basename(shard) + ".*truncated"):
        Index.open(index.path)
    os.unlink(shard)
    with pytest.raises(IndexFormatError, match=os.path.basename(shard) + ".*missing"):
        Index.open(index.path)
    os.unlink(mpath)
    with pytest.raises(IndexFormatError, match="MANIFEST.json.*missing"):
        Index.open(index.path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Index.open(os.path.join(index.path, "nowhere"))


def test_a_foreign_shard_under_a_committed_name_is_refused(small, tmp_path):
    index, _ = small
    other = Index.create(tmp_path / "other", dim=DIM).add(make_docs(40, 7), ids=[f"d{i}" for i in range(40)])
    os.replace(other.shards[0].path, index.shards[0].path)
    with pytest.raises(IndexFormatError, match="does not match the manifest"):
        Index.open(index.path)


def test_bad_arguments(small):
    index, docs = small
    Q = torch.randn(3, DIM)
    for kw, name in (({"k": 0}, "k"), ({"nprobe": 0}, "nprobe"), ({"candidates": 0}, "candidates"),
                     ({"rescore": -1}, "rescore"), ({"nprobe": 2.5}, "nprobe")):
        with pytest.raises(ValueError, match=f"{name} must be a positive int"):
            index.search(Q, **kw)
    with pytest.raises(ValueError, match="Q has dim 7 but the index has dim 16"):
        index.search(torch.randn(3, 7))
    with pytest.raises(ValueError, match="docs have dim 8 but the index has dim 16"):
        index.add([torch.randn(3, 8)])
    with pytest.raises(ValueError, match="ids must be unique"):
        index.add(make_docs(2, 3), ids=["u", "u"])
    with pytest.raises(ValueError, match="'d7' is already in the index"):
        index.add(make_docs(2, 3), ids=["new", "d7"])
    with pytest.raises(ValueError, match="2 metadata entries for 1 documents"):
        index.add(make_docs(1, 3), metadata=[{}, {}])
    with pytest.raises(TypeError, match="filter must be a dict"):
        index.search(Q, filter=[("lang", "en")])
    with pytest.raises(TypeError, match="single str"):
        index.delete("d1")
    with pytest.raises(ValueError, match="dim must be a positive int"):
        Index.create(os.path.join(index.path, "..", "z"), dim=0)


def test_from_multivector_float_and_bits_only(tmp_path):
    docs = make_docs(30, 4)
    Q = torch.randn(4, DIM)
    mv = MultiVectorIndex.build(docs, ids=[f"p{i}" for i in range(30)])
    mv.save(tmp_path / "old.colk")
    mv = MultiVectorIndex.load(tmp_path / "old.colk", mmap=True)
    conv = Index.from_multivector(mv, tmp_path / "new", metadata=[{"i": i} for i in range(30)])
    r = conv.search(Q, k=5, nprobe=None)
    old = two_stage(Q, mv, 5, stage1="float")
    assert r.ids == old.ids and torch.allclose(r.scores, old.scores)
    assert conv.metadata_of("p3") == {"i": 3}
    bits = MultiVectorIndex.build(docs, keep_float=False)
    conv_b = Index.from_multivector(bits, tmp_path / "newb")
    rb = conv_b.search(Q, k=5, nprobe=None)
    ob = two_stage(Q, bits, 5, stage1="bits", rescore=None)
    assert rb.ids == ob.ids  # the old bits are kept exactly
    assert torch.allclose(rb.scores, ob.scores, atol=1e-5)  # scale 1, no mean: the plain pm1 score


def test_writers_in_two_objects_see_each_other(tmp_path):
    a = Index.create(tmp_path / "idx", dim=DIM)
    b = Index.open(tmp_path / "idx")
    a.add(make_docs(3, 0), ids=["x", "y", "z"])
    b.add(make_docs(2, 1), ids=["v", "w"])  # b catches up with a's commit under the lock
    b.delete(["x"])
    assert Index.open(a.path).ids == ["y", "z", "v", "w"]
    assert len(a) == 3  # a keeps its snapshot until its next write or reopen


def test_manifest_is_json_with_tombstones(small):
    index, _ = small
    index.delete(["d2", "d41"])
    body = json.load(open(os.path.join(index.path, manifest_mod.MANIFEST)))
    assert [s["deleted"] for s in body["shards"]] == [[2], [1]] and len(body["checksum"]) == 64


# -- random sequences against a dict model ------------------------------------------------------

_op = st.one_of(
    st.tuples(st.just("add"), st.lists(st.integers(0, 24), min_size=1, max_size=6, unique=True),
              st.integers(0, 10_000)),
    st.tuples(st.just("delete"), st.integers(0, 24), st.integers(1, 4)),
    st.tuples(st.just("compact"), st.booleans(), st.integers(1, 60)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op, min_size=1, max_size=8), st.integers(0, 1000))
def test_random_operations_match_a_dict_model(ops, qseed):
    Q = torch.randn(4, 8, generator=torch.Generator().manual_seed(qseed))
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.create(os.path.join(tmp, "idx"), dim=8)
        model = {}
        for op in ops:
            if op[0] == "add":
                ids = [f"i{n}" for n in op[1] if f"i{n}" not in model]
                if not ids:
                    continue
                docs = make_docs(len(ids), op[2], dim=8, hi=5)
                index.add(docs, ids=ids)
                model.update(zip(ids, docs))
            elif op[0] == "delete":
                live = sorted(model)
                gone = live[op[1] % max(1, len(live)):][:op[2]]
                if not gone:
                    with pytest.raises(KeyError):
                        index.delete(["i999"])
                    continue
                index.delete(gone)
                for d in gone:
                    del model[d]
            else:
                index.compact(retrain=op[1], max_shard_vectors=op[2])
            for idx in (index, Index.open(index.path)):
                assert sorted(idx.ids) == sorted(model) and len(idx) == len(model)
                # insertion order of the model = position order of the index
                order = sorted(model, key=idx.index_of)
                want_ids, want_s = brute(Q, {d: model[d] for d in order}, 5)
                n = max(1, len(model))
                for kw in ({"nprobe": None}, {"nprobe": 1 << 20, "candidates": n, "rescore": n}):
                    r = idx.search(Q, k=5, **kw)
                    assert r.ids == want_ids
                    assert torch.allclose(r.scores, want_s, atol=1e-5)
