"""Hierarchical token pooling: colkern's batched pool_tokens against colpali-engine's
HierarchicalTokenPooler (scipy's Ward linkage page by page; pool_tokens_ref, the same
algorithm, where colpali-engine does not import), on the same pages in the same run.

    pytest benchmarks/bench_pool_tokens.py --benchmark-json=pool_tokens.json
    python benchmarks/report.py pool_tokens.json
    COLKERN_BENCH_QUICK=1 pytest benchmarks/bench_pool_tokens.py --benchmark-disable   # CI smoke run

Pages are clustered unit vectors from benchmarks/bits_quality.py's generator: 64 ColPali pages
of 1030 x 128 and 256 ColBERT documents of 180 x 128, pool factor 2. extra_info: docs_per_s
(pages/s), speedup_vs_baseline, and same_output_as_baseline (the fraction of pages whose
pooled vectors equal the baseline's up to order; below 1 only where heights tie).
"""
import pytest
import torch
from _harness import QUICK, case, run
from bits_quality import Generator, parse_args

from colkern._bench.cases import Case
from colkern.retrieval.pooling import pool_tokens, pool_tokens_ref

FACTOR = 2
SHAPES = {"colpali": (2, 300) if QUICK else (64, 1030), "colbert": (8, 180) if QUICK else (256, 180)}
BASELINE = "scipy per page"
PROVIDERS = [BASELINE, "colkern pool_tokens (batched)"]

_outputs = {}  # (kind, provider) -> its last output, for the same-output check


def _baseline():
    """colpali-engine's pooler when it imports, else the same algorithm written out."""
    try:
        from colkern.colpali._torchvision_compat import import_colpali_engine
        import_colpali_engine()
        from colpali_engine.compression.token_pooling import HierarchicalTokenPooler
    except ImportError:
        return "pool_tokens_ref", lambda docs: pool_tokens_ref(docs, FACTOR)
    pooler = HierarchicalTokenPooler()
    return "colpali-engine HierarchicalTokenPooler", lambda docs: pooler.pool_embeddings(docs, pool_factor=FACTOR)


def pool_case(kind: str) -> Case:
    pages, L = SHAPES[kind]
    gen = Generator(parse_args([]), seed=7)
    docs = list(gen.pages(pages, L).view(pages, L, -1))
    name, baseline = _baseline()
    c = Case(f"pool_tokens hierarchical factor {FACTOR}, {pages} pages of [{L}, 128]", 0.0, pages,
             bytes=pages * L * 128 * 4, baseline=BASELINE, note=f"baseline: {name}")
    fns = {BASELINE: lambda: baseline(docs), "colkern pool_tokens (batched)": lambda: pool_tokens(docs, FACTOR)}
    c.providers = {p: (lambda p=p: _outputs.__setitem__((kind, p), fns[p]())) for p in PROVIDERS}
    return c


def same_output(got, ref) -> float:
    """Fraction of pages whose pooled vectors match the baseline's, in any order."""
    same = 0
    for g, r in zip(got, ref):
        if g.shape == r.shape:
            d = torch.cdist(g.float(), r.float(), compute_mode="donot_use_mm_for_euclid_dist")
            same += bool(d.min(1).values.max() < 1e-4 and d.min(0).values.max() < 1e-4)
    return same / max(1, len(ref))


@pytest.mark.parametrize("provider", PROVIDERS, ids=["scipy", "colkern"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_pool_tokens(benchmark, kind, provider):
    c = case(f"pool-{kind}", lambda: pool_case(kind))
    # A full scipy round over 64 ColPali pages takes about 20 s: one round besides the warm-up.
    rounds = 1 if provider == BASELINE and kind == "colpali" else 3
    extra = {}
    if provider != BASELINE and (kind, BASELINE) in _outputs:
        c.providers[provider]()
        extra["same_output_as_baseline"] = same_output(_outputs[kind, provider], _outputs[kind, BASELINE])
    run(benchmark, f"pool-{kind}", c, provider, rounds=rounds, extra=extra)
    if "same_output_as_baseline" in extra:
        assert extra["same_output_as_baseline"] >= 0.95, "pool_tokens no longer pools as colpali-engine does"
