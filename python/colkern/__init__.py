"""colkern: fast late-interaction (ColPali / ColBERT MaxSim) kernels.

CPU: C++ SIMD micro-kernels (scalar / AVX2 / AVX-512, chosen at run time) with OpenMP.
CUDA: Triton kernels. Every op is a torch.library op under torch.ops.colkern.
"""
from ._backend import backend_info, set_isa, use_isa
from .index import IndexFormatError, MultiVectorIndex
from .ops import (PackedDocs, maxsim, maxsim_bits, maxsim_bits_ref, maxsim_bits_topk, maxsim_hamming,
                  maxsim_hamming_ref, maxsim_hamming_topk, maxsim_ref, maxsim_topk, pack, pack_bits,
                  pack_bits_ref, patch_pool, patch_pool_ref, unpack_bits)
from .compat import patch_colpali_engine, score_multi_vector, unpatch_colpali_engine
from .search import SearchResult, search

# Heavier layers load on first use: `colkern.ColPaliEncoder` imports nothing from colpali-engine
# until a model is loaded, and `colkern.quality` pulls in LightGBM and OpenCV only when asked.
_LAZY = {"ColPaliEncoder": ("colpali", "ColPaliEncoder"), "PageEmbedding": ("colpali", "PageEmbedding"),
         "QualityPredictor": ("quality.predictor", "QualityPredictor")}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module 'colkern' has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = ["ColPaliEncoder", "IndexFormatError", "MultiVectorIndex", "PackedDocs", "PageEmbedding",
           "QualityPredictor", "SearchResult", "backend_info", "patch_colpali_engine", "score_multi_vector",
           "unpatch_colpali_engine",
           "maxsim", "maxsim_bits", "maxsim_bits_ref", "maxsim_bits_topk", "maxsim_hamming", "maxsim_hamming_ref", "maxsim_hamming_topk", "maxsim_ref", "maxsim_topk",
           "pack", "pack_bits", "pack_bits_ref", "patch_pool", "patch_pool_ref", "search", "set_isa",
           "unpack_bits", "use_isa"]
