"""Retrieval quality: Recall@k and nDCG@k over a run, and side-by-side tables of several runs.

    run   = {"q1": ["doc3", "doc1", ...], ...}           # ranked ids, best first
            or {"q1": [("doc3", 12.5), ("doc1", 11.0), ...]}   # (id, score): ranked by score
    qrels = {"q1": {"doc1": 2, "doc7": 1}, ...}           # graded relevance, > 0 is relevant
    recall_at_k(run, qrels, 5).mean
    print(format_table(compare_runs({"float": r1, "bits": r2, "two-stage": r3}, qrels)))

Definitions (R_q = the documents judged relevant for q, rel > 0; ranks start at 1):
    Recall@k = |R_q among the top k| / |R_q|
    DCG@k    = sum over ranks i <= k of gain(rel_i) / log2(i + 1)   (unjudged documents: rel 0)
    nDCG@k   = DCG@k / IDCG@k, IDCG@k the DCG@k of q's judged documents in decreasing relevance
    gain(rel) = rel (linear, as trec_eval and BEIR), or 2**rel - 1 with exponential_gain=True;
    relevances <= 0 count as not relevant (gain 0).

Which queries count (the same rule for every metric, so runs compare on the same queries):
  * a query in qrels with at least one relevant document is evaluated; the mean is over these;
  * a query in qrels without any relevant document cannot be scored: it is skipped and listed
    in EvalResult.skipped (it would be 0/0 for both metrics);
  * an evaluated query absent from the run scores 0 (the system returned nothing for it) and is
    listed in EvalResult.missing;
  * a query in the run but not in qrels is ignored and listed in EvalResult.unjudged.
A run that shares no query id with qrels raises ValueError (almost always an id mismatch, such as
int vs str); one whose retrieved documents include no judged document at all gets a warning.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Hashable, List, Mapping, Sequence, Tuple, Union

RankedList = Union[Sequence[Hashable], Sequence[Tuple[Hashable, float]]]
Run = Mapping[Hashable, RankedList]
Qrels = Mapping[Hashable, Mapping[Hashable, int]]

METRICS = ("recall", "ndcg")


@dataclass(frozen=True)
class EvalResult:
    """One metric of one run. per_query: query id -> value for every evaluated query
    (including the missing ones, at 0.0); mean: their mean."""

    metric: str  # e.g. "ndcg@10"
    k: int
    mean: float
    per_query: Dict[Hashable, float]
    skipped: List[Hashable] = field(default_factory=list)    # in qrels, no relevant document
    missing: List[Hashable] = field(default_factory=list)    # evaluated, absent from the run
    unjudged: List[Hashable] = field(default_factory=list)   # in the run, absent from qrels

    @property
    def num_queries(self) -> int:
        return len(self.per_query)


# -- validation ----------------------------------------------------------------------------------


def _check_k(k, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k <= 0:
        raise ValueError(f"{name}: k must be a positive int, got {k!r}")
    return int(k)


def _ranking(qid, items, name: str) -> List[Hashable]:
    """A run's entry for one query -> doc ids best first; (id, score) pairs are sorted by score
    (descending, stable: equal scores keep the given order)."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise ValueError(f"{name}: run[{qid!r}] must be a list of doc ids or (doc_id, score) pairs, "
                         f"got {type(items).__name__}")
    pairs = [isinstance(x, tuple) for x in items]
    if any(pairs):
        if not all(pairs) or any(len(x) != 2 for x in items):
            raise ValueError(f"{name}: run[{qid!r}] mixes doc ids and (doc_id, score) pairs, or has a "
                             f"tuple that is not (doc_id, score)")
        for doc, score in items:
            if isinstance(score, bool) or not isinstance(score, numbers.Real) or math.isnan(score):
                raise ValueError(f"{name}: run[{qid!r}] has score {score!r} for {doc!r}; scores must be real numbers")
        ranked = [doc for doc, _ in sorted(items, key=lambda x: -x[1])]
    else:
        ranked = list(items)
    if len(set(ranked)) != len(ranked):
        dup = next(d for d, count in Counter(ranked).items() if count > 1)
        raise ValueError(f"{name}: run[{qid!r}] lists document {dup!r} more than once")
    return ranked


def _check_qrels(qrels, name: str) -> None:
    if not isinstance(qrels, Mapping) or not qrels:
        raise ValueError(f"{name}: qrels must be a non-empty dict query id -> {{doc id: relevance}}")
    for qid, judged in qrels.items():
        if not isinstance(judged, Mapping):
            raise ValueError(f"{name}: qrels[{qid!r}] must be a dict doc id -> relevance, got {type(judged).__name__}")
        for doc, rel in judged.items():
            if isinstance(rel, bool) or not isinstance(rel, numbers.Integral):
                raise ValueError(f"{name}: qrels[{qid!r}][{doc!r}] must be an int relevance, got {rel!r}")


def _check_run(run, name: str) -> None:
    if not isinstance(run, Mapping):
        raise ValueError(f"{name}: run must be a dict query id -> ranked doc ids, got {type(run).__name__}")
    if not run:
        raise ValueError(f"{name}: run is empty")


# -- metrics -------------------------------------------------------------------------------------


def _gain(rel: int, exponential: bool) -> float:
    if rel <= 0:
        return 0.0
    return float(2 ** rel - 1) if exponential else float(rel)


def _recall(ranked: List[Hashable], judged: Mapping[Hashable, int], k: int) -> float:
    relevant = {d for d, r in judged.items() if r > 0}
    return sum(1 for d in ranked[:k] if d in relevant) / len(relevant)


def _ndcg(ranked: List[Hashable], judged: Mapping[Hashable, int], k: int, exponential: bool) -> float:
    dcg = sum(_gain(judged.get(d, 0), exponential) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
    idcg = sum(_gain(r, exponential) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg


def _evaluate(run: Run, qrels: Qrels, k: int, metric: str, exponential: bool, name: str,
              warn: bool = True) -> EvalResult:
    _check_run(run, name)
    _check_qrels(qrels, name)
    k = _check_k(k, name)
    if not any(q in qrels for q in run):
        raise ValueError(f"{name}: no query id of the run is in qrels (run ids e.g. {list(run)[:3]!r}, "
                         f"qrels ids e.g. {list(qrels)[:3]!r}); check the id types")
    rankings = {qid: _ranking(qid, items, name) for qid, items in run.items()}
    per_query: Dict[Hashable, float] = {}
    skipped, missing, judged_hits = [], [], 0
    for qid, judged in qrels.items():
        if not any(r > 0 for r in judged.values()):
            skipped.append(qid)
            continue
        if qid not in run:
            missing.append(qid)
            per_query[qid] = 0.0
            continue
        ranked = rankings[qid]
        judged_hits += sum(1 for d in ranked if d in judged)
        per_query[qid] = _recall(ranked, judged, k) if metric == "recall" else _ndcg(ranked, judged, k, exponential)
    if not per_query:
        raise ValueError(f"{name}: no query in qrels has a relevant document (relevance > 0)")
    if warn and judged_hits == 0 and len(missing) < len(per_query):
        warnings.warn(f"{name}: no retrieved document is judged in qrels; check that the doc ids of "
                      f"the run and of qrels use the same form", stacklevel=3)
    unjudged = [q for q in run if q not in qrels]
    mean = sum(per_query.values()) / len(per_query)
    return EvalResult(f"{metric}@{k}", k, mean, per_query, skipped, missing, unjudged)


def recall_at_k(run: Run, qrels: Qrels, k: int) -> EvalResult:
    """Recall@k: the share of each query's relevant documents found in its top k, averaged over
    the queries with at least one relevant document (see the module docstring)."""
    return _evaluate(run, qrels, k, "recall", False, "recall_at_k")


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10, *, exponential_gain: bool = False) -> EvalResult:
    """nDCG@k with a log2(rank + 1) discount and linear gains (2**rel - 1 if exponential_gain),
    IDCG from the judged documents of qrels (see the module docstring)."""
    return _evaluate(run, qrels, k, "ndcg", exponential_gain, "ndcg_at_k")


# -- several runs --------------------------------------------------------------------------------


def compare_runs(runs: Mapping[str, Run], qrels: Qrels, ks: Sequence[int] = (1, 5, 10), *,
                 metrics: Sequence[str] = METRICS, exponential_gain: bool = False) -> List[Dict[str, object]]:
    """One row per run: {"run": name, "queries": n, "recall@1": ..., "ndcg@1": ..., ...}, columns
    in the order metric-major, then k. Every run is scored on the same queries (those of qrels
    with a relevant document; a run missing a query scores 0 on it), so rows compare directly."""
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("compare_runs: runs must be a non-empty dict name -> run")
    if isinstance(ks, (int, str)) or not ks:
        raise ValueError(f"compare_runs: ks must be a non-empty sequence of ints, got {ks!r}")
    ks = [_check_k(k, "compare_runs") for k in ks]
    if isinstance(metrics, str) or not metrics or any(m not in METRICS for m in metrics):
        raise ValueError(f"compare_runs: metrics must be a non-empty list drawn from {METRICS}, got {metrics!r}")
    rows = []
    for name, run in runs.items():
        row: Dict[str, object] = {"run": str(name)}
        first = True  # the id-mismatch warning once per run, not once per metric and k
        for metric in metrics:
            for k in ks:
                res = _evaluate(run, qrels, k, metric, exponential_gain, f"compare_runs[{name!r}]", warn=first)
                first = False
                row[res.metric] = res.mean
        row["queries"] = res.num_queries
        rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping[str, object]], *, digits: int = 4) -> str:
    """A markdown table of compare_runs rows (columns: the first row's keys, in order); floats
    with `digits` decimals, numbers right-aligned."""
    if not rows:
        raise ValueError("format_table: no rows")
    columns = list(rows[0].keys())
    for i, row in enumerate(rows):
        if list(row.keys()) != columns:
            raise ValueError(f"format_table: row {i} has columns {list(row.keys())}, row 0 has {columns}")

    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    body = [[cell(row[c]) for c in columns] for row in rows]
    numeric = [all(isinstance(row[c], numbers.Number) and not isinstance(row[c], bool) for row in rows)
               for c in columns]
    widths = [max(len(c), 3, *(len(r[j]) for r in body)) for j, c in enumerate(columns)]

    def line(cells) -> str:
        return "| " + " | ".join(s.rjust(w) if num else s.ljust(w)
                                 for s, w, num in zip(cells, widths, numeric)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric)) + " |"
    return "\n".join([line(columns), rule] + [line(r) for r in body])


# -- float vs binary vs two-stage on one index --------------------------------------------------

# name -> colkern.search arguments. Float modes need an index that keeps its float vectors.
SEARCH_MODES = {
    "float (exact MaxSim)": {"stage1": "float", "rescore": None},
    "float query x bits": {"stage1": "bits", "rescore": None},
    "hamming": {"stage1": "hamming", "rescore": None},
    "hamming + float rescoring": {"stage1": "hamming", "rescore": "float"},
    "hamming + bits rescoring": {"stage1": "hamming", "rescore": "bits"},
}


def search_runs(queries: Mapping[Hashable, "object"], index, *, k: int = 10, oversample: float = 10,
                modes: Sequence[str] = None) -> Dict[str, Dict[Hashable, List[Tuple[str, float]]]]:
    """One run per search mode over the same queries: mode name -> {query id: [(doc id, score)]}.

    queries: query id -> float tensor [Lq, dim] (each query its own length). index: a
    colkern.MultiVectorIndex. modes: names from SEARCH_MODES (default: all that the index
    supports; the float ones need float vectors)."""
    from .search import search  # torch-side import kept out of the metrics' import path

    if modes is None:
        modes = [m for m, kw in SEARCH_MODES.items()
                 if index.floats is not None or "float" not in (kw["stage1"], kw["rescore"])]
    unknown = [m for m in modes if m not in SEARCH_MODES]
    if unknown or not modes:
        raise ValueError(f"search_runs: modes must be a non-empty list drawn from {list(SEARCH_MODES)}, got {modes!r}")
    if not isinstance(queries, Mapping) or not queries:
        raise ValueError("search_runs: queries must be a non-empty dict query id -> [Lq, dim] tensor")
    runs = {}
    for mode in modes:
        run = {}
        for qid, Q in queries.items():
            res = search(Q, index, k, oversample=oversample, **SEARCH_MODES[mode])
            run[qid] = list(zip(res.ids, res.scores.tolist()))
        runs[mode] = run
    return runs


def compare_search_modes(queries: Mapping[Hashable, "object"], index, qrels: Qrels, *, ks: Sequence[int] = (1, 5, 10),
                         oversample: float = 10, modes: Sequence[str] = None) -> List[Dict[str, object]]:
    """Recall@k and nDCG@k of exact float MaxSim, float x bits, hamming and two-stage search on
    the same queries and index: compare_runs rows (print them with format_table)."""
    runs = search_runs(queries, index, k=max(_check_k(k, "compare_search_modes") for k in ks),
                       oversample=oversample, modes=modes)
    return compare_runs(runs, qrels, ks)
