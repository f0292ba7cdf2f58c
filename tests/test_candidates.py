"""The codebook and candidate stage of the sharded index (colkern.retrieval.centroids), and
centred binarisation, against brute force."""
import pytest
import torch

import colkern
from colkern.retrieval import centroids as C
from colkern.retrieval.sharded import CANDIDATES, Index


def clustered(n_docs, doc_len, dim=64, n_topics=100, per_doc=8, shift=1.0, noise=0.08, seed=0):
    """Pages of unit vectors around a few of `n_topics` topic centroids each (per-dimension noise
    `noise`, as in benchmarks/bits_quality.py), all sharing a mean direction of norm `shift`."""
    g = torch.Generator().manual_seed(seed)
    topics = torch.nn.functional.normalize(torch.randn(n_topics, dim, generator=g), dim=1)
    mean_dir = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0) * shift
    docs = []
    for _ in range(n_docs):
        mine = topics[torch.randint(0, n_topics, (per_doc,), generator=g)]
        base = mine[torch.randint(0, per_doc, (doc_len,), generator=g)]
        x = base + noise * torch.randn(doc_len, dim, generator=g) + mean_dir
        docs.append(torch.nn.functional.normalize(x, dim=1))
    return docs


def queries_from(docs, n, lq=12, noise=0.08, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in torch.randint(0, len(docs), (n,), generator=g).tolist():
        rows = docs[t][torch.randint(0, docs[t].shape[0], (lq,), generator=g)]
        out.append(torch.nn.functional.normalize(rows + noise * torch.randn(rows.shape, generator=g), dim=1))
    return torch.stack(out)


def exact_top(Q, docs, k):
    return colkern.maxsim_topk(Q.half(), [d.half() for d in docs], k)


def recall(a, b, k):
    return sum(len(set(x[:k].tolist()) & set(y[:k].tolist())) for x, y in zip(a, b)) / (k * len(a))


# -- codebook ---------------------------------------------------------------------------------


def test_flat_codebook_assigns_to_the_nearest_centroid():
    x = torch.randn(2000, 16)
    cb = C.train_codebook(x, 64)
    assert cb.coarse is None and cb.centroids.shape == (64, 16)
    assert torch.allclose(cb.centroids.norm(dim=1), torch.ones(64), atol=1e-5)
    assert torch.equal(C.assign(cb, x).long(), torch.argmax(x @ cb.centroids.T, 1))
    assert torch.allclose(cb.mean, x.mean(0)) and abs(cb.scale - float((x - x.mean(0)).abs().mean())) < 1e-5


def test_two_level_codebook_layout_and_assignment():
    x = torch.randn(30000, 16)
    K = C.FLAT_MAX * 2
    cb = C.train_codebook(x, K, iters=3)
    assert cb.centroids.shape == (K, 16) and cb.coarse is not None
    offs = cb.coarse_offsets
    assert int(offs[0]) == 0 and int(offs[-1]) == K and bool((offs[1:] > offs[:-1]).all())
    codes = C.assign(cb, x[:3000]).long()
    parent = torch.argmax(x[:3000] @ cb.coarse.T, 1)
    # each code is the best fine centroid of the best coarse centroid
    assert bool(((codes >= offs[parent]) & (codes < offs[parent + 1])).all())
    for i in range(0, 3000, 97):
        lo, hi = int(offs[parent[i]]), int(offs[parent[i] + 1])
        assert int(codes[i]) == lo + int(torch.argmax(cb.centroids[lo:hi] @ x[i]))


def test_split_never_exceeds_cluster_sizes():
    sizes = torch.tensor([1, 2, 100, 0, 7])
    share = C._split(sizes, 50)
    assert sum(share) == 50 and all(s <= int(z) for s, z in zip(share, sizes))
    assert sum(C._split(sizes, 110)) == 110


def test_auto_num_centroids():
    assert C.auto_num_centroids(1) == 1
    assert C.auto_num_centroids(1_000_000) == 4096
    assert C.auto_num_centroids(100_000_000) == 32768


def test_inverted_lists_match_brute_force():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 0, 5, 1, 7])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
    codes = torch.randint(0, 6, (int(lengths.sum()),), generator=g, dtype=torch.int32)
    lo, docs = C.inverted_lists(codes, offsets, 6)
    for c in range(6):
        want = sorted({n for n in range(5) for t in range(int(offsets[n]), int(offsets[n + 1])) if codes[t] == c})
        assert docs[lo[c]:lo[c + 1]].tolist() == want


# -- candidate stage --------------------------------------------------------------------------


def _approx_reference(lists, cent, delta, n_total, allowed):
    """approx(d) - sum of imputations, by Python loops."""
    best = {}
    for list_offsets, list_docs, base in lists:
        for i in range(cent.shape[0]):
            for r in range(cent.shape[1]):
                c = int(cent[i, r])
                for d in list_docs[list_offsets[c]:list_offsets[c + 1]].tolist():
                    d += base
                    if allowed is not None and not allowed[d]:
                        continue
                    best[(i, d)] = max(best.get((i, d), 0.0), float(delta[i, r]))
    out = {}
    for (i, d), v in best.items():
        out[d] = out.get(d, 0.0) + v
    return out


def test_approx_scores_match_reference_over_two_shards():
    g = torch.Generator().manual_seed(3)
    K, dim = 12, 8
    cents = torch.nn.functional.normalize(torch.randn(K, dim, generator=g), dim=1)
    shards = []
    base = 0
    for n in (7, 5):
        lengths = torch.randint(1, 6, (n,), generator=g)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
        codes = torch.randint(0, K, (int(lengths.sum()),), generator=g, dtype=torch.int32)
        lo, docs = C.inverted_lists(codes, offsets, K)
        shards.append((lo, docs, base))
        base += n
    q = torch.randn(4, dim, generator=g)
    allowed = torch.rand(base, generator=g) > 0.3
    for nprobe in (1, 3, K):
        cent, delta = C.probe(cents, q, nprobe)
        assert bool((delta >= 0).all())
        for mask in (None, allowed):
            pos, score = C.approx_scores(shards, cent, delta, base, mask)
            ref = _approx_reference(shards, cent, delta, base, mask)
            assert sorted(ref) == pos.tolist()
            assert torch.allclose(score, torch.tensor([ref[d] for d in pos.tolist()]), atol=1e-5)
            # Each document's sum runs over the tokens in order: the per-token scores added in
            # that order in float32 give the same bits (what colkern.distributed relies on).
            seq = torch.zeros(base)
            for t in range(cent.shape[0]):
                p1, s1 = C.approx_scores(shards, cent[t:t + 1], delta[t:t + 1], base, mask)
                col = torch.zeros(base)
                col[p1] = s1
                seq += col
            assert torch.equal(seq[pos], score)


def test_centroid_scores_rejects_bad_input():
    from colkern.ops import centroid_scores

    lo = torch.tensor([0, 2, 3])
    docs = torch.tensor([0, 1, 1], dtype=torch.int32)
    cent, delta = torch.tensor([[1, 0]]), torch.tensor([[0.5, 0.25]])
    d, s = centroid_scores(lo, docs, 2, cent, delta)
    assert d.tolist() == [0, 1] and s.tolist() == [0.25, 0.5]
    with pytest.raises(ValueError, match="centroid id 5 out of range"):
        centroid_scores(lo, docs, 2, torch.tensor([[5, 0]]), delta)
    with pytest.raises(ValueError, match="document id 1 out of range"):
        centroid_scores(lo, docs, 1, cent, delta)
    with pytest.raises(ValueError, match="end at len"):
        centroid_scores(torch.tensor([0, 2, 4]), docs, 2, cent, delta)
    with pytest.raises(ValueError, match="delta must be a 2-D torch.float32"):
        centroid_scores(lo, docs, 2, cent, delta.double())
    with pytest.raises(ValueError, match="allowed has 3 entries"):
        centroid_scores(lo, docs, 2, cent, delta, torch.ones(3, dtype=torch.bool))


def test_probe_imputes_the_best_unprobed_score():
    cents = torch.eye(4)
    q = torch.tensor([[0.9, 0.5, 0.2, 0.1]])
    cent, delta = C.probe(cents, q, 2)
    assert cent.tolist() == [[0, 1]]
    assert torch.allclose(delta, torch.tensor([[0.7, 0.3]]))


def test_probes_covering_all_centroids_give_exact_results(tmp_path):
    docs = clustered(150, 20, dim=32)
    Q = queries_from(docs, 8)
    index = Index.create(tmp_path / "i", dim=32, centroids=32).add(docs)
    _, ex = exact_top(Q, docs, 10)
    n = len(docs)
    r = index.search(Q, k=10, nprobe=32, candidates=n, rescore=n)
    assert r.stage1 == "centroids" and recall(r.indices, ex, 10) == 1.0
    r = index.search(Q, k=10, nprobe=None)
    assert r.stage1 == "exact" and recall(r.indices, ex, 10) == 1.0
    exact_scores, _ = exact_top(Q, docs, 10)
    assert torch.allclose(r.scores, exact_scores)


def test_default_knobs_reach_recall_on_a_clustered_corpus(tmp_path):
    docs = clustered(1200, 25)
    Q = queries_from(docs, 20)
    index = Index.create(tmp_path / "i", dim=64).add(docs)
    _, ex = exact_top(Q, docs, 10)
    r = index.search(Q, k=10, return_candidates=True)
    assert recall(r.indices, ex, 10) >= 0.95
    assert r.candidate_indices.shape[1] == CANDIDATES < len(docs)  # the candidate stage really pruned
    assert recall(index.search(Q, k=10, nprobe=1, candidates=16, rescore=16).indices, ex, 10) < 1.0
    # float x bits choosing what float MaxSim rescores: a little recall for less float work
    assert recall(index.search(Q, k=10, rescore=32).indices, ex, 10) >= 0.8


# -- centred binarisation ---------------------------------------------------------------------


def test_centring_identity_is_exact():
    g = torch.Generator().manual_seed(0)
    Q = torch.randn(5, 16, generator=g, dtype=torch.float64)
    docs = [torch.randn(int(n), 16, generator=g, dtype=torch.float64) + 3 for n in (4, 9, 1)]
    m = torch.randn(16, generator=g, dtype=torch.float64)
    plain = colkern.maxsim_ref(Q.float(), [d.float() for d in docs], dtype=torch.float64)
    centred = colkern.maxsim_ref(Q.float(), [(d - m).float() for d in docs], dtype=torch.float64)
    assert torch.allclose(plain, centred + float((Q @ m).sum()), atol=1e-4)


def test_centred_bits_beat_raw_bits_with_a_common_mean(tmp_path):
    docs = clustered(800, 30, dim=32, n_topics=40, per_doc=4, shift=3.0, noise=0.07)
    Q = queries_from(docs, 30, noise=0.07)
    _, ex = exact_top(Q, docs, 10)
    packed = colkern.pack(docs)
    raw = colkern.pack_bits(packed.values)
    r_raw = recall(colkern.maxsim_bits_topk(Q, colkern.PackedDocs(raw, packed.offsets), 10, dim=32)[1], ex, 10)
    # the index's bits stage: centred bits, query projected orthogonally to the mean
    index = Index.create(tmp_path / "i", dim=32, keep_float=False).add(docs)
    r_cen = recall(index.search(Q, k=10, nprobe=None).indices, ex, 10)
    plain = Index.create(tmp_path / "p", dim=32, keep_float=False, center=False).add(docs)
    assert recall(plain.search(Q, k=10, nprobe=None).indices, ex, 10) == r_raw  # center=False: raw bits
    assert r_cen > r_raw + 0.2


def test_bits_only_index_scores_on_the_float_scale(tmp_path):
    docs = clustered(300, 20, dim=32, shift=2.0)
    Q = queries_from(docs, 6)
    index = Index.create(tmp_path / "i", dim=32, keep_float=False).add(docs)
    r = index.search(Q, k=5, nprobe=None)
    assert r.score_kind == "bits"
    exact = colkern.maxsim(Q, docs)
    got = exact.gather(1, r.indices)
    # the bits estimate (scale * centred bits score + sum q . mean) tracks the exact score
    assert float((r.scores - got).abs().max()) < 0.25 * float(got.abs().mean())
    # and ranks exactly like maxsim_bits of the mean-projected queries over the centred bits
    packed = colkern.pack(docs)
    m = index.codebook.mean
    cen = colkern.pack_bits((packed.values - m).contiguous())
    u = m / m.norm()
    Q_perp = (Q - (Q @ u)[..., None] * u).contiguous()
    _, want = colkern.maxsim_bits_topk(Q_perp, colkern.PackedDocs(cen, packed.offsets), 5, dim=32)
    assert torch.equal(r.indices, want)


def test_auto_knobs_grow_with_the_codebook():
    from colkern.retrieval.sharded_search import auto_knobs, resolve_knobs

    assert auto_knobs(1) == auto_knobs(16384) == (16, CANDIDATES)
    assert auto_knobs(16385) == auto_knobs(32768) == (32, 2 * CANDIDATES)
    assert auto_knobs(65536) == (64, 4 * CANDIDATES)
    assert resolve_knobs("auto", "auto", 32768) == (32, 1024)
    assert resolve_knobs(None, 77, 32768) == (None, 77)  # explicit values pass through
    assert resolve_knobs("auto", "auto", None) == (16, CANDIDATES)  # no codebook yet


def test_auto_knobs_are_what_search_uses_by_default(tmp_path):
    from colkern.retrieval.sharded_search import auto_knobs

    docs = clustered(300, 20, dim=32)
    Q = queries_from(docs, 6)
    index = Index.create(tmp_path / "i", dim=32, centroids=64).add(docs)
    nprobe, cands = auto_knobs(index.codebook.num_centroids)
    auto = index.search(Q, k=10, return_candidates=True)
    explicit = index.search(Q, k=10, nprobe=nprobe, candidates=cands, return_candidates=True)
    assert auto.ids == explicit.ids and torch.equal(auto.scores, explicit.scores)
    assert torch.equal(auto.candidate_indices, explicit.candidate_indices)
    for bad in ("fast", "AUTO", 0):
        with pytest.raises(ValueError, match='nprobe must be a positive int or None or "auto"'):
            index.search(Q, nprobe=bad)
    with pytest.raises(ValueError, match='candidates must be a positive int or "auto"'):
        index.search(Q, candidates="many")
    with pytest.raises(ValueError, match="rescore must be a positive int, got 'auto'"):
        index.search(Q, rescore="auto")
