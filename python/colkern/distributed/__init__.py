"""Scaling out with Ray: the PDF page indexer as a Ray Data pipeline writing a sharded
colkern.Index (index_pdfs_ray), and scatter-gather search of such an index over Ray actors with
the same results as colkern.Index.search (ShardedSearcher). Ray (`pip install
'colkern[distributed]'`) is imported on first use, never by `import colkern`."""
from .._lazy import lazy_getattr

_LAZY = {
    "index_pdfs_ray": (".pipeline", "index_pdfs_ray"),
    "collect_inputs": (".render", "collect_inputs"),
    "ShardedSearcher": (".searcher", "ShardedSearcher"),
}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = list(_LAZY)
