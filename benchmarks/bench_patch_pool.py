"""Patch pooling: colkern against the three-op torch baseline and one torch reduction pass
(x.sum(1), the memory-speed yardstick), on the same tensors in the same run.

    pytest benchmarks/bench_patch_pool.py --benchmark-json=pool.json
    python benchmarks/report.py pool.json

extra_info holds GB/s (input bytes / time), the speed-up over the baseline, and
time_ratio_vs[torch x.sum(1) (one pass)]: the target is <= 1.3.
"""
import pytest
import torch
from _harness import QUICK, case, run

from colkern._bench import cases as bench

SHAPES = [(2048, torch.float32), (128, torch.float32), (2048, torch.bfloat16), (128, torch.bfloat16)]
PROVIDERS = ["torch mean+amax+std (masked)", "torch x.sum(1) (one pass)", "colkern patch_pool (masked)"]
PARAMS = [(D, dt, p) for D, dt in SHAPES for p in PROVIDERS]


@pytest.mark.parametrize("D,dtype,provider", PARAMS,
                         ids=[f"{D}-{str(dt)[6:]}-{p.split()[1]}" for D, dt, p in PARAMS])
def test_patch_pool(benchmark, D, dtype, provider):
    kind = f"pool-{D}-{dtype}"
    c = case(kind, lambda: bench.patch_pool_case(pages=4 if QUICK else 64, D=D, dtype=dtype))
    # A D = 128 call takes about a millisecond: 50 rounds give a steadier median on a shared VM
    # for the same few seconds that 10 rounds of D = 2048 take.
    run(benchmark, kind, c, provider, rounds=3 if QUICK else (10 if D == 2048 else 50))
