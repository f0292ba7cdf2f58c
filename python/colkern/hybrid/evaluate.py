"""Retrieval quality of a hybrid index per route and fused: Recall@k and nDCG@k (colkern.retrieval.metrics).

    qrels = {"q1": {page_id("manual.pdf", 11): 1}, ...}      # relevant pages, "<abs path>#page=<n>"
    rows = evaluate_hybrid(index, {"q1": "Installing the fuse", ...}, qrels)
    print(format_table(rows))

Judgements are per page, the unit all three routes share: every route's ranking is mapped to the
pages of its items (a text chunk and an image count for the page they sit on) and a page is
kept at its first rank, so a page found by several chunks is counted once. The fused runs fuse
the routes' item rankings first (as HybridIndex.search does) and then map to pages. Every run is
scored on the same queries, so the rows compare directly.
"""
from __future__ import annotations

import warnings
from typing import Dict, Hashable, List, Mapping, Optional, Sequence

from ..retrieval.metrics import compare_runs

FUSED_RUNS = ("rrf", "score", "rrf/page", "score/page")
_ROUTE_RUN = {"page": "page route (ColPali)", "image": "image route (SigLIP)", "text": "text route"}


def _pages(index, kind_positions) -> List[str]:
    seen, out = set(), []
    for kind, pos in kind_positions:
        key = index.page_key(kind, pos)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def route_runs(index, queries: Mapping[Hashable, str], *, depth: int = 100, routes: Optional[Sequence[str]] = None,
               fusions: Sequence[str] = FUSED_RUNS, batch: int = 64,
               weights: Optional[Mapping[str, float]] = None) -> Dict[str, Dict[Hashable, List[str]]]:
    """Page-level runs: run name -> {query id: [page id, ...]}, one run per route that holds items
    and one per fusion: "rrf" / "score" fuse items, "rrf/page" / "score/page" fuse pages
    (HybridIndex.fuse_rankings group="page"). depth: items per route and query."""
    if not isinstance(queries, Mapping) or not queries:
        raise ValueError("route_runs: queries must be a non-empty dict query id -> text")
    qids = list(queries)
    runs: Dict[str, Dict[Hashable, List[str]]] = {}
    for lo in range(0, len(qids), batch):
        part = qids[lo:lo + batch]
        rankings = index.route_rankings([queries[q] for q in part], depth, routes)
        for kind, per_query in rankings.items():
            run = runs.setdefault(_ROUTE_RUN[kind], {})
            for qid, ranking in zip(part, per_query):
                run[qid] = _pages(index, ((kind, pos) for pos, _ in ranking))
        for name in fusions:
            fusion, _, group = name.partition("/")
            run = runs.setdefault(f"fused ({name})", {})
            for i, qid in enumerate(part):
                one = {kind: per_query[i] for kind, per_query in rankings.items()}
                total = sum(len(r) for r in one.values())
                hits = index.fuse_rankings(one, max(total, 1), fusion=fusion, weights=weights, group=group or "item")
                run[qid] = _pages(index, ((h.kind, h.position) for h in hits))
    return runs


def evaluate_hybrid(index, queries: Mapping[Hashable, str], qrels: Mapping[Hashable, Mapping[str, int]], *,
                    ks: Sequence[int] = (1, 5, 10), depth: int = 100, routes: Optional[Sequence[str]] = None,
                    fusions: Sequence[str] = FUSED_RUNS,
                    weights: Optional[Mapping[str, float]] = None) -> List[Dict[str, object]]:
    """Recall@k and nDCG@k per route and per fusion on page-level judgements (qrels: query id ->
    {page id: relevance}). -> colkern.retrieval.metrics.compare_runs rows (format_table prints them)."""
    runs = route_runs(index, {q: queries[q] for q in queries if q in qrels}, depth=depth, routes=routes,
                      fusions=fusions, weights=weights)
    judged = {p for rel in qrels.values() for p in rel}
    if not any(p in judged for run in runs.values() for ranked in run.values() for p in ranked):
        warnings.warn("evaluate_hybrid: no retrieved page is judged in qrels; qrels must name pages as "
                      "colkern.colpali.page_id(file, page) does ('<absolute path>#page=<n>')", stacklevel=2)
    with warnings.catch_warnings():
        # One route finding no judged page is a result (e.g. a route that holds other pages), not an id mismatch.
        warnings.filterwarnings("ignore", message=r".*no retrieved document is judged")
        return compare_runs(runs, qrels, ks)
