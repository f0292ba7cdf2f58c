"""colkern.retrieval.metrics: Recall@k and nDCG@k against their definitions, the query accounting, run tables."""
import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colkern.retrieval.metrics import EvalResult, compare_runs, format_table, ndcg_at_k, recall_at_k


def _disc(rank):  # rank starts at 1
    return 1.0 / math.log2(rank + 1)


QRELS = {
    "q1": {"a": 1, "b": 1, "c": 0},         # two relevant, one judged non-relevant
    "q2": {"d": 3, "e": 1},                 # graded
    "q3": {"f": 0},                         # nothing relevant: skipped
}
RUN = {
    "q1": ["x", "a", "c", "b"],
    "q2": ["e", "d", "z"],
    "q9": ["a"],                            # not in qrels: ignored
}


# -- recall --------------------------------------------------------------------------------------


def test_recall_by_definition():
    for k in (1, 2, 3, 4, 10):
        res = recall_at_k(RUN, QRELS, k)
        q1 = len({"a", "b"} & set(RUN["q1"][:k])) / 2
        q2 = len({"d", "e"} & set(RUN["q2"][:k])) / 2
        assert res.per_query == pytest.approx({"q1": q1, "q2": q2})
        assert res.mean == pytest.approx((q1 + q2) / 2)
        assert res.metric == f"recall@{k}" and res.k == k and res.num_queries == 2
    assert recall_at_k(RUN, QRELS, 1).per_query == {"q1": 0.0, "q2": 0.5}


def test_query_accounting():
    res = recall_at_k(RUN, QRELS, 5)
    assert res.skipped == ["q3"] and res.unjudged == ["q9"] and res.missing == []
    partial = {"q1": RUN["q1"]}
    res = ndcg_at_k(partial, QRELS, 5)
    assert res.missing == ["q2"] and res.per_query["q2"] == 0.0
    assert res.mean == pytest.approx(res.per_query["q1"] / 2)  # q2 counts, at 0


# -- nDCG ----------------------------------------------------------------------------------------


def test_ndcg_by_definition_linear_gain():
    # q1: relevant "a" at rank 2 and "b" at rank 4; ideal: two gain-1 documents at ranks 1-2.
    # q2: "e" (rel 1) at rank 1, "d" (rel 3) at rank 2; ideal: 3 then 1.
    for k in (1, 2, 3, 5):
        res = ndcg_at_k(RUN, QRELS, k)
        dcg1 = sum(g * _disc(r) for r, g in ((2, 1), (4, 1)) if r <= k)
        idcg1 = sum(_disc(r) for r in (1, 2) if r <= k)
        dcg2 = sum(g * _disc(r) for r, g in ((1, 1), (2, 3)) if r <= k)
        idcg2 = sum(g * _disc(r) for r, g in ((1, 3), (2, 1)) if r <= k)
        assert res.per_query["q1"] == pytest.approx(dcg1 / idcg1)
        assert res.per_query["q2"] == pytest.approx(dcg2 / idcg2)
        assert res.mean == pytest.approx((dcg1 / idcg1 + dcg2 / idcg2) / 2)


def test_ndcg_exponential_gain():
    res = ndcg_at_k(RUN, QRELS, 2, exponential_gain=True)
    dcg = (2 ** 1 - 1) * _disc(1) + (2 ** 3 - 1) * _disc(2)
    idcg = (2 ** 3 - 1) * _disc(1) + (2 ** 1 - 1) * _disc(2)
    assert res.per_query["q2"] == pytest.approx(dcg / idcg)
    # The gains differ from the linear ones, so does the value.
    assert res.per_query["q2"] != pytest.approx(ndcg_at_k(RUN, QRELS, 2).per_query["q2"])


def test_ideal_dcg_uses_unretrieved_relevant_documents():
    qrels = {"q": {"a": 1, "b": 1, "c": 1}}
    res = ndcg_at_k({"q": ["a"]}, qrels, 3)
    assert res.per_query["q"] == pytest.approx(1.0 / (_disc(1) + _disc(2) + _disc(3)))


def test_negative_relevance_counts_as_not_relevant():
    qrels = {"q": {"a": -1, "b": 2}}
    assert recall_at_k({"q": ["a"]}, qrels, 1).mean == 0.0
    assert ndcg_at_k({"q": ["a", "b"]}, qrels, 2).mean == pytest.approx(_disc(2) / _disc(1))


def test_scored_pairs_are_ranked_by_score_ties_stable():
    qrels = {"q": {"a": 1}}
    pairs = {"q": [("b", 0.5), ("a", 0.9), ("c", 0.5)]}
    assert ndcg_at_k(pairs, qrels, 1).mean == 1.0
    tied = {"q": [("b", 1.0), ("a", 1.0)]}  # equal scores keep the given order: "b" first
    assert recall_at_k(tied, qrels, 1).mean == 0.0
    assert recall_at_k(tied, qrels, 2).mean == 1.0


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_properties_on_random_runs(data):
    docs = [f"d{i}" for i in range(12)]
    judged = data.draw(st.dictionaries(st.sampled_from(docs), st.integers(0, 3), min_size=1))
    ranked = data.draw(st.lists(st.sampled_from(docs), unique=True, max_size=12))
    k = data.draw(st.integers(1, 14))
    qrels = {"q": judged}
    if not any(r > 0 for r in judged.values()):
        with pytest.raises(ValueError, match="no query in qrels has a relevant document"):
            ndcg_at_k({"q": ranked}, qrels, k)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ranking that hits no judged document warns
        nd = ndcg_at_k({"q": ranked}, qrels, k).mean
        rc = recall_at_k({"q": ranked}, qrels, k).mean
    assert 0.0 <= nd <= 1.0 + 1e-12 and 0.0 <= rc <= 1.0
    ideal = sorted(judged, key=lambda d: -judged[d])
    assert ndcg_at_k({"q": ideal}, qrels, k).mean == pytest.approx(1.0)
    relevant = {d for d, r in judged.items() if r > 0}
    assert recall_at_k({"q": ideal}, qrels, k).mean == pytest.approx(min(k, len(relevant)) / len(relevant))


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "5", None])
def test_bad_k(k):
    for fn in (recall_at_k, ndcg_at_k):
        with pytest.raises(ValueError, match="k must be a positive int"):
            fn(RUN, QRELS, k)


@pytest.mark.parametrize("run,qrels,match", [
    ({}, QRELS, "run is empty"),
    ([("q1", ["a"])], QRELS, "run must be a dict"),
    (RUN, {}, "qrels must be a non-empty dict"),
    (RUN, {"q1": ["a", "b"]}, r"qrels\['q1'\] must be a dict"),
    (RUN, {"q1": {"a": 1.0}}, "int relevance"),
    ({"q1": "abc"}, QRELS, "list of doc ids"),
    ({"q1": ["a", "b", "a"]}, QRELS, "'a' more than once"),
    ({"q1": [("a", 1.0), "b"]}, QRELS, "mixes"),
    ({"q1": [("a", 1.0, 2)]}, QRELS, "mixes"),
    ({"q1": [("a", float("nan"))]}, QRELS, "score"),
    ({1: ["a"], 2: ["d"]}, QRELS, "no query id of the run is in qrels"),
    (RUN, {"q1": {"a": 0}, "q2": {"d": 0}}, "no query in qrels has a relevant document"),
])
def test_bad_runs_and_qrels(run, qrels, match):
    with pytest.raises(ValueError, match=match):
        recall_at_k(run, qrels, 5)


def test_warns_when_no_retrieved_document_is_judged():
    qrels = {"q": {"1": 1, "2": 1}}
    with pytest.warns(UserWarning, match="no retrieved document is judged"):
        res = recall_at_k({"q": [1, 2]}, qrels, 2)  # ints where qrels have strings
    assert res.mean == 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compare_runs({"ints": {"q": [1, 2]}}, qrels, ks=(1, 2))
    assert len(caught) == 1 and "compare_runs['ints']" in str(caught[0].message)


# -- several runs --------------------------------------------------------------------------------


def test_compare_runs_matches_the_single_metrics():
    runs = {"float": RUN, "bits": {"q1": ["a", "b"], "q2": ["z", "e"]}, "poor": {"q1": ["c"]}}
    rows = compare_runs(runs, QRELS, ks=(1, 3))
    assert [r["run"] for r in rows] == ["float", "bits", "poor"]
    assert list(rows[0]) == ["run", "recall@1", "recall@3", "ndcg@1", "ndcg@3", "queries"]
    for row, run in zip(rows, runs.values()):
        for k in (1, 3):
            assert row[f"recall@{k}"] == recall_at_k(run, QRELS, k).mean
            assert row[f"ndcg@{k}"] == ndcg_at_k(run, QRELS, k).mean
        assert row["queries"] == 2  # the same queries for every run
    only_ndcg = compare_runs(runs, QRELS, ks=[10], metrics=["ndcg"])
    assert list(only_ndcg[0]) == ["run", "ndcg@10", "queries"]


@pytest.mark.parametrize("runs,kw,match", [
    ({}, {}, "non-empty dict"),
    ({"a": RUN}, {"ks": ()}, "ks"),
    ({"a": RUN}, {"ks": 5}, "ks"),
    ({"a": RUN}, {"ks": (1, 0)}, "positive int"),
    ({"a": RUN}, {"metrics": ["map"]}, "metrics"),
    ({"a": RUN, "b": {}}, {}, r"compare_runs\['b'\]: run is empty"),
])
def test_compare_runs_bad_input(runs, kw, match):
    with pytest.raises(ValueError, match=match):
        compare_runs(runs, QRELS, **kw)


def test_format_table_markdown():
    rows = compare_runs({"float": RUN, "bits": {"q1": ["a"], "q2": ["d"]}}, QRELS, ks=(1, 5))
    text = format_table(rows, digits=3)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == list(rows[0])
    assert set(lines[1].replace("|", "").replace(" ", "")) <= {"-", ":"}
    for line, row in zip(lines[2:], rows):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row["run"]
        assert cells[1] == f"{row['recall@1']:.3f}"
        assert cells[-1] == str(row["queries"])
    assert len({len(line) for line in lines}) == 1  # columns aligned
    with pytest.raises(ValueError, match="no rows"):
        format_table([])
    with pytest.raises(ValueError, match="row 1 has columns"):
        format_table([{"run": "a", "x": 1.0}, {"run": "b"}])


def test_eval_result_is_a_dataclass_with_lists():
    res = ndcg_at_k(RUN, QRELS)
    assert isinstance(res, EvalResult) and res.k == 10 and res.metric == "ndcg@10"


# -- search modes on one index ------------------------------------------------------------------


def _clustered_corpus(n_docs=40, dim=64, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    centroids = torch.nn.functional.normalize(torch.randn(12, dim, generator=g), dim=1)
    docs = []
    for _ in range(n_docs):
        L = int(torch.randint(20, 40, (1,), generator=g))
        c = centroids[torch.randint(0, 12, (L,), generator=g)]
        docs.append(torch.nn.functional.normalize(c + 0.6 * torch.randn(L, dim, generator=g), dim=1))
    queries = {}
    for q in range(12):
        target = q * 3
        rows = docs[target][torch.randperm(docs[target].shape[0], generator=g)[:6]]
        queries[f"q{q}"] = torch.nn.functional.normalize(rows + 0.3 * torch.randn(6, dim, generator=g), dim=1)
    qrels = {f"q{q}": {f"d{q * 3}": 1} for q in range(12)}
    return docs, queries, qrels


def test_compare_search_modes_on_float_and_binary_index():
    import torch

    import colkern
    from colkern.retrieval.metrics import SEARCH_MODES, compare_search_modes, search_runs

    docs, queries, qrels = _clustered_corpus()
    ids = [f"d{i}" for i in range(len(docs))]
    index = colkern.MultiVectorIndex.build(docs, ids=ids, float_dtype=torch.float32)
    rows = compare_search_modes(queries, index, qrels, ks=(1, 5))
    assert [r["run"] for r in rows] == list(SEARCH_MODES)
    by_mode = {r["run"]: r for r in rows}
    # exact float mode = recall of colkern.maxsim_topk over the whole corpus, computed independently
    hits5 = hits1 = 0
    for qid, Q in queries.items():
        _, top = colkern.maxsim_topk(Q[None], docs, k=5)
        ranked = [ids[i] for i in top[0].tolist()]
        target = next(iter(qrels[qid]))
        hits5 += target in ranked
        hits1 += ranked[0] == target
    assert by_mode["float (exact MaxSim)"]["recall@5"] == pytest.approx(hits5 / len(queries))
    assert by_mode["float (exact MaxSim)"]["recall@1"] == pytest.approx(hits1 / len(queries))
    # two-stage with every document kept as a candidate is exact float search
    full = search_runs(queries, index, k=5, oversample=len(docs), modes=["hamming + float rescoring"])
    exact = search_runs(queries, index, k=5, modes=["float (exact MaxSim)"])
    assert [d for d, _ in full["hamming + float rescoring"]["q0"]] == [d for d, _ in exact["float (exact MaxSim)"]["q0"]]

    binary = colkern.MultiVectorIndex.build(docs, ids=ids, keep_float=False)
    rows = compare_search_modes(queries, binary, qrels, ks=(5,))
    assert [r["run"] for r in rows] == ["float query x bits", "hamming", "hamming + bits rescoring"]
    with pytest.raises(ValueError, match="needs float vectors"):
        search_runs(queries, binary, modes=["float (exact MaxSim)"])
    with pytest.raises(ValueError, match="modes must be"):
        search_runs(queries, binary, modes=["nope"])
    with pytest.raises(ValueError, match="queries must be"):
        search_runs({}, binary)
