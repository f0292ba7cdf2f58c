"""Binary quantisation: float x bits and hamming MaxSim against colkern's own fp32 MaxSim on the
same pages (Q [32, 128] x 2000 pages of 1030 vectors), at every ISA level this CPU runs, each
level's ratios against that level's fp32. extra_info holds pairs_per_s (query token x doc vector
pairs per second), the speed-up over fp32 and the path that ran (isa_active, cpu_extensions);
issue targets: hamming >= 10x at avx512 (with or without VPOPCNTDQ), >= 8x at avx2; bits >= 1x.

    pytest benchmarks/bench_bits.py --benchmark-json=bits.json
    # the AVX-512 path of CPUs without VPOPCNTDQ (Skylake / Cascade Lake), on one with it:
    COLKERN_DISABLE=avx512_vpopcntdq pytest benchmarks/bench_bits.py --benchmark-json=bits_novpopcnt.json
"""
import pytest
from _harness import QUICK, case, run

import colkern
from colkern._bench import cases as bench

PROVIDERS = ["colkern fp32", "colkern bits pm1 (float x bits)", "colkern hamming (bits x bits)"]


def _levels():
    info = colkern.backend_info()
    order = ["scalar", "avx2", "avx512"]
    best = order.index(info["cpu_isa_detected"])
    return [i for i in order[1 : best + 1] if i in info["cpu_isa_compiled"]] or ["scalar"]


_shared = {}  # one data set for every level: the case key differs so each level has its own fp32


def _bits_case():
    if "c" not in _shared:
        _shared["c"] = bench.bits_case(n_docs=50 if QUICK else 2000)
    return _shared["c"]


@pytest.mark.parametrize("isa", _levels())
@pytest.mark.parametrize("provider", PROVIDERS)
def test_bits(benchmark, isa, provider):
    c = case(f"bits@{isa}", _bits_case)
    with colkern.use_isa(isa):
        run(benchmark, f"bits@{isa}", c, provider, rounds=3)
