"""torch.library ops in the `colkern` namespace, with their pure-torch references."""
from ._docs import PackedDocs, pack
from .bits import (maxsim_bits, maxsim_bits_ref, maxsim_bits_topk, maxsim_hamming, maxsim_hamming_ref,
                   maxsim_hamming_topk, pack_bits, pack_bits_ref, unpack_bits)
from .maxsim import maxsim, maxsim_ref, maxsim_topk
from .patch_pool import patch_pool, patch_pool_ref

__all__ = ["PackedDocs", "pack", "maxsim", "maxsim_ref", "maxsim_topk", "patch_pool", "patch_pool_ref",
           "pack_bits", "pack_bits_ref", "unpack_bits", "maxsim_bits", "maxsim_bits_ref", "maxsim_bits_topk",
           "maxsim_hamming", "maxsim_hamming_ref", "maxsim_hamming_topk"]
