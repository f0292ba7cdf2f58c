"""Loads the C++ extension and reports which backend runs where."""
from __future__ import annotations

import contextlib
import importlib.util
from typing import Iterator

import torch

from . import _C

_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
FLOAT_DTYPES = tuple(_DTYPE_CODES)


# Packed-bit documents read as +-1 or {0, 1} per dimension (csrc/include/colkern/dtype.h).
BITS_CODES = {"pm1": 3, "01": 4}


def dtype_code(dtype: torch.dtype) -> int:
    """The C++ kernels' code for a floating dtype (float32, float16, bfloat16)."""
    return _DTYPE_CODES[dtype]


def set_isa(name: str) -> None:
    """Cap the CPU kernels' ISA level: "scalar", "avx2" or "avx512".

    A cap above what the CPU supports is clamped to the best supported level. The initial cap
    comes from the environment variable COLKERN_ISA.
    """
    _C.set_isa(name)


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[str]:
    """Context manager: run the enclosed code with the ISA capped at `name`; yields the level
    actually active (lower than `name` when the CPU lacks it)."""
    previous = _C.isa_info()["cap"]
    _C.set_isa(name)
    try:
        yield _C.isa_info()["active"]
    finally:
        _C.set_isa(previous)


def backend_info() -> dict:
    """What runs where: CPU ISA levels, thread count, Triton and CUDA availability."""
    isa = _C.isa_info()
    return {
        "cpu_isa_active": isa["active"],
        "cpu_isa_detected": isa["detected"],
        "cpu_isa_cap": isa["cap"],
        "cpu_isa_compiled": list(isa["compiled"]),
        # kernels for these AVX-512 extensions run when cpu_isa_active is avx512
        "cpu_extensions": list(isa["extensions"]),
        "threads": torch.get_num_threads(),
        "triton_available": importlib.util.find_spec("triton") is not None,
        "cuda_available": torch.cuda.is_available(),
        "torch": torch.__version__,
    }
