"""Importing colpali-engine when torchvision's C++ ops cannot load (CPU-only torch + PyPI torchvision).

The problem. PyPI's torchvision wheels are CUDA builds; next to a CPU-only torch (e.g. torch
2.13.0+cpu with torchvision 0.28) their `_C` extension fails to load. torchvision tolerates that
(`torchvision.extension._has_ops()` becomes False), except in `torchvision/_meta_registrations.py`,
which calls `torch.library.register_fake("torchvision::nms")` and `("torchvision::qnms")`
unconditionally. Without the extension those operators were never defined, so `import torchvision`
dies with

    RuntimeError: operator torchvision::nms does not exist

and with it `import colpali_engine` (transformers' image processors import torchvision).

The fix, the narrowest that works. Before torchvision is first imported, and only when its `_C`
extension cannot be loaded, define the schemas of exactly those two operators in a
`torch.library.Library("torchvision", "DEF")`. register_fake then finds them and the import
completes. Nothing else changes: no kernel is registered, so `torchvision.ops.nms` still raises
if called (it could not run without the extension anyway); ColPali never calls it. The Library
object lives in this module for the life of the process, because dropping it would remove the
definitions again.

Detection happens up front rather than by catching the failed import: a failed `import
torchvision` leaves some of its submodules behind in sys.modules, and a working torchvision
(a matching CPU wheel, or a CUDA torch) must never see extra definitions in its namespace
(loading its real `_C` would then fail with "already defined"). The shim is applied when

  * torchvision is installed (importlib.util.find_spec) and not yet imported, and
  * its `_C` extension is missing or `torch.ops.load_library` refuses it (the same call, on the
    same file, that torchvision makes itself; loading it here when it works is what torchvision's
    import would do next anyway), and
  * torch.ops.torchvision does not already define the operator.

Use:  ce = import_colpali_engine(); ce.models.ColPali, ce.models.ColPaliProcessor
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from types import ModuleType
from typing import Optional

import torch

# The operators torchvision/_meta_registrations.py registers fake kernels for unconditionally.
_OP_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

_lock = threading.Lock()
_shim_library: Optional[torch.library.Library] = None  # kept alive: its definitions die with it
_checked = False

INSTALL_HINT = "pip install 'colkern[colpali]'"


def _torchvision_op_exists(name: str) -> bool:
    # torch.ops namespaces raise AttributeError for unknown operators (and cache only found ones).
    return hasattr(torch.ops.torchvision, name)


def _torchvision_extension_loads(package_dir: str) -> bool:
    """Whether torchvision's `_C` extension in package_dir loads, found and loaded the way
    torchvision.extension does it."""
    if os.name == "nt" and hasattr(os, "add_dll_directory"):
        os.add_dll_directory(package_dir)  # what torchvision's _get_extension_path does first
    finder = importlib.machinery.FileFinder(
        package_dir, (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
    spec = finder.find_spec("_C")
    if spec is None or spec.origin is None:
        return False
    try:
        torch.ops.load_library(spec.origin)
    except (OSError, ImportError, RuntimeError):
        return False
    return True


def torchvision_needs_shim() -> bool:
    """True when importing torchvision would fail with "operator torchvision::nms does not exist"
    (installed, not yet imported, `_C` extension unloadable, operators undefined)."""
    if "torchvision" in sys.modules:
        return False  # imported already: successfully, or the caller handled it
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False  # not installed: transformers does without it
    if all(_torchvision_op_exists(op) for op in _OP_SCHEMAS):
        return False
    return not _torchvision_extension_loads(list(spec.submodule_search_locations)[0])


def apply_torchvision_shim() -> bool:
    """Defines the missing torchvision operator schemas if (and only if) torchvision_needs_shim().

    Idempotent and thread-safe. -> True if the shim is in place (now or from an earlier call).
    """
    global _shim_library, _checked
    with _lock:
        if _shim_library is not None:
            return True
        if _checked:
            return False
        _checked = True
        if not torchvision_needs_shim():
            return False
        lib = torch.library.Library("torchvision", "DEF")
        for name, schema in _OP_SCHEMAS.items():
            if not _torchvision_op_exists(name):
                lib.define(schema)
        _shim_library = lib
        return True


def shim_applied() -> bool:
    """Whether this process runs with the torchvision operator shim."""
    return _shim_library is not None


def import_colpali_engine() -> ModuleType:
    """Imports colpali-engine, applying the torchvision shim first where it is needed.

    -> the `colpali_engine` module, with `colpali_engine.models` (ColPali, ColPaliProcessor)
    and `colpali_engine.utils.processing_utils` imported.
    Raises ImportError with the install command when colpali-engine (or a dependency) is missing.
    """
    if importlib.util.find_spec("colpali_engine") is None:
        raise ImportError(f"colpali-engine is not installed; install the ColPali extra: {INSTALL_HINT}")
    apply_torchvision_shim()
    try:
        module = importlib.import_module("colpali_engine")
        importlib.import_module("colpali_engine.models")
        importlib.import_module("colpali_engine.utils.processing_utils")
    except ImportError as e:
        raise ImportError(f"colpali-engine is installed but failed to import ({e}); reinstall the "
                          f"ColPali extra: {INSTALL_HINT}") from e
    return module
