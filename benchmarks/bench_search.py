"""Search over an index: colkern.Index (centroid candidates + rescoring, and exact mode) against
brute-force exact MaxSim and the single-file two-stage colkern.search, on one clustered corpus
with a common mean direction (benchmarks/bits_quality.py's model), queries one at a time.

    pytest benchmarks/bench_search.py --benchmark-json=search.json
    COLKERN_BENCH_QUICK=1 pytest benchmarks/bench_search.py --benchmark-disable   # CI smoke run

Each round answers every query (batch 1); docs_per_s in extra_info is queries per second.
extra_info["recall@10"] is measured against exact float MaxSim top-10 on the stored fp16
floats. Bits-only indexes with and without centred binarisation show what centring buys.
The 100M-vector measurement is benchmarks/search_at_scale.py.
"""
import tempfile

import pytest
import torch
from _harness import QUICK, case, run
from bits_quality import Generator
from bits_quality import parse_args as corpus_args

import colkern
from colkern._bench.cases import Case
from colkern.retrieval.index import MultiVectorIndex
from colkern.retrieval.search import search as two_stage
from colkern.retrieval.sharded import Index

K = 10
PROVIDERS = ["exact maxsim_topk fp16", "colkern.search hamming + float", "Index exact (nprobe=None)",
             "Index default", "Index fast (nprobe 8, candidates 128)", "Index bits only, centred",
             "Index bits only, not centred"]


def search_case():
    n_docs, L, nq = (300, 100, 5) if QUICK else (4000, 250, 30)
    gen = Generator(corpus_args(["--mean-shift", "1.0"]), 0)
    floats = torch.cat([gen.pages(100, L) for _ in range(n_docs // 100)]).half()
    offsets = torch.arange(n_docs + 1, dtype=torch.int64) * L
    docs = colkern.PackedDocs(floats, offsets)
    tmp = tempfile.TemporaryDirectory(prefix="colkern-bench-search-")
    index = Index.create(f"{tmp.name}/f", 128).add(docs)
    bits_c = Index.create(f"{tmp.name}/c", 128, keep_float=False).add(docs)
    bits_r = Index.create(f"{tmp.name}/r", 128, keep_float=False, center=False).add(docs)
    single = MultiVectorIndex.from_arrays(colkern.pack_bits(floats), offsets, 128, floats=floats)
    targets = torch.randint(0, n_docs, (nq,), generator=torch.Generator().manual_seed(1)).tolist()
    Q, mask = gen.queries(lambda t: floats[t * L:(t + 1) * L], targets)
    qs = [Q[b][mask[b]].contiguous() for b in range(nq)]

    def each(fn):
        return lambda: [fn(q) for q in qs]

    c = Case(f"search {nq} queries x {n_docs} pages x {L} vectors (batch 1)", 0.0, nq, baseline=PROVIDERS[0],
             note="docs_per_s = queries per second")
    c.providers = {
        PROVIDERS[0]: each(lambda q: colkern.maxsim_topk(q.half(), docs, K)[1]),
        PROVIDERS[1]: each(lambda q: two_stage(q, single, K).indices),
        PROVIDERS[2]: each(lambda q: index.search(q, K, nprobe=None).indices),
        PROVIDERS[3]: each(lambda q: index.search(q, K).indices),
        PROVIDERS[4]: each(lambda q: index.search(q, K, nprobe=8, candidates=128, rescore=128).indices),
        PROVIDERS[5]: each(lambda q: bits_c.search(q, K).indices),
        PROVIDERS[6]: each(lambda q: bits_r.search(q, K).indices),
    }
    exact = c.providers[PROVIDERS[0]]()
    c.recall = {p: sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(fn(), exact)) / (K * nq)
                for p, fn in c.providers.items()}
    c.keep_alive = (tmp, index, bits_c, bits_r)
    return c


@pytest.mark.parametrize("provider", PROVIDERS)
def test_search(benchmark, provider):
    c = case("search", search_case)
    run(benchmark, "search", c, provider, rounds=1 if QUICK else 3, extra={"recall@10": c.recall[provider]})
