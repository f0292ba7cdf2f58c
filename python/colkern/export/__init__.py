"""Export a colkern.Index to a vector database when one machine's index is not enough.

    to_qdrant(index, QdrantClient(url=...), "pages")      # multi-vector collection, MaxSim, DOT
    write_vespa(index, "pages", "out/")                   # application package + feed.jsonl

Modules, one job each:
    stream  the live documents of an index, read shard by shard
    qdrant  to_qdrant, qdrant_search, point_id (needs qdrant-client)
    vespa   vespa_package, vespa_feed, vespa_query, write_vespa (needs pyvespa)
    cli     `colkern export qdrant | vespa`

Importing it loads neither qdrant-client nor pyvespa (pip install 'colkern[export]').
"""
from .._lazy import lazy_getattr

_MODULES = {
    ".qdrant": ("QdrantHits", "point_id", "qdrant_search", "to_qdrant"),
    ".vespa": ("vespa_feed", "vespa_package", "vespa_query", "write_vespa"),
}
_LAZY = {name: (module, name) for module, names in _MODULES.items() for name in names}
__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = sorted(_LAZY)
