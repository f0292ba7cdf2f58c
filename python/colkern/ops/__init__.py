"""torch.library ops in the `colkern` namespace, their pure-torch references, and the backend
controls (ISA cap, what runs where). The lowest Python layer: it imports only the C++ extension
and, for CUDA work, the Triton kernels."""
from . import maxsim_backward as _maxsim_backward  # noqa: F401  (defines the training ops)
from ._backend import FLOAT_DTYPES, backend_info, fma_peak_gflops, set_isa, use_isa
from ._inputs import PackedDocs, normalize_queries, pack
from .bits import (
                   maxsim_bits,
                   maxsim_bits_ref,
                   maxsim_bits_topk,
                   maxsim_hamming,
                   maxsim_hamming_ref,
                   maxsim_hamming_topk,
                   pack_bits,
                   pack_bits_ref,
                   unpack_bits,
)
from .centroid_scores import centroid_scores
from .maxsim import maxsim, maxsim_ref, maxsim_topk
from .patch_pool import patch_pool, patch_pool_ref

__all__ = ["FLOAT_DTYPES", "PackedDocs", "backend_info", "centroid_scores", "fma_peak_gflops", "maxsim", "maxsim_bits",
           "maxsim_bits_ref", "maxsim_bits_topk", "maxsim_hamming", "maxsim_hamming_ref", "maxsim_hamming_topk",
           "maxsim_ref", "maxsim_topk", "normalize_queries", "pack", "pack_bits", "pack_bits_ref", "patch_pool",
           "patch_pool_ref", "set_isa", "unpack_bits", "use_isa"]
