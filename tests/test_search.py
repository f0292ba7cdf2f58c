"""search(): stage-1 float equals brute force, two-stage with full oversample equals exact ranking,
candidates, masks, ids and input errors, on a small clustered corpus."""
import pytest
import torch

import colkern
from colkern.retrieval.index import MultiVectorIndex
from colkern.retrieval.search import SearchResult, search

DIM = 32
N_DOCS = 60


def _clustered(n_docs=N_DOCS, dim=DIM, n_centroids=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    cent = torch.nn.functional.normalize(torch.randn(n_centroids, dim, generator=g), dim=1)
    docs = []
    for _ in range(n_docs):
        L = int(torch.randint(3, 40, (1,), generator=g))
        topics = torch.randint(0, n_centroids, (4,), generator=g)
        c = cent[topics[torch.randint(0, 4, (L,), generator=g)]]
        docs.append(torch.nn.functional.normalize(c + 0.3 * torch.randn(L, dim, generator=g), dim=1))
    return docs, g


def _queries(docs, g, B=5, Lq=8):
    qs = []
    for _ in range(B):
        d = docs[int(torch.randint(0, len(docs), (1,), generator=g))]
        rows = d[torch.randint(0, d.shape[0], (Lq,), generator=g)]
        qs.append(torch.nn.functional.normalize(rows + 0.2 * torch.randn(Lq, d.shape[1], generator=g), dim=1))
    return torch.stack(qs)


@pytest.fixture(scope="module")
def corpus():
    docs, g = _clustered()
    Q = _queries(docs, g)
    ids = [f"page-{i}" for i in range(len(docs))]
    return docs, Q, {dt: MultiVectorIndex.build(docs, ids=ids, float_dtype=dt)
                     for dt in (torch.float32, torch.float16, torch.bfloat16)}


def _brute_force_topk(Q, docs, k):
    """Pure-torch float64 MaxSim, ranked by (-score, index)."""
    s = colkern.maxsim_ref(Q, docs)  # [B, N]
    idx = torch.stack([torch.tensor(sorted(range(s.shape[1]), key=lambda n: (-float(row[n]), n))[:k])
                       for row in s])
    return s.gather(1, idx), idx


def test_stage1_float_equals_brute_force(corpus):
    docs, Q, idxs = corpus
    idx = idxs[torch.float32]
    r = search(Q, idx, 7, stage1="float")
    assert isinstance(r, SearchResult) and r.score_kind == "float" and r.rescore is None
    ref_s, ref_i = _brute_force_topk(Q, docs, 7)
    assert torch.equal(r.indices, ref_i)
    torch.testing.assert_close(r.scores, ref_s, rtol=1e-5, atol=1e-5)
    assert r.ids == [[f"page-{i}" for i in row] for row in ref_i.tolist()]
    assert r.candidate_indices is None and r.candidate_scores is None
    # rescore=None and "float" mean the same thing after a float stage 1
    r2 = search(Q, idx, 7, stage1="float", rescore=None)
    assert torch.equal(r2.indices, r.indices) and torch.equal(r2.scores, r.scores)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_stage1_float_low_precision_index(corpus, dtype):
    _, Q, idxs = corpus
    idx = idxs[dtype]
    r = search(Q, idx, 5, stage1="float")
    s, i = colkern.maxsim_topk(Q, idx.packed_floats(), 5)
    assert torch.equal(r.indices, i) and torch.equal(r.scores, s)


@pytest.mark.parametrize("stage1", ["hamming", "bits"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_two_stage_full_oversample_is_exact(corpus, stage1, dtype):
    _, Q, idxs = corpus
    idx = idxs[dtype]
    exact_s, exact_i = colkern.maxsim_topk(Q, idx.packed_floats(), 10)
    r = search(Q, idx, 10, stage1=stage1, oversample=N_DOCS, rescore="float")
    assert r.score_kind == "float" and r.rescore == "float" and r.stage1 == stage1
    assert torch.equal(r.indices, exact_i)
    assert torch.equal(r.scores, exact_s)
    # fractional oversample reaching N works too
    r = search(Q, idx, 10, stage1=stage1, oversample=N_DOCS / 10 + 0.5)
    assert torch.equal(r.indices, exact_i)


def test_two_stage_bits_rescoring_full_oversample(corpus):
    _, Q, idxs = corpus
    idx = idxs[torch.float32]
    s, i = colkern.maxsim_bits_topk(Q, idx.packed_bits(), 6, dim=DIM)
    r = search(Q, idx, 6, stage1="hamming", oversample=100, rescore="bits")
    assert r.score_kind == "bits" and torch.equal(r.indices, i) and torch.equal(r.scores, s)


def test_candidates_and_stage1_only(corpus):
    _, Q, idxs = corpus
    idx = idxs[torch.float32]
    k, over = 4, 3
    r = search(Q, idx, k, oversample=over, return_candidates=True)
    hs, hi = colkern.maxsim_hamming_topk(colkern.pack_bits(Q), idx.packed_bits(), k * over, dim=DIM)
    assert torch.equal(r.candidate_indices, hi) and torch.equal(r.candidate_scores, hs)
    full = colkern.maxsim(Q, idx.packed_floats())
    for b in range(Q.shape[0]):
        cand = hi[b]
        assert set(r.indices[b].tolist()) <= set(cand.tolist())
        # the result is the float top-k among the candidates
        order = sorted(cand.tolist(), key=lambda n: (-float(full[b, n]), n))[:k]
        assert r.indices[b].tolist() == order
        assert torch.equal(r.scores[b], full[b, order])
    # rescore=None: stage 1 alone
    r0 = search(Q, idx, k, oversample=over, rescore=None, return_candidates=True)
    assert r0.score_kind == "hamming" and r0.rescore is None
    assert torch.equal(r0.indices, hi[:, :k]) and torch.equal(r0.scores, hs[:, :k])
    # stage1="bits" candidates
    bs, bi = colkern.maxsim_bits_topk(Q, idx.packed_bits(), k * over, dim=DIM)
    r1 = search(Q, idx, k, stage1="bits", oversample=over, return_candidates=True)
    assert torch.equal(r1.candidate_indices, bi) and torch.equal(r1.candidate_scores, bs)


def test_single_query_and_k_larger_than_corpus(corpus):
    _, Q, idxs = corpus
    idx = idxs[torch.float32]
    r = search(Q[1], idx, 3, return_candidates=True)
    rb = search(Q[1:2], idx, 3, return_candidates=True)
    assert r.indices.shape == (3,) and r.scores.shape == (3,) and r.candidate_indices.shape == (30,)
    assert r.ids == rb.ids[0] and all(isinstance(x, str) for x in r.ids)
    assert torch.equal(r.indices, rb.indices[0]) and torch.equal(r.candidate_indices, rb.candidate_indices[0])
    big = search(Q, idx, 1000)
    assert big.indices.shape == (Q.shape[0], N_DOCS)
    assert torch.equal(big.indices, colkern.maxsim_topk(Q, idx.packed_floats(), 1000)[1])


@pytest.mark.parametrize("stage1", ["hamming", "bits", "float"])
def test_q_mask_equals_dropping_tokens(corpus, stage1):
    _, Q, idxs = corpus
    idx = idxs[torch.float32]
    mask = torch.ones(Q.shape[:2], dtype=torch.bool)
    mask[:, 5:] = False
    mask[0, 1] = False
    r = search(Q, idx, 5, stage1=stage1, q_mask=mask, return_candidates=True)
    for b in range(Q.shape[0]):
        rb = search(Q[b][mask[b]], idx, 5, stage1=stage1, return_candidates=True)
        assert torch.equal(r.indices[b], rb.indices) and torch.equal(r.scores[b], rb.scores)
        assert torch.equal(r.candidate_indices[b], rb.candidate_indices)
    r1 = search(Q[0], idx, 5, stage1=stage1, q_mask=mask[0])  # a 1-D mask for a single query
    assert torch.equal(r1.indices, r.indices[0])


def test_mmap_index_search_equals_memory(corpus, tmp_path):
    _, Q, idxs = corpus
    idx = idxs[torch.float16]
    idx.save(tmp_path / "c.colk")
    mm = MultiVectorIndex.load(tmp_path / "c.colk", mmap=True)
    for kw in ({}, {"stage1": "bits"}, {"stage1": "float"}, {"rescore": "bits"}):
        a, b = search(Q, idx, 5, **kw), search(Q, mm, 5, **kw)
        assert a.ids == b.ids and torch.equal(a.scores, b.scores)


def test_bits_only_index(corpus):
    docs, Q, _ = corpus
    idx = MultiVectorIndex.build(docs, keep_float=False)
    with pytest.raises(ValueError, match="rescore='float' needs float vectors.*keep_float=False"):
        search(Q, idx, 5)
    with pytest.raises(ValueError, match="stage1='float' needs float vectors"):
        search(Q, idx, 5, stage1="float", rescore=None)
    r = search(Q, idx, 5, rescore="bits")
    assert r.score_kind == "bits"
    r = search(Q, idx, 5, stage1="bits", rescore="bits")  # same scores twice: no stage 2
    assert r.score_kind == "bits" and r.rescore is None
    assert torch.equal(r.indices, colkern.maxsim_bits_topk(Q, idx.packed_bits(), 5, dim=DIM)[1])


def test_bad_inputs(corpus):
    _, Q, idxs = corpus
    idx = idxs[torch.float32]
    with pytest.raises(ValueError, match="Q has dim 16 but the index has dim 32"):
        search(torch.randn(3, 8, 16), idx, 5)
    with pytest.raises(ValueError, match="Q has dim 31 but the index has dim 32"):
        search(torch.randn(8, 31), idx, 5)
    for k in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="k must be a positive int"):
            search(Q, idx, k)
    with pytest.raises(ValueError, match="unknown stage1 'exact'"):
        search(Q, idx, 5, stage1="exact")
    with pytest.raises(ValueError, match="unknown rescore 'fp16'"):
        search(Q, idx, 5, rescore="fp16")
    for over in (0, 0.5, float("nan"), float("inf"), "10"):
        with pytest.raises(ValueError, match="oversample"):
            search(Q, idx, 5, oversample=over)
    with pytest.raises(ValueError, match="rescore='bits' after stage1='float'"):
        search(Q, idx, 5, stage1="float", rescore="bits")
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        search(Q.to(torch.int32), idx, 5)
    with pytest.raises(ValueError, match="shape"):
        search(Q[None], idx, 5)
    with pytest.raises(ValueError, match="q_mask"):
        search(Q, idx, 5, q_mask=torch.ones(Q.shape[0], 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="MultiVectorIndex"):
        search(Q, idxs[torch.float32].packed_floats(), 5)
    with pytest.raises(TypeError, match="tensor"):
        search(Q.tolist(), idx, 5)
