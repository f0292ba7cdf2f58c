"""torch.library ops in the `colkern` namespace, with their pure-torch references."""
from ._docs import PackedDocs, pack
from .maxsim import maxsim, maxsim_ref, maxsim_topk

__all__ = ["PackedDocs", "pack", "maxsim", "maxsim_ref", "maxsim_topk"]
