"""Loads the C++ extension and reports which backend runs where."""
from __future__ import annotations

import contextlib
import importlib.util
from typing import Iterator

import torch

from .. import _C

# The C++ kernels' element types, read from the extension: its DType members are named after
# the torch dtypes they stand for (csrc/include/colkern/dtype.h).
_DTYPES = {getattr(torch, name): member for name, member in _C.DType.__members__.items()}
FLOAT_DTYPES = tuple(_DTYPES)

# Packed-bit documents read as +-1 ("pm1") or {0, 1} ("01") per dimension.
BITS_MODES = {"pm1": _C.BitsMode.pm1, "01": _C.BitsMode.zero_one}


def dtype_code(dtype: torch.dtype) -> "_C.DType":
    """The C++ kernels' element type for a floating dtype (float32, float16, bfloat16)."""
    return _DTYPES[dtype]


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


def fma_peak_gflops(threads: int = 0) -> float:
    """The measured fp32 FMA ceiling (GFLOP/s) of the active ISA level on `threads` threads
    (0: torch's thread count): the roofline that benchmarks report their kernels against."""
    return _C.fma_peak_gflops(threads or torch.get_num_threads())


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
        # bf16 documents widened in registers (AMD Zen) or through a per-chunk buffer
        "cpu_bf16_widen": isa["bf16_widen"],
        "threads": torch.get_num_threads(),
        "triton_available": importlib.util.find_spec("triton") is not None,
        "cuda_available": torch.cuda.is_available(),
        "torch": torch.__version__,
    }
