"""MaxSim: colkern against the baselines a user has today, on the same data in the same run.

    pytest benchmarks/bench_maxsim.py --benchmark-json=bench.json
    python benchmarks/report.py bench.json      # the README table

Each case's baseline runs first; later providers record their speed-up over it (and over the
fastest torch provider) in extra_info, with docs/s, GFLOP/s and % of the FMA ceiling measured
on this machine. COLKERN_BENCH_QUICK=1 shrinks every case (CI runs them once, untimed).
"""
import pytest
from _harness import QUICK, case, run

import colkern
from colkern._bench import cases as bench


def _build(kind):
    kind = kind.split("@")[0]  # "<kind>@<isa>": the same case at a capped ISA level
    if kind == "colpali_pages":
        return bench.colpali_pages_case(n_docs=100 if QUICK else 2000)
    if kind == "ragged":
        return bench.ragged_case(n_docs=1000 if QUICK else 20000)
    if kind == "multi_query":
        return bench.multi_query_case(n_queries=4 if QUICK else 64, n_docs=50 if QUICK else 2000)
    if kind == "topk":
        return bench.topk_case(n_docs=2000 if QUICK else 200_000, pool_rows=20_000 if QUICK else 1_000_000)
    raise ValueError(kind)


PARAMS = [
    ("colpali_pages", "colpali-engine fp32"), ("colpali_pages", "pre-padded einsum fp32"),
    ("colpali_pages", "colkern fp32"), ("colpali_pages", "colkern bf16"),
    ("ragged", "pad+einsum fp32"), ("ragged", "torch.mm+segment_reduce fp32"), ("ragged", "colkern fp32"),
    # bf16 vs fp32 at the AVX2 level too (the bar: bf16 >= 1x fp32 wherever AMX is absent)
    ("colpali_pages@avx2", "colkern fp32"), ("colpali_pages@avx2", "colkern bf16"),
    ("multi_query", "colkern fp32"),
    ("topk", "colkern fp32 topk"),
]


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _topk_peak_extra_bytes(fn):
    """Peak resident memory a top-k call adds beyond what is already resident, or None where
    the peak cannot be reset (writing 5 to /proc/self/clear_refs resets VmHWM on Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    before = _status_bytes("VmRSS")
    fn()
    return _status_bytes("VmHWM") - before


@pytest.mark.parametrize("kind,provider", PARAMS, ids=[f"{k}-{p}" for k, p in PARAMS])
def test_maxsim(benchmark, kind, provider):
    c = case(kind, lambda: _build(kind))
    extra = {}
    if kind == "topk":
        peak = _topk_peak_extra_bytes(c.providers[provider])
        if peak is not None:
            extra["peak_extra_bytes"] = peak
    rounds = 1 if kind in ("multi_query", "topk") and not QUICK else 3
    isa = kind.split("@")[1] if "@" in kind else colkern.backend_info()["cpu_isa_cap"]
    with colkern.use_isa(isa):
        run(benchmark, kind, c, provider, rounds=rounds, extra=extra)
