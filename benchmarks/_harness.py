"""Shared pytest-benchmark plumbing: one case's tensors at a time, ratios within the same run,
and the extra_info every report row needs (CPU, threads, measured FMA ceiling)."""
import os

import torch

import colkern
from colkern._bench import cases as bench

QUICK = os.environ.get("COLKERN_BENCH_QUICK") == "1"

_cases = {}
_seconds = {}  # (kind, provider) -> median seconds in this run


def case(kind, build):
    """The case `kind`, built once by build(); the previous case's tensors are released."""
    if kind not in _cases:
        _cases.clear()
        _cases[kind] = build()
    return _cases[kind]


def _path_info():
    """Which kernels ran: the ISA level in force, the AVX-512 extensions used at that level
    (COLKERN_DISABLE can turn them off to time other CPUs' paths) and the bf16 widening."""
    info = colkern.backend_info()
    return {"isa_active": info["cpu_isa_active"], "isa_detected": info["cpu_isa_detected"],
            "cpu_extensions": info["cpu_extensions"] if info["cpu_isa_active"] == "avx512" else [],
            "colkern_disable": os.environ.get("COLKERN_DISABLE", ""), "bf16_widen": info["cpu_bf16_widen"]}


def run(benchmark, kind, c, provider, rounds=3, extra=None):
    """Times one provider of case c and records docs/s, GFLOP/s or GB/s and the speed-ups."""
    fn = c.providers[provider]
    benchmark.group = c.name
    fn()  # warm-up outside the timing
    # The ceiling is measured right before the timing: on a shared VM the cores this process
    # gets vary over minutes, and a ceiling taken once would misstate % of peak.
    ceiling = bench.fma_ceiling_gflops()
    info = {"case": c.name, "provider": provider, "threads": torch.get_num_threads(),
            "cpu": bench.cpu_name(), "fma_ceiling_gflops": ceiling, "baseline": c.baseline,
            "note": c.note, **_path_info(), **(extra or {})}
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    if benchmark.stats is not None and benchmark.stats.stats.data:
        seconds = benchmark.stats.stats.median
        info.update(docs_per_s=c.docs / seconds, gflops=c.flops / seconds / 1e9,
                    pct_fma_ceiling=100 * c.flops / seconds / 1e9 / ceiling,
                    gb_per_s=c.bytes / seconds / 1e9, pairs_per_s=c.pairs / seconds)
        _seconds[kind, provider] = seconds
        if provider != c.baseline and (kind, c.baseline) in _seconds:
            info["speedup_vs_baseline"] = _seconds[kind, c.baseline] / seconds
        # The fastest non-colkern provider so far: the strongest thing a user could run.
        others = [t for (k, p), t in _seconds.items() if k == kind and not p.startswith("colkern")]
        if provider.startswith("colkern") and others:
            info["speedup_vs_best_torch"] = min(others) / seconds
        for (k, p), t in _seconds.items():
            if k == kind and p != provider:
                info[f"time_ratio_vs[{p}]"] = seconds / t
    benchmark.extra_info.update(info)
