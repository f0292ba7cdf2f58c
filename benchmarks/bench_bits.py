"""Binary quantisation: float x bits and hamming MaxSim against colkern's own fp32 MaxSim on the
same pages (Q [32, 128] x 2000 pages of 1030 vectors). extra_info holds pairs_per_s (query token x
doc vector pairs per second) and the speed-up over fp32; issue targets: hamming >= 10x, bits >= 1x.

    pytest benchmarks/bench_bits.py --benchmark-json=bits.json
"""
import pytest
from _harness import QUICK, case, run

from colkern._bench import cases as bench

PROVIDERS = ["colkern fp32", "colkern bits pm1 (float x bits)", "colkern hamming (bits x bits)"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bits(benchmark, provider):
    c = case("bits", lambda: bench.bits_case(n_docs=50 if QUICK else 2000))
    run(benchmark, "bits", c, provider, rounds=3)
