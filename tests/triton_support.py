"""Shared plumbing of the Triton test files: loading a kernel module under the interpreter,
ragged test corpora, and the ahead-of-time compile for real GPUs in subprocesses.

Each test file sets TRITON_INTERPRET=1 before anything imports triton, because @triton.jit reads
it when a kernel is defined; the AOT compile must run where it was never set.
"""
import importlib
import os
import subprocess
import sys

import colkern


def load_interpreted(module_name: str, *kernel_names: str):
    """Imports colkern.triton_kernels.<module_name> with its kernels (`kernel_names`) as
    interpreter functions."""
    from triton.runtime.interpreter import InterpretedFunction

    mod = importlib.import_module(f"colkern.triton_kernels.{module_name}")
    if not all(isinstance(getattr(mod, k), InterpretedFunction) for k in kernel_names):
        # Imported earlier in this process without TRITON_INTERPRET: rebuild for the interpreter,
        # the @triton.jit helpers the kernels share (_common) first.
        importlib.reload(importlib.import_module("colkern.triton_kernels._common"))
        mod = importlib.reload(mod)
    assert all(isinstance(getattr(mod, k), InterpretedFunction) for k in kernel_names)
    return mod


def packed(docs):
    """A list of [L_i, D] tensors -> (values, starts, lengths) as the kernels take them."""
    p = colkern.pack(docs)
    return p.values, p.offsets[:-1].contiguous(), (p.offsets[1:] - p.offsets[:-1]).contiguous()


# aot_compile_all output per (module, arch): a module is compiled once per test session, however
# many test files need it (test_bits_triton checks the bits variants of the MaxSim kernel).
_AOT_OUTPUT = {}


def aot_compile(tmp_path, module_names, extra=None) -> dict:
    """Runs aot_compile_all of each module (a name, or a list of names) for sm_80 and sm_90, unless
    this session did already, plus `extra` (name -> [code, args...]), in parallel subprocesses
    without TRITON_INTERPRET and with an empty cache, so every variant is really compiled.
    Asserts each exits 0; returns "sm_80" / "sm_90" -> the modules' output, name -> output."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    if isinstance(module_names, str):
        module_names = [module_names]
    cmds = {(m, arch): [f"import sys; from colkern.triton_kernels.{m} import aot_compile_all; "
                        "print('\\n'.join(aot_compile_all(int(sys.argv[1]))))", arch[3:]]
            for m in module_names for arch in ("sm_80", "sm_90") if (m, arch) not in _AOT_OUTPUT}
    cmds.update(extra or {})
    # All at once: compilation is single-threaded and dominates the Triton tests' time.
    procs = {name: subprocess.Popen([sys.executable, "-c", *args], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name, args in cmds.items()}
    outs = {}
    for name, p in procs.items():
        outs[name], _ = p.communicate(timeout=600)
        assert p.returncode == 0, f"{name} AOT compile failed:\n{outs[name][-6000:]}"
        if isinstance(name, tuple):
            arch = name[1]
            assert arch in outs[name] and "cubin" in outs[name], outs[name]
            _AOT_OUTPUT[name] = outs[name]
    for arch in ("sm_80", "sm_90"):
        outs[arch] = "".join(_AOT_OUTPUT[(m, arch)] for m in module_names)
    return outs
