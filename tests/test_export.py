"""colkern.export: Qdrant round trip (local in-process mode) and the Vespa package and feed.

The Vespa rank expressions are evaluated here in Python over the parsed feed JSON (not over
colkern's tensors) and compared with colkern's own ops, so the feed's bits convention and the
expressions are checked together; no Vespa or Docker is needed.
"""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch

import colkern
from colkern.cli import main

qdrant_client = pytest.importorskip("qdrant_client")
pytest.importorskip("vespa.package")

from colkern.export import point_id, qdrant_search, to_qdrant, vespa_feed, vespa_package, vespa_query, write_vespa  # noqa: E402

D = 32
N = 40


def _corpus(seed: int, n: int = N, dim: int = D):
    """Ragged random docs (5-30 vectors) around a common mean, so centring changes the bits."""
    g = torch.Generator().manual_seed(seed)
    mean = 0.7 * torch.randn(dim, generator=g)
    docs = [(torch.randn(int(torch.randint(5, 31, (1,), generator=g)), dim, generator=g) + mean).half()
            for _ in range(n)]
    ids = [f"/data/report{i % 3}.pdf#page={i + 1}" if i % 2 else f"note-{i}" for i in range(n)]
    meta = [{"lang": "en" if i % 4 else "de", "n": i} for i in range(n)]
    return docs, ids, meta


DELETED = ["note-4", "/data/report2.pdf#page=6"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A centred fp16 index in two shards with two deletions; the live docs in position order."""
    docs, ids, meta = _corpus(0)
    index = colkern.Index.create(tmp_path_factory.mktemp("idx") / "pages.idx", D, centroids=8)
    index.add(docs[:25], ids=ids[:25], metadata=meta[:25])
    index.add(docs[25:], ids=ids[25:], metadata=meta[25:])
    index.delete(DELETED)
    live = [i for i, d in enumerate(ids) if d not in DELETED]
    return index, [docs[i] for i in live], [ids[i] for i in live], [meta[i] for i in live]


def _queries(seed: int, B: int = 3, Lq: int = 7, dim: int = D):
    return torch.randn(B, Lq, dim, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# import


def test_import_loads_neither_client():
    code = ("import sys, colkern, colkern.export; import colkern.cli; "
            "print(any(m.split('.')[0] in ('qdrant_client', 'vespa') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------
# Qdrant


@pytest.fixture(scope="module")
def qdrant(corpus):
    client = qdrant_client.QdrantClient(":memory:")
    assert to_qdrant(corpus[0], client, "pages", batch_size=7) == len(corpus[0])
    return client


def test_qdrant_topk_equals_exact_colkern_search(corpus, qdrant):
    index, docs, ids, _ = corpus
    Q = _queries(1)
    hits = qdrant_search(qdrant, "pages", Q, k=10)
    exact = index.search(Q, k=10, nprobe=None)  # full float MaxSim scan: exact
    assert hits.ids == exact.ids
    # Qdrant scores are MaxSim on the stored (fp16) vectors: DOT, not COSINE.
    ref = colkern.maxsim(Q, docs)
    for b in range(Q.shape[0]):
        want = ref[b, [ids.index(d) for d in hits.ids[b]]]
        torch.testing.assert_close(hits.scores[b], want, rtol=1e-3, atol=1e-3)
    single = qdrant_search(qdrant, "pages", Q[0], k=3)
    assert single.ids == exact.ids[0][:3] and single.scores.shape == (3,)


def test_qdrant_collection_config_and_payload(corpus, qdrant):
    from qdrant_client import models

    index, _, ids, meta = corpus
    params = qdrant.get_collection("pages").config.params.vectors
    assert params.size == D and params.distance == models.Distance.DOT
    assert params.multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert params.hnsw_config.m == 0
    assert qdrant.count("pages").count == len(index) == len(ids)
    pts = qdrant.retrieve("pages", [point_id(ids[1]), point_id(ids[0])], with_payload=True)
    by_id = {p.payload["doc_id"]: p.payload for p in pts}
    assert by_id[ids[1]] == {"doc_id": ids[1], "file": "/data/report1.pdf", "page": 1, "metadata": meta[1]}
    assert by_id[ids[0]] == {"doc_id": ids[0], "metadata": meta[0]}  # not a page id: no file / page
    assert qdrant.retrieve("pages", [point_id(d) for d in DELETED]) == []
    assert point_id(ids[0]) == point_id(ids[0]) != point_id(ids[1])
    assert point_id("a.pdf#page=1") == str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "colkern:doc-id"), "a.pdf#page=1"))


def test_qdrant_recreate_and_binary_quantization(corpus):
    from qdrant_client import models

    index = corpus[0]
    client = qdrant_client.QdrantClient(":memory:")
    to_qdrant(index, client, "c")
    with pytest.raises(ValueError, match="already exists"):
        to_qdrant(index, client, "c")
    assert to_qdrant(index, client, "c", recreate=True, binary_quantization=True) == len(index)
    quant = client.get_collection("c").config.quantization_config
    assert quant is None or isinstance(quant, models.BinaryQuantization)  # local mode may not echo it


class _CountingClient:
    """A QdrantClient that records the size of every upsert."""

    def __init__(self):
        self.client, self.upserts = qdrant_client.QdrantClient(":memory:"), []

    def upsert(self, collection, points, **kw):
        self.upserts.append(len(points))
        return self.client.upsert(collection, points=points, **kw)

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_qdrant_streams_in_batches(corpus):
    client = _CountingClient()
    assert to_qdrant(corpus[0], client, "c", batch_size=5) == len(corpus[0]) == 38
    assert client.upserts == [5] * 7 + [3]


def test_qdrant_bad_arguments(corpus, qdrant, tmp_path):
    index = corpus[0]
    client = qdrant_client.QdrantClient(":memory:")
    with pytest.raises(ValueError, match="collection must be a non-empty str"):
        to_qdrant(index, client, "")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        to_qdrant(index, client, "x", batch_size=0)
    with pytest.raises(TypeError, match="colkern.Index"):
        to_qdrant("pages.idx", client, "x")
    bits_only = colkern.Index.create(tmp_path / "bits.idx", D, keep_float=False, centroids=2)
    bits_only.add(corpus[1][:3])
    with pytest.raises(ValueError, match="keeps only sign bits"):
        to_qdrant(bits_only, client, "x")
    assert not client.collection_exists("x")
    Q = _queries(2)
    with pytest.raises(ValueError, match="k must be a positive int"):
        qdrant_search(qdrant, "pages", Q, k=0)
    with pytest.raises(ValueError, match="collection must be a non-empty str"):
        qdrant_search(qdrant, "", Q, k=1)
    with pytest.raises(ValueError, match="Q must be a float tensor"):
        qdrant_search(qdrant, "pages", Q[0, 0], k=1)


# ---------------------------------------------------------------------------------------------
# Vespa: Python evaluators of the rank expressions over the feed JSON


def _tensor(field: dict, dtype) -> np.ndarray:
    """A fed mixed tensor {"blocks": {patch: [v...]}} -> [patches, v] in patch order."""
    blocks = field["blocks"]
    return np.array([blocks[str(j)] for j in range(len(blocks))], dtype=dtype)


def _unpack(cells: np.ndarray) -> np.ndarray:
    """Vespa unpack_bits of int8 cells (big-endian bit order) -> {0, 1} floats."""
    return np.unpackbits(cells.astype(np.int8).view(np.uint8), axis=-1).astype(np.float64)


def vespa_max_sim_hamming(qtb: np.ndarray, doc_bits: np.ndarray) -> float:
    """sum(reduce(1/(1 + sum(hamming(query(qtb), attribute(embedding)), v)), max, patch), querytoken)"""
    ham = np.unpackbits((qtb.view(np.uint8)[:, None, :] ^ doc_bits.view(np.uint8)[None, :, :]), axis=-1).sum(-1)
    return float((1.0 / (1.0 + ham)).max(1).sum())


def vespa_max_sim_bits(qt: np.ndarray, doc_bits: np.ndarray) -> float:
    """sum(reduce(sum(query(qt) * unpack_bits(attribute(embedding)), v), max, patch), querytoken)"""
    return float((qt.astype(np.float64) @ _unpack(doc_bits).T).max(1).sum())


def vespa_max_sim_float(qt: np.ndarray, doc_floats: np.ndarray) -> float:
    return float((qt.astype(np.float64) @ doc_floats.astype(np.float64).T).max(1).sum())


@pytest.fixture(scope="module")
def feed(corpus):
    # Round trip through JSON text, as `vespa feed` reads it.
    return [json.loads(json.dumps(op)) for op in vespa_feed(corpus[0], "pages")]


def test_vespa_feed_documents(corpus, feed):
    index, docs, ids, meta = corpus
    assert [op["put"] for op in feed] == [f"id:pages:pages::{d}" for d in ids]
    f = feed[1]["fields"]
    assert (f["doc_id"], f["file"], f["page"], json.loads(f["metadata"])) == (ids[1], "/data/report1.pdf", 1, meta[1])
    assert "file" not in feed[0]["fields"] and "page" not in feed[0]["fields"]
    for op, doc in zip(feed, docs):
        bits = _tensor(op["fields"]["embedding"], np.int8)
        assert bits.shape == (doc.shape[0], D // 8) and bits.min() >= -128 and bits.max() <= 127
        # Raw sign bits of the stored vectors, not the index's centred bits.
        assert np.array_equal(bits.view(np.uint8), colkern.pack_bits(doc).numpy())
        assert _tensor(op["fields"]["embedding_float"], np.float32).shape == (doc.shape[0], D)
    centred = torch.cat([s.bits for s in index.shards]).numpy()
    assert not np.array_equal(np.concatenate([_tensor(op["fields"]["embedding"], np.int8) for op in feed[:5]])
                              .view(np.uint8), centred[:sum(d.shape[0] for d in docs[:5])])


def test_vespa_hamming_profile_matches_colkern_hamming(corpus, feed):
    _, docs, _, _ = corpus
    Q = _queries(3)
    doc_bits = [colkern.pack_bits(d) for d in docs]
    for q in Q:
        qb = colkern.pack_bits(q)
        # colkern scores a token pair dim - 2 * hamming; per query token (as its own query):
        # s_i = max_j (dim - 2 h_ij), so min_j h_ij = (dim - s_i) / 2 and Vespa's
        # max_j 1 / (1 + h_ij) = 1 / (1 + (dim - s_i) / 2).
        s = colkern.maxsim_hamming(qb[:, None, :], doc_bits, dim=D).double()  # [Lq, N]
        want = (1.0 / (1.0 + (D - s) / 2)).sum(0)
        body = vespa_query(q, "pages")["input.query(qtb)"]
        qtb = np.array([body[str(i)] for i in range(q.shape[0])], dtype=np.int8)
        assert np.array_equal(qtb.view(np.uint8), qb.numpy())  # the query's bits: the feed's convention
        got = torch.tensor([vespa_max_sim_hamming(qtb, _tensor(op["fields"]["embedding"], np.int8)) for op in feed],
                           dtype=torch.float64)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_vespa_bits_and_float_profiles_match_colkern(corpus, feed):
    _, docs, _, _ = corpus
    Q = _queries(4)
    doc_bits = [colkern.pack_bits(d) for d in docs]
    want_bits = colkern.maxsim_bits(Q, doc_bits, dim=D, mode="01").double()  # Vespa's unpack_bits is {0, 1}
    want_float = colkern.maxsim(Q, docs).double()
    for b, q in enumerate(Q):
        body = vespa_query(q, "pages", k=5, ranking="float")
        qt = np.array([body["input.query(qt)"][str(i)] for i in range(q.shape[0])], dtype=np.float32)
        got_bits = torch.tensor([vespa_max_sim_bits(qt, _tensor(op["fields"]["embedding"], np.int8)) for op in feed],
                                dtype=torch.float64)
        torch.testing.assert_close(got_bits, want_bits[b], rtol=1e-5, atol=1e-4)
        got_float = torch.tensor([vespa_max_sim_float(qt, _tensor(op["fields"]["embedding_float"], np.float32))
                                  for op in feed], dtype=torch.float64)
        # bfloat16 cells (8 mantissa bits): |error| <= 2^-8 * sum_i max_j |q_i| . |x_j|, loosely.
        torch.testing.assert_close(got_float, want_float[b], rtol=2e-2, atol=0.3)
        assert torch.equal(got_bits.argsort(descending=True)[:1], want_bits[b].argsort(descending=True)[:1])


def test_vespa_package(corpus, tmp_path):
    index = corpus[0]
    pkg = vespa_package(index, "pages", rerank_count=50)
    assert pkg.name == "pages" and [s.name for s in pkg.schemas] == ["pages"]
    app, feed_path, n = write_vespa(index, "pages", tmp_path / "out", rerank_count=50)
    assert n == len(index)
    sd = (tmp_path / "out" / "app" / "schemas" / "pages.sd").read_text()
    for text in ("field embedding type tensor<int8>(patch{}, v[4])",
                 "field embedding_float type tensor<bfloat16>(patch{}, v[32])", "field doc_id type string",
                 "field page type int", "query(qtb) tensor<int8>(querytoken{}, v[4])",
                 "query(qt) tensor<float>(querytoken{}, v[32])", "rank-profile hamming", "rank-profile bits",
                 "rank-profile float", "rerank-count: 50",
                 "sum(reduce(1 / (1 + sum(hamming(query(qtb), attribute(embedding)), v)), max, patch), querytoken)",
                 "sum(reduce(sum(query(qt) * unpack_bits(attribute(embedding)), v), max, patch), querytoken)"):
        assert text in sd, text
    assert (tmp_path / "out" / "app" / "services.xml").is_file()
    lines = (tmp_path / "out" / "feed.jsonl").read_text().splitlines()
    assert [json.loads(line)["put"] for line in lines] == [f"id:pages:pages::{d}" for d in index.ids]


def test_vespa_colpali_dim_and_bits_only(tmp_path):
    docs, ids, _ = _corpus(5, n=6, dim=128)
    full = colkern.Index.create(tmp_path / "f.idx", 128, centroids=2)
    full.add(docs, ids=ids)
    assert "tensor<int8>(patch{}, v[16])" in vespa_package(full, "colpali").schemas[0].schema_to_text
    centred = colkern.Index.create(tmp_path / "c.idx", 128, keep_float=False, centroids=2)
    centred.add(docs)
    with pytest.raises(ValueError, match="centred sign bits"):
        vespa_package(centred, "colpali")
    with pytest.raises(ValueError, match="centred sign bits"):
        vespa_feed(centred, "colpali")
    raw = colkern.Index.create(tmp_path / "r.idx", 128, keep_float=False, center=False, centroids=2)
    raw.add(docs)
    sd = vespa_package(raw, "colpali").schemas[0].schema_to_text
    assert "embedding_float" not in sd and "rank-profile float" not in sd and "rank-profile bits" in sd
    fed = list(vespa_feed(raw, "colpali"))
    assert [set(op["fields"]) for op in fed] == [{"doc_id", "metadata", "embedding"}] * 6
    for op, d in zip(fed, docs):
        assert np.array_equal(_tensor(op["fields"]["embedding"], np.int8).view(np.uint8), colkern.pack_bits(d).numpy())


def test_vespa_bad_arguments(corpus, tmp_path):
    index = corpus[0]
    for name in ("", "Pages", "1pages", "pa-ges", None):
        with pytest.raises(ValueError, match="name must be a Vespa application name"):
            vespa_package(index, name)
    with pytest.raises(ValueError, match="rerank_count must be a positive int"):
        vespa_package(index, "pages", rerank_count=0)
    odd = colkern.Index.create(tmp_path / "odd.idx", 12, centroids=1)
    with pytest.raises(ValueError, match="multiple of 8"):
        vespa_package(odd, "pages")
    with pytest.raises(ValueError, match="ranking must be"):
        vespa_query(_queries(0)[0], "pages", ranking="exact")
    with pytest.raises(ValueError, match="Q must be a float tensor"):
        vespa_query(_queries(0), "pages")


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_export_vespa(corpus, tmp_path, capsys):
    index = corpus[0]
    assert main(["export", "vespa", index.path, "--name", "pages", "-o", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    assert "vespa deploy" in out and "vespa feed" in out
    assert (tmp_path / "v" / "app" / "schemas" / "pages.sd").is_file()
    assert len((tmp_path / "v" / "feed.jsonl").read_text().splitlines()) == len(index)
    assert main(["export", "vespa", index.path, "--name", "Bad-Name", "-o", str(tmp_path / "w")]) == 2
    assert "name must be a Vespa application name" in capsys.readouterr().err


def test_cli_export_qdrant_local_path(corpus, tmp_path, capsys):
    index = corpus[0]
    args = ["export", "qdrant", index.path, "--collection", "pages", "--path", str(tmp_path / "q")]
    assert main(args) == 0
    assert f"exported {len(index)} documents" in capsys.readouterr().out
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(args + ["--recreate", "--binary-quantization"]) == 0
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        assert client.count("pages").count == len(index)
    finally:
        client.close()
    with pytest.raises(SystemExit):  # --url and --path are exclusive, one is required
        main(["export", "qdrant", index.path, "--collection", "pages"])
