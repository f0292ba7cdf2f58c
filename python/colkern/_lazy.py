"""Lazy re-exports for package faces: a name is imported from its module on first access, so
`import colkern` stays cheap while heavy layers (PIL, PyMuPDF, LightGBM, transformers) load only
when used."""
from __future__ import annotations

import importlib
from typing import Callable, Dict, Tuple


def lazy_getattr(package: str, names: Dict[str, Tuple[str, str]]) -> Callable[[str], object]:
    """A module-level __getattr__ for `package`: names maps an exported name to
    (module relative to package, attribute), or (module, None) to export the module itself."""

    def __getattr__(name: str) -> object:
        if name in names:
            module, attr = names[name]
            loaded = importlib.import_module(module, package)
            return loaded if attr is None else getattr(loaded, attr)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
