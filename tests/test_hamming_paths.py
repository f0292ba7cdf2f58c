"""The hamming kernels of CPUs this one is not: COLKERN_DISABLE turns off AVX-512 extensions,
so the AVX-512 path of Skylake-class Xeons (no VPOPCNTDQ: the AVX-512BW nibble-table kernel)
runs and is checked bit for bit on a CPU that has VPOPCNTDQ. The variable is read once per
process, so the hamming tests of test_bits.py run again in a subprocess."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ISAS

import colkern

HERE = Path(__file__).resolve().parent


def _run(code_or_args, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, *code_or_args], env=env, cwd=HERE.parent, capture_output=True,
                          text=True, timeout=900)


def test_disable_is_reported_and_typos_are_rejected():
    code = "import colkern; print(colkern.backend_info()['cpu_extensions'])"
    got = _run(["-c", code], {"COLKERN_DISABLE": "avx512_vpopcntdq"})
    assert got.returncode == 0, got.stderr
    assert "avx512_vpopcntdq" not in got.stdout
    bad = _run(["-c", code], {"COLKERN_DISABLE": "avx512_vpopcnt"})
    assert bad.returncode != 0 and "unknown CPU extension 'avx512_vpopcnt'" in bad.stderr


@pytest.mark.skipif("avx512" not in ISAS or "avx512_vpopcntdq" not in colkern.backend_info()["cpu_extensions"],
                    reason="the CPU lacks VPOPCNTDQ: the main run already covers the AVX-512BW kernel")
def test_hamming_without_vpopcntdq():
    got = _run(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(HERE / "test_bits.py"),
                "-k", "hamming or topk or property"], {"COLKERN_DISABLE": "avx512_vpopcntdq"})
    assert got.returncode == 0, got.stdout[-4000:] + got.stderr[-2000:]
