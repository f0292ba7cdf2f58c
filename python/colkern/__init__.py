"""colkern: fast late-interaction (ColPali / ColBERT MaxSim) kernels.

CPU: C++ SIMD micro-kernels (scalar / AVX2 / AVX-512, chosen at run time) with OpenMP.
CUDA: Triton kernels. Every op is a torch.library op under torch.ops.colkern.
"""
from ._backend import backend_info, set_isa, use_isa
from .ops import PackedDocs, maxsim, maxsim_ref, maxsim_topk, pack, patch_pool, patch_pool_ref

__version__ = "0.1.0"
__all__ = ["PackedDocs", "backend_info", "maxsim", "maxsim_ref", "maxsim_topk", "pack",
           "patch_pool", "patch_pool_ref", "set_isa", "use_isa"]
