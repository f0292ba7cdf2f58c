"""Ahead-of-time compilation shared by the kernel modules: their aot_compile_all() and their
command line (`python -m colkern.triton_kernels.<module> [arch ...]`).

It checks that a kernel lowers to PTX and a cubin for a GPU this machine need not have. It must
run in a process where TRITON_INTERPRET was not set when Triton was imported: @triton.jit then
yields an interpreter function, which cannot be compiled.
"""
from __future__ import annotations

import sys
from typing import Callable, Iterable, List, Tuple

import torch
import triton

# Pointer element types of the AOT signatures, per input dtype.
TL_DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def gpu_target(arch: int, kernel):
    """The CUDA sm_`arch` target, after checking `kernel` is a real (compilable) JIT function."""
    from triton.backends.compiler import GPUTarget
    from triton.runtime.jit import JITFunction

    if not isinstance(kernel, JITFunction):
        raise RuntimeError("aot_compile_all: kernels were built for the interpreter "
                           "(TRITON_INTERPRET=1); run it in a fresh process without it")
    return GPUTarget("cuda", arch, 32)


def compile_variant(fn, signature: dict, constexprs: dict, target, num_warps: int) -> str:
    """Compiles one specialisation of `fn`; raises on a lowering error or a missing cubin.
    -> "<cubin bytes> B cubin, <shared bytes> B shared memory"."""
    from triton.compiler import ASTSource

    signature = dict(signature, **{k: "constexpr" for k in constexprs})
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
    compiled = triton.compile(src, target=target, options={"num_warps": num_warps})
    cubin = compiled.asm.get("cubin", b"")
    if not cubin:
        raise RuntimeError(f"aot_compile_all: no cubin for {fn.__name__} sm_{target.arch}")
    return f"{len(cubin)} B cubin, {compiled.metadata.shared} B shared memory"


def compile_all(arch: int, variants: Iterable[Tuple[object, str, dict, dict]], num_warps: int) -> List[str]:
    """Compiles each (kernel, label, signature, constexprs) of `variants` for CUDA sm_`arch` (see
    compile_variant); raises on the first lowering error. -> one line per variant,
    "<label>: <cubin bytes> B cubin, <shared bytes> B shared memory"."""
    lines = []
    for fn, label, signature, constexprs in variants:
        info = compile_variant(fn, signature, constexprs, gpu_target(arch, fn), num_warps)
        lines.append(f"{label}: {info}")
    return lines


def main(aot_compile_all: Callable[[int], List[str]]) -> None:
    """Command line of a kernel module: compiles for each CUDA arch in argv (default 80 and 90)
    and prints one line per compiled variant."""
    for arch in sys.argv[1:] or ["80", "90"]:
        print("\n".join(aot_compile_all(int(arch))))
