"""MaxSim: colkern against the baselines a user has today, on the same data in the same run.

    pytest benchmarks/bench_maxsim.py --benchmark-json=bench.json
    python benchmarks/report.py bench.json      # the README table

Each case's baseline runs first; later providers record their speed-up over it (and over the
fastest torch provider) in extra_info
(with docs/s, GFLOP/s and % of the FMA ceiling measured on this machine).
"""
import os

import pytest
import torch

from colkern import bench

QUICK = os.environ.get("COLKERN_BENCH_QUICK") == "1"
_CEILING = {}
_SECONDS = {}  # (kind, provider) -> median seconds, for ratios within this run


def _ceiling():
    if "gflops" not in _CEILING:
        _CEILING["gflops"] = bench.fma_ceiling_gflops()
    return _CEILING["gflops"]


def _build(kind):
    if kind == "colpali_pages":
        return bench.colpali_pages_case(n_docs=100 if QUICK else 2000)
    if kind == "ragged":
        return bench.ragged_case(n_docs=1000 if QUICK else 20000)
    if kind == "multi_query":
        return bench.multi_query_case(n_queries=4 if QUICK else 64, n_docs=50 if QUICK else 2000)
    if kind == "topk":
        return bench.topk_case(n_docs=2000 if QUICK else 200_000, pool_rows=20_000 if QUICK else 1_000_000)
    raise ValueError(kind)


_CASES = {}


def _case(kind):
    if kind not in _CASES:
        _CASES.clear()  # one case's tensors in memory at a time
        _CASES[kind] = _build(kind)
    return _CASES[kind]


PARAMS = [
    ("colpali_pages", "colpali-engine fp32"), ("colpali_pages", "pre-padded einsum fp32"),
    ("colpali_pages", "colkern fp32"), ("colpali_pages", "colkern bf16"),
    ("ragged", "pad+einsum fp32"), ("ragged", "torch.mm+segment_reduce fp32"), ("ragged", "colkern fp32"),
    ("multi_query", "colkern fp32"),
    ("topk", "colkern fp32 topk"),
]


def _peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _current_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak_rss():
    try:  # Linux: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@pytest.mark.parametrize("kind,provider", PARAMS, ids=[f"{k}-{p}" for k, p in PARAMS])
def test_maxsim(benchmark, kind, provider):
    case = _case(kind)
    fn = case.providers[provider]
    benchmark.group = case.name
    fn()  # warm-up outside the timing
    extra = {"case": case.name, "provider": provider, "threads": torch.get_num_threads(),
             "cpu": bench.cpu_name(), "fma_ceiling_gflops": _ceiling(), "baseline": case.baseline,
             "note": case.note}
    if kind == "topk" and _reset_peak_rss():
        before = _current_rss_bytes()
        fn()
        extra["peak_extra_bytes"] = _peak_rss_bytes() - before
    benchmark.pedantic(fn, rounds=1 if kind in ("multi_query", "topk") and not QUICK else 3, iterations=1)
    if benchmark.stats is not None and benchmark.stats.stats.data:
        seconds = benchmark.stats.stats.median
        extra.update(docs_per_s=case.docs / seconds, gflops=case.flops / seconds / 1e9,
                     pct_fma_ceiling=100 * case.flops / seconds / 1e9 / _ceiling())
        _SECONDS[kind, provider] = seconds
        if provider != case.baseline and (kind, case.baseline) in _SECONDS:
            extra["speedup_vs_baseline"] = _SECONDS[kind, case.baseline] / seconds
        # The fastest non-colkern provider measured so far: the strongest thing a user could run.
        others = [t for (k, p), t in _SECONDS.items() if k == kind and not p.startswith("colkern")]
        if provider.startswith("colkern") and others:
            extra["speedup_vs_best_torch"] = min(others) / seconds
    benchmark.extra_info.update(extra)
