"""The SigLIP layer: natural images and texts -> one L2-normalised vector each, in one space
(colkern.siglip.SiglipEncoder). Importing it imports neither transformers nor PIL: they load
when a model is loaded."""
from .._lazy import lazy_getattr

_LAZY = {name: (".encoder", name) for name in ("SiglipEncoder", "check_siglip_dir")}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = list(_LAZY)
