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
from .ops import *  # noqa: F403  (the ops' public names are the package's; ops.__all__ lists them)
from .ops import __all__ as _ops_names
from .retrieval import Index, IndexFormatError, MultiVectorIndex, SearchResult, pool_tokens, search

# Heavier layers load on first use: `colkern.ColPaliEncoder` imports nothing from colpali-engine
# until a model is loaded, and `colkern.QualityPredictor` pulls in LightGBM and OpenCV only when asked.
_LAZY = {"ColPaliEncoder": (".colpali.encoder", "ColPaliEncoder"),
         "PageEmbedding": (".colpali.encoder", "PageEmbedding"),
         "QualityPredictor": (".quality", "QualityPredictor"),
         "HybridIndex": (".hybrid.index", "HybridIndex"),
         "HybridHit": (".hybrid.index", "HybridHit"),
         "losses": (".losses", None),
         "export": (".export", None),
         "distributed": (".distributed", None),
         "patch_pylate": (".losses", "patch_pylate"),
         "unpatch_pylate": (".losses", "unpatch_pylate")}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [*_ops_names, "Index", "IndexFormatError", "MultiVectorIndex", "SearchResult", "__version__",
           "patch_colpali_engine", "pool_tokens", "score_multi_vector", "search", "unpatch_colpali_engine", *_LAZY]
