"""colkern: fast late-interaction (ColPali / ColBERT MaxSim) kernels, and the retrieval and
OCR-quality layers built on them.

CPU: C++ SIMD micro-kernels (scalar / AVX2 / AVX-512, chosen at run time) with OpenMP.
CUDA: Triton kernels. Every op is a torch.library op under torch.ops.colkern.

Layers, each importing only the ones below it (ARCHITECTURE.md):
    colkern.cli                      the command line
    colkern.colpali, colkern.quality the ColPali layer, OCR-quality prediction
    colkern.retrieval                index on disk, staged search, metrics
    colkern.documents                PDF rendering and image extraction
    colkern.ops                      torch.library ops over the C++ and Triton kernels
"""
from ._lazy import lazy_getattr
from ._version import __version__
from .colpali.engine import patch_colpali_engine, score_multi_vector, unpatch_colpali_engine
from .ops import (
                  FLOAT_DTYPES,
                  PackedDocs,
                  backend_info,
                  maxsim,
                  maxsim_bits,
                  maxsim_bits_ref,
                  maxsim_bits_topk,
                  maxsim_hamming,
                  maxsim_hamming_ref,
                  maxsim_hamming_topk,
                  maxsim_ref,
                  maxsim_topk,
                  pack,
                  pack_bits,
                  pack_bits_ref,
                  patch_pool,
                  patch_pool_ref,
                  set_isa,
                  unpack_bits,
                  use_isa,
)
from .retrieval import IndexFormatError, MultiVectorIndex, SearchResult, search

# Heavier layers load on first use: `colkern.ColPaliEncoder` imports nothing from colpali-engine
# until a model is loaded, and `colkern.QualityPredictor` pulls in LightGBM and OpenCV only when asked.
_LAZY = {"ColPaliEncoder": (".colpali.encoder", "ColPaliEncoder"),
         "PageEmbedding": (".colpali.encoder", "PageEmbedding"),
         "QualityPredictor": (".quality", "QualityPredictor")}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = ["FLOAT_DTYPES", "IndexFormatError", "MultiVectorIndex", "PackedDocs", "SearchResult", "__version__",
           "backend_info", "maxsim", "maxsim_bits", "maxsim_bits_ref", "maxsim_bits_topk", "maxsim_hamming",
           "maxsim_hamming_ref", "maxsim_hamming_topk", "maxsim_ref", "maxsim_topk", "pack", "pack_bits",
           "pack_bits_ref", "patch_colpali_engine", "patch_pool", "patch_pool_ref", "score_multi_vector", "search",
           "set_isa", "unpack_bits", "unpatch_colpali_engine", "use_isa", *_LAZY]
