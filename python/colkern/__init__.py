"""colkern: fast late-interaction (ColPali / ColBERT MaxSim) kernels.

CPU: C++ SIMD micro-kernels (scalar / AVX2 / AVX-512, chosen at run time) with OpenMP.
CUDA: Triton kernels. Every op is a torch.library op under torch.ops.colkern.
"""
from ._backend import backend_info, set_isa, use_isa
from .index import IndexFormatError, MultiVectorIndex
from .ops import (PackedDocs, maxsim, maxsim_bits, maxsim_bits_ref, maxsim_bits_topk, maxsim_hamming,
                  maxsim_hamming_ref, maxsim_hamming_topk, maxsim_ref, maxsim_topk, pack, pack_bits,
                  pack_bits_ref, patch_pool, patch_pool_ref, unpack_bits)
from .search import SearchResult, search

__version__ = "0.1.0"
__all__ = ["IndexFormatError", "MultiVectorIndex", "PackedDocs", "SearchResult", "backend_info",
           "maxsim", "maxsim_bits", "maxsim_bits_ref", "maxsim_bits_topk", "maxsim_hamming", "maxsim_hamming_ref", "maxsim_hamming_topk", "maxsim_ref", "maxsim_topk",
           "pack", "pack_bits", "pack_bits_ref", "patch_pool", "patch_pool_ref", "search", "set_isa",
           "unpack_bits", "use_isa"]
