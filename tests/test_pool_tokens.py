"""colkern pool_tokens: hierarchical pooling against scipy (colpali-engine's algorithm) and
colpali-engine itself, grid pooling against a hand loop, containers, dtypes and bad input."""
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colkern.ops import PackedDocs, pack
from colkern.retrieval import pooling
from colkern.retrieval.pooling import pool_tokens, pool_tokens_ref

scipy_hierarchy = pytest.importorskip("scipy.cluster.hierarchy")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def unit(L, D=128, seed=0, clusters=0, shift=0.0):
    """L unit vectors; with clusters > 0 drawn around that many centres (ColPali-like pages);
    shift adds a direction common to all (real embeddings are anisotropic)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(L, D, generator=g)
    if clusters:
        centres = torch.nn.functional.normalize(torch.randn(clusters, D, generator=g), dim=1)
        x = centres[torch.randint(0, clusters, (L,), generator=g)] + 0.05 * x
    x = torch.nn.functional.normalize(x, dim=1) + shift * torch.nn.functional.normalize(torch.ones(D), dim=0)
    return torch.nn.functional.normalize(x, dim=1)


def scipy_partition(page, factor):
    """colpali-engine's clustering, written out: Ward on the rows of 1 - E E^T, cut at
    max(L // factor, 1) clusters. -> labels numbered in order of first token."""
    x = page.float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z = scipy_hierarchy.linkage(1 - (x @ x.T).numpy(), metric="euclidean", method="ward")
    raw = scipy_hierarchy.fcluster(Z, t=max(x.shape[0] // factor, 1), criterion="maxclust").tolist()
    return canonical(raw)


def canonical(labels):
    seen = {}
    return [seen.setdefault(v, len(seen)) for v in labels]


def our_partition(page, factor):
    """The clusters pool_tokens forms (its batched clustering, which returns the labels)."""
    L = page.shape[0]
    labels, n = pooling._ward_batch(page.float()[None], torch.tensor([L]), torch.tensor([L - max(L // factor, 1)]))
    assert int(n[0]) == int(labels.max()) + 1
    return labels[0].tolist()


def means(page, labels, normalize=True):
    """fp64 cluster means, clusters numbered 0.. in order of first token."""
    labels = torch.tensor(labels)
    n = int(labels.max()) + 1
    out = torch.zeros(n, page.shape[1], dtype=torch.float64).index_add_(0, labels, page.double())
    out /= torch.bincount(labels, minlength=n)[:, None]
    return torch.nn.functional.normalize(out, dim=1) if normalize else out


# ---- hierarchical: the same clusters as scipy / colpali-engine -------------------------------

@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("L,D,clusters,shift", [(2, 128, 0, 0), (3, 128, 0, 0), (7, 16, 0, 0), (33, 128, 0, 0),
                                                (97, 128, 6, 0), (180, 128, 0, 0), (300, 48, 12, 0),
                                                (150, 128, 10, 3.0)])
def test_clusters_match_scipy(L, D, clusters, shift, factor):
    page = unit(L, D, seed=L + factor, clusters=clusters, shift=shift)
    assert our_partition(page, factor) == scipy_partition(page, factor)


def test_colpali_sized_page_matches_scipy():
    page = unit(1030, 128, seed=5, clusters=40)
    assert our_partition(page, 3) == scipy_partition(page, 3)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_pooled_vectors_are_normalised_cluster_means(factor):
    docs = [unit(L, 64, seed=L) for L in (5, 40, 129, 2, 64)]
    out = pool_tokens(docs, factor)
    raw = pool_tokens(docs, factor, normalize=False)
    for page, got, got_raw in zip(docs, out, raw):
        labels = scipy_partition(page, factor)
        assert got.shape == (max(page.shape[0] // factor, 1), 64)
        assert torch.allclose(got.double(), means(page, labels), atol=2e-6)
        assert torch.allclose(got_raw.double(), means(page, labels, normalize=False), atol=2e-6)
        assert torch.allclose(got.norm(dim=1), torch.ones(got.shape[0]), atol=1e-5)


def test_matches_the_scipy_reference_function():
    docs = [unit(L, 32, seed=L) for L in (0, 1, 2, 9, 50, 121)]
    for factor in (1, 2, 3):
        for got, ref in zip(pool_tokens(docs, factor), pool_tokens_ref(docs, factor)):
            assert got.shape == ref.shape and torch.allclose(got, ref, atol=2e-6)


@pytest.fixture(scope="module")
def colpali_pooler():
    try:
        from colkern.colpali._torchvision_compat import import_colpali_engine
        import_colpali_engine()
        from colpali_engine.compression.token_pooling import HierarchicalTokenPooler
    except ImportError as e:
        pytest.skip(f"colpali-engine not importable: {e}")
    return HierarchicalTokenPooler()


@pytest.mark.parametrize("factor", [2, 3])
def test_matches_colpali_engine(colpali_pooler, factor):
    docs = [unit(L, 128, seed=L, clusters=c) for L, c in ((2, 0), (31, 0), (180, 0), (400, 20))]
    res = colpali_pooler.pool_embeddings(docs, pool_factor=factor, return_dict=True)
    ours = pool_tokens(docs, factor)
    for page, theirs, groups, got in zip(docs, res.pooled_embeddings, res.cluster_id_to_indices, ours):
        labels = [0] * page.shape[0]
        for cid, (idx,) in groups.items():
            for i in idx.tolist():
                labels[i] = cid
        assert our_partition(page, factor) == canonical(labels)
        # colpali-engine lists clusters in dendrogram order, pool_tokens by first token
        order = [labels.index(c) for c in range(len(groups)) if c in labels and groups[c][0].numel()]
        theirs_by_first = theirs[torch.argsort(torch.tensor(order))]
        assert got.shape == theirs.shape
        assert torch.allclose(got, theirs_by_first, atol=2e-6)


def test_ties_follow_scipy():
    # Exact duplicates merge at height 0 first; a page of one repeated vector is one cluster
    # (scipy's cut takes every merge tied at the cut's height).
    page = unit(300, 64, seed=1)
    page[100:200] = 0
    page[200:250] = page[0]
    assert our_partition(page, 2) == scipy_partition(page, 2)
    same = unit(1, 64).repeat(50, 1)
    assert scipy_partition(same, 2) == [0] * 50
    assert pool_tokens([same], 2)[0].shape == (1, 64)


def test_batches_do_not_mix_pages(monkeypatch):
    docs = [unit(L, 32, seed=i) for i, L in enumerate([50, 3, 0, 50, 17, 1, 49, 120])]
    alone = [pool_tokens([d], 3)[0] for d in docs]
    monkeypatch.setattr(pooling, "_BATCH_ENTRIES", 3 * 50 * 50)  # several batches of mixed lengths
    for got, ref in zip(pool_tokens(docs, 3), alone):
        assert torch.equal(got, ref)


# ---- grid ------------------------------------------------------------------------------------

def grid_loop(page, rows, cols, br, bc, normalize=True):
    x = page.double().view(rows, cols, -1)
    out = []
    for r in range(0, rows, br):
        for c in range(0, cols, bc):
            out.append(x[r:r + br, c:c + bc].reshape(-1, x.shape[2]).mean(0))
    out = torch.stack(out)
    return torch.nn.functional.normalize(out, dim=1) if normalize else out


@pytest.mark.parametrize("grid,factor,shape,block", [
    ((32, 32), 4, "square", (2, 2)), ((32, 32), 2, "rows", (1, 2)), ((32, 32), 9, "square", (3, 3)),
    ((5, 7), 4, "square", (2, 2)), ((5, 7), 3, "cols", (3, 1)), ((5, 7), 6, (2, 3), (2, 3)),
    ((1, 1), 4, "square", (2, 2)), ((4, 4), 16, (4, 4), (4, 4))])
@pytest.mark.parametrize("normalize", [True, False])
def test_grid_blocks_match_a_hand_loop(grid, factor, shape, block, normalize):
    rows, cols = grid
    docs = [torch.randn(rows * cols, 24, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    out = pool_tokens(docs, factor, method="grid", grid=grid, shape=shape, normalize=normalize)
    for page, got in zip(docs, out):
        ref = grid_loop(page, rows, cols, *block, normalize=normalize)
        assert got.shape == (math.ceil(rows / block[0]) * math.ceil(cols / block[1]), 24)
        assert torch.allclose(got.double(), ref, atol=2e-6)


def test_grid_errors_name_grid_and_shape():
    docs = [torch.randn(1024, 8), torch.randn(1030, 8)]
    with pytest.raises(ValueError, match=r"grid=\(32, 32\).*page 1 has 1030"):
        pool_tokens(docs, 4, method="grid", grid=(32, 32))
    with pytest.raises(ValueError, match="grid"):
        pool_tokens(docs[:1], 4, method="grid")
    with pytest.raises(ValueError, match="grid"):
        pool_tokens(docs[:1], 4, method="grid", grid=(32, 0))
    with pytest.raises(ValueError, match="shape='square' needs a square factor"):
        pool_tokens(docs[:1], 2, method="grid", grid=(32, 32))
    with pytest.raises(ValueError, match=r"shape \(2, 3\) holds 6 patches, but factor is 4"):
        pool_tokens(docs[:1], 4, method="grid", grid=(32, 32), shape=(2, 3))
    with pytest.raises(ValueError, match="shape must be"):
        pool_tokens(docs[:1], 4, method="grid", grid=(32, 32), shape="diagonal")


# ---- containers, dtypes, edge cases ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("method", ["hierarchical", "grid"])
def test_dtype_preserved_fp32_accumulation(dtype, method):
    docs = [unit(64, 32, seed=i).to(dtype) for i in range(3)]
    kw = {"grid": (8, 8)} if method == "grid" else {}
    out = pool_tokens(docs, 4, method=method, **kw)
    ref = pool_tokens([d.float() for d in docs], 4, method=method, **kw)
    for got, r in zip(out, ref):
        assert got.dtype == dtype
        assert torch.equal(got, r.to(dtype))  # the same fp32 result, rounded once


@pytest.mark.parametrize("method", ["hierarchical", "grid"])
def test_packed_docs_round_trip(method):
    docs = [unit(36, 16, seed=i) for i in range(4)]
    kw = {"grid": (6, 6), "shape": "rows"} if method == "grid" else {}
    as_list = pool_tokens(docs, 2, method=method, **kw)
    packed = pool_tokens(pack(docs), 2, method=method, **kw)
    assert isinstance(packed, PackedDocs)
    assert packed.offsets.tolist() == [0, *torch.cumsum(torch.tensor([len(p) for p in as_list]), 0).tolist()]
    assert torch.equal(packed.values, torch.cat(as_list))


def test_empty_pages_lists_and_factor_one():
    docs = [torch.empty(0, 8), unit(1, 8), unit(5, 8)]
    out = pool_tokens(docs, 2)
    assert [tuple(o.shape) for o in out] == [(0, 8), (1, 8), (2, 8)]
    assert pool_tokens([], 2) == []
    same = pool_tokens(docs, 1)
    assert all(torch.equal(a, b) for a, b in zip(same, docs))
    assert same[2].data_ptr() != docs[2].data_ptr()
    empty = pool_tokens(PackedDocs(torch.empty(0, 8), torch.zeros(1, dtype=torch.int64)), 2)
    assert len(empty) == 0 and empty.values.shape == (0, 8)


def test_bad_input_names_the_argument():
    docs = [unit(10, 8), unit(10, 8)]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="factor must be an int >= 1"):
            pool_tokens(docs, bad)
    for bad in (2.0, True, "2", None):
        with pytest.raises(TypeError, match="factor must be an int"):
            pool_tokens(docs, bad)
    with pytest.raises(ValueError, match="method must be one of"):
        pool_tokens(docs, 2, method="kmeans")
    with pytest.raises(ValueError, match="grid and shape are for method='grid'"):
        pool_tokens(docs, 2, grid=(2, 5))
    with pytest.raises(ValueError, match=r"docs\[1\] has dim 9 but docs\[0\] has dim 8"):
        pool_tokens([unit(10, 8), unit(10, 9)], 2)
    with pytest.raises(ValueError, match=r"docs\[1\] must be a 2-D"):
        pool_tokens([unit(10, 8), torch.randn(2, 3, 8)], 2)
    with pytest.raises(ValueError, match=r"docs\[1\] is torch.float16"):
        pool_tokens([unit(10, 8), unit(10, 8).half()], 2)
    with pytest.raises(ValueError, match=r"docs\[0\] must be float32, float16 or bfloat16"):
        pool_tokens([torch.ones(4, 8, dtype=torch.int32)], 2)
    with pytest.raises(ValueError, match=r"docs\[0\] must be float32"):
        pool_tokens([unit(4, 8).double()], 2)
    with pytest.raises(TypeError, match="docs must be a list"):
        pool_tokens(unit(10, 8), 2)
    with pytest.raises(ValueError, match="docs.offsets must rise from 0 to 10"):
        pool_tokens(PackedDocs(unit(10, 8), torch.tensor([0, 4, 9])), 2)


# ---- properties ------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(0, 70), min_size=1, max_size=6), factor=st.integers(1, 5),
       D=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_random_lengths_match_scipy(lengths, factor, D, seed):
    docs = [unit(L, D, seed=seed + i) for i, L in enumerate(lengths)]
    out = pool_tokens(docs, factor)
    assert len(out) == len(docs)
    for page, got in zip(docs, out):
        L = page.shape[0]
        if factor == 1 or L < 2:
            expected = page if factor == 1 else torch.nn.functional.normalize(page, dim=1)
            assert torch.allclose(got, expected, atol=1e-6)
            continue
        labels = scipy_partition(page, factor)
        assert got.shape[0] == max(labels) + 1 == max(L // factor, 1)
        assert torch.allclose(got.double(), means(page, labels), atol=2e-6)
