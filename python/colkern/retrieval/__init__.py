"""Retrieval over a corpus of multi-vector documents: the index on disk, staged search with the
ops' kernels, and retrieval-quality metrics. Imports only colkern.ops below it."""
from .index import IndexFormatError, MultiVectorIndex
from .metrics import EvalResult, compare_runs, compare_search_modes, format_table, ndcg_at_k, recall_at_k, search_runs
from .pooling import pool_tokens
from .search import SearchResult, search
from .sharded import Index

__all__ = ["EvalResult", "Index", "IndexFormatError", "MultiVectorIndex", "SearchResult", "compare_runs",
           "compare_search_modes", "format_table", "ndcg_at_k", "pool_tokens", "recall_at_k", "search", "search_runs"]
