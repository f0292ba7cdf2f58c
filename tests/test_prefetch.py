"""colkern.retrieval.prefetch: read-ahead advice for the row ranges a search stage scores."""
import mmap
import sys

import pytest
import torch

from colkern.retrieval import prefetch


def test_prefetch_advises_each_nonempty_range_and_changes_nothing():
    t = torch.randn(1000, 64)  # 256-byte rows: 16 to a 4 KiB page
    before = t.clone()
    n = prefetch.prefetch_rows(t, torch.tensor([0, 10, 999, 500]), torch.tensor([5, 0, 1, 7]))
    assert n == (3 if sys.platform.startswith("linux") else 0)
    assert torch.equal(t, before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is used on Linux only")
def test_prefetch_merges_ranges_on_the_same_or_next_page(monkeypatch):
    calls = []
    monkeypatch.setattr(prefetch, "_madvise", lambda addr, size, advice: calls.append((addr, size)))
    buf = mmap.mmap(-1, 4096 * 256)  # anonymous mapping: page-aligned
    t = torch.frombuffer(buf, dtype=torch.float32).view(4096, 64)  # 256-byte rows, 16 per page
    base = t.data_ptr()
    if prefetch._PAGE != 4096:
        pytest.skip("the expected ranges assume 4 KiB pages")
    assert base % prefetch._PAGE == 0
    # rows 0-4 and 8-9 share page 0; 17-20 is page 1 (next page: merged); 100-101 page 6 (a gap);
    # the order of the ranges does not matter.
    n = prefetch.prefetch_rows(t, torch.tensor([100, 17, 8, 0]), torch.tensor([2, 4, 2, 5]))
    assert n == 2
    assert calls == [(base, 21 * 256), (base + 6 * prefetch._PAGE, (102 - 96) * 256)]
    assert prefetch.prefetch_rows(torch.empty(0, 64), torch.tensor([0]), torch.tensor([0])) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise is used on Linux only")
def test_prefetch_on_a_memory_mapped_shard(tmp_path):
    import colkern

    g = torch.Generator().manual_seed(0)
    docs = [torch.randn(int(n), 16, generator=g) for n in torch.randint(1, 40, (60,), generator=g)]
    index = colkern.Index.create(tmp_path / "i.idx", dim=16)
    index.add(docs, ids=[f"d{i}" for i in range(len(docs))])
    index = colkern.Index.open(tmp_path / "i.idx")
    sh = index.shards[0]
    assert prefetch.prefetch_rows(sh.floats, sh.starts[:5], sh.lengths[:5]) == 1  # adjacent rows: one call
    assert prefetch.prefetch_rows(sh.bits, sh.starts, sh.lengths) == 1
    q = torch.randn(4, 16, generator=g)
    exact = index.search(q, k=5, nprobe=None)
    staged = index.search(q, k=5, nprobe=index.codebook.num_centroids, candidates=60, rescore=60)
    assert staged.ids == exact.ids


def test_prefetch_whole_is_one_call_over_the_tensor(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("madvise is used on Linux only")
    calls = []
    monkeypatch.setattr(prefetch, "_madvise", lambda addr, size, advice: calls.append((addr, size)))
    t = torch.arange(10_000, dtype=torch.int32)
    assert prefetch.prefetch_whole(t) == 1
    lo = t.data_ptr() - t.data_ptr() % prefetch._PAGE
    assert calls == [(lo, t.data_ptr() + 40_000 - lo)]
    assert prefetch.prefetch_whole(torch.empty(0, dtype=torch.int32)) == 0
    assert prefetch.prefetch_whole(t[::2]) == 0  # not contiguous: no advice
