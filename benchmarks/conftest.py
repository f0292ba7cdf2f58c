"""Benchmark sizes: the issue's full sizes by default; COLKERN_BENCH_QUICK=1 (CI) shrinks them."""
import os

import pytest

QUICK = os.environ.get("COLKERN_BENCH_QUICK") == "1"


@pytest.fixture(scope="session")
def quick():
    return QUICK
