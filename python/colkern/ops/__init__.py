"""torch.library ops in the `colkern` namespace, with their pure-torch references."""
from ._docs import PackedDocs, pack
from .maxsim import maxsim, maxsim_ref, maxsim_topk
from .patch_pool import patch_pool, patch_pool_ref

__all__ = ["PackedDocs", "pack", "maxsim", "maxsim_ref", "maxsim_topk", "patch_pool", "patch_pool_ref"]
