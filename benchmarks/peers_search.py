"""fast-plaid and xtr-warp-rs next to colkern.Index, on the corpus of benchmarks/search_at_scale.py.

The peers are never colkern dependencies: they run in a venv of their own, outside the repository.
Both ship wheels built against one torch release (fast-plaid 1.7.0.2110 pins torch==2.11.0,
xtr-warp-rs 2.1.0.2110 asks torch>=2.11,<2.12; the last digits of their versions name the torch
build), so one venv holds both. On PyPI torch 2.11.0 is the CUDA build (a few GB); it runs on
the CPU.

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install torch==2.11.0
    /work/peers-venv/bin/pip install fast-plaid==1.7.0.2110 xtr-warp-rs==2.1.0.2110

    # 1. colkern venv: corpus, queries and exact top-10 to --dir, colkern.Index build + search
    .venv/bin/python benchmarks/peers_search.py prepare --vectors 300000 --doc-len 300 --dir /tmp/peers-data/300k
    # 2. peers venv (no colkern import): build, batch-1 search, recall@10 against the exact file
    /work/peers-venv/bin/python benchmarks/peers_search.py run-peers --dir /tmp/peers-data/300k

prepare: search_at_scale.build() generates the pages (same Generator, seeds and mean shift as
search_at_scale.py) straight into a colkern.Index under DIR/colkern-index; the shards' fp16
floats are then written out as DIR/docs.npy [T, dim] float16 + DIR/doc_lens.npy, so the peers
index exactly the vectors colkern indexed. Queries are made as in search_at_scale.main()
(DIR/queries.npy [B, q_max, dim] float32, zero-padded, + DIR/query_lens.npy); the ground truth
is search_at_scale.exact_topk() (colkern.maxsim_topk over the fp16 floats), DIR/exact_top10.npy.
colkern's own figures (build, and the default search setting timed as search_at_scale does)
go to DIR/colkern.json.

run-peers: for each peer, index build time (wall, from in-memory float32 per-document tensors
to a searchable index; xtr-warp's load() timed apart), then per query, one at a time (batch 1,
one warm-up query first): median / p95 latency, recall@10 against the exact top-10 and the share
of queries whose source page is in the top-10 (target_hit_at_10; exact_target_hit_at_10 for the
exact top-10), at the peer's default search parameters and one higher-recall setting
(fast-plaid: n_ivf_probe / n_full_scores; xtr-warp: nprobe / bound). Threads:
torch.set_num_threads(--threads) and OMP / MKL / RAYON_NUM_THREADS set before torch is imported;
xtr-warp's search gets num_threads=--threads (its default is 1). Output:
benchmarks/results/peers-<cpu>-<N>.json, with colkern's figures from colkern.json alongside.

Seen on a 2-core EPYC (AVX2): fast-plaid's CPU search is dominated by aten::bmm in fp16 (its
search casts queries to float16 on every device; PyTorch's fp16 bmm on this CPU is ~10x its
fp32 one), so its latency is far from what it does on a GPU; xtr-warp's recall@10 against exact
MaxSim stays well below 1 on this corpus (0.55-0.8 seen at 30k-300k vectors) even with nprobe,
bound and t_prime raised, though the query's source page is always in its top-10.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time

K = 10
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="colkern venv: corpus + exact top-10 to --dir, colkern.Index figures")
    pr.add_argument("--vectors", type=int, default=1_000_000)
    pr.add_argument("--doc-len", type=int, default=250)
    pr.add_argument("--dim", type=int, default=128)
    pr.add_argument("--mean-shift", type=float, default=1.0)
    pr.add_argument("--queries", type=int, default=30)
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--settings", nargs="*", metavar="P,C,R", help="colkern nprobe,candidates,rescore (default: Index's)")
    rp = sub.add_parser("run-peers", help="peers venv: build + batch-1 search with fast-plaid and xtr-warp-rs")
    rp.add_argument("--peers", nargs="*", default=["fast-plaid", "xtr-warp"], choices=["fast-plaid", "xtr-warp"])
    rp.add_argument("--json", help="output path (default benchmarks/results/peers-<cpu>-<N>.json)")
    rp.add_argument("--keep-index", action="store_true", help="leave the peers' indexes in --dir")
    for q in (pr, rp):
        q.add_argument("--dir", required=True, help="data directory shared by the two steps")
        q.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def set_threads(n: int) -> None:
    """Before torch (and the peers' Rust thread pools) start."""
    for v in THREAD_VARS:
        os.environ[v] = str(n)


def latency_summary(lat: list) -> dict:
    lat = sorted(lat)
    return {"median_ms": 1e3 * statistics.median(lat), "p95_ms": 1e3 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
            "load_avg_1min": os.getloadavg()[0]}


def recall(found, exact) -> float:
    return statistics.mean(len(set(f[:K]) & set(e[:K])) / K for f, e in zip(found, exact))


# ---------------------------------------------------------------------------------------------
# prepare (colkern venv)
# ---------------------------------------------------------------------------------------------

def prepare(a) -> dict:
    import numpy as np
    import torch

    import colkern
    sys.path.insert(0, HERE)
    import search_at_scale as sas
    from bits_quality import Generator
    from bits_quality import parse_args as corpus_args

    torch.set_num_threads(a.threads)
    os.makedirs(a.dir, exist_ok=True)
    idx_dir = os.path.join(a.dir, "colkern-index")
    shutil.rmtree(idx_dir, ignore_errors=True)
    # search_at_scale's own arguments: same defaults for what this script does not expose
    sa = sas.parse_args(["--vectors", str(a.vectors), "--doc-len", str(a.doc_len), "--dim", str(a.dim),
                         "--mean-shift", str(a.mean_shift), "--queries", str(a.queries), "--threads", str(a.threads),
                         "--seed", str(a.seed), "--dir", idx_dir])
    gen = Generator(corpus_args(["--dim", str(a.dim), "--mean-shift", str(a.mean_shift)]), a.seed)
    out = {"cpu": sas.cpu_name(), "threads": a.threads, "colkern_version": getattr(colkern, "__version__", None),
           "colkern_info": colkern.backend_info(), "args": vars(a)}
    print(f"colkern: building {a.vectors:,} vectors in {idx_dir}", flush=True)
    out["build"] = sas.build(sa, gen)
    print(json.dumps(out["build"]), flush=True)

    index = sas.Index.open(idx_dir)
    # the exact vectors colkern indexed, for the peers
    floats = torch.cat([sh.floats for sh in index.shards]).numpy()
    lens = torch.cat([sh.offsets.diff() for sh in index.shards]).numpy().astype(np.int64)
    np.save(os.path.join(a.dir, "docs.npy"), floats.astype(np.float16, copy=False))
    np.save(os.path.join(a.dir, "doc_lens.npy"), lens)
    del floats

    # queries exactly as search_at_scale.main() makes them
    g = torch.Generator().manual_seed(a.seed + 1)
    targets = torch.randint(0, index.num_positions, (a.queries,), generator=g).tolist()
    Q, mask = gen.queries(lambda t: sas.rows_of(index, t), targets)
    qs = [Q[b][mask[b]].contiguous() for b in range(Q.shape[0])]
    np.save(os.path.join(a.dir, "queries.npy"), Q.numpy().astype(np.float32))
    np.save(os.path.join(a.dir, "query_lens.npy"), mask.sum(1).numpy().astype(np.int64))
    np.save(os.path.join(a.dir, "query_targets.npy"), np.asarray(targets, dtype=np.int64))

    settings = [sas.parse_setting(s) for s in a.settings] if a.settings else sas.SETTINGS[:1]
    runs = [sas.time_setting(index, qs, s) for s in settings]
    t = time.perf_counter()
    exact_s, exact_i = sas.exact_topk(index, Q, mask)
    out["exact"] = {"s_per_query_batched": (time.perf_counter() - t) / a.queries, "queries": a.queries,
                    "mean_score_gap_2nd_10th": float((exact_s[:, 1] - exact_s[:, K - 1]).mean())}
    np.save(os.path.join(a.dir, "exact_top10.npy"), exact_i.numpy().astype(np.int64))
    np.save(os.path.join(a.dir, "exact_scores.npy"), exact_s.float().numpy())
    ex = exact_i.tolist()
    for res in runs:
        res["recall@10"] = sas.recall(res.pop("_found"), ex)
        res["candidate_recall@10"] = statistics.mean(len(c & set(e)) / K for c, e in zip(res.pop("_cand"), ex))
        print(json.dumps(res), flush=True)
    out["search"] = runs
    with open(os.path.join(a.dir, "colkern.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"wrote {a.dir}/{{docs,doc_lens,queries,query_lens,exact_top10}}.npy and colkern.json")
    return out


# ---------------------------------------------------------------------------------------------
# run-peers (peers venv: numpy, torch and the peers only)
# ---------------------------------------------------------------------------------------------

def load_data(d: str):
    import numpy as np
    import torch
    docs = torch.from_numpy(np.load(os.path.join(d, "docs.npy"))).float()  # the peers' README form: float32
    lens = np.load(os.path.join(d, "doc_lens.npy")).tolist()
    Q = np.load(os.path.join(d, "queries.npy"))
    qlens = np.load(os.path.join(d, "query_lens.npy")).tolist()
    queries = [torch.from_numpy(Q[b, :n]).contiguous() for b, n in enumerate(qlens)]
    exact = np.load(os.path.join(d, "exact_top10.npy")).tolist()
    return list(torch.split(docs, lens)), queries, exact


def target_hit(found, d: str) -> float:
    """Share of queries whose source page (the one their tokens were drawn from) is in the top-10."""
    import numpy as np
    targets = np.load(os.path.join(d, "query_targets.npy")).tolist()
    return statistics.mean(t in f[:K] for f, t in zip(found, targets))


def time_searches(search, queries) -> tuple[dict, list]:
    """search(q) -> [(doc, score), ...]; batch 1, one untimed warm-up query."""
    search(queries[0])
    lat, found = [], []
    for q in queries:
        t = time.perf_counter()
        r = search(q)
        lat.append(time.perf_counter() - t)
        found.append([int(d) for d, _ in r])
    return latency_summary(lat), found


def record_build(out: dict, name: str, t0: float, path: str) -> None:
    """Build time since t0 (perf_counter), the load it ran under, the index's size on disk."""
    out["build_s"] = time.perf_counter() - t0
    out["build_load_avg_1min"] = os.getloadavg()[0]
    print(f"  {name} build {out['build_s']:.1f} s", flush=True)
    out["disk_bytes"] = dir_bytes(path)


def run_settings(out: dict, name: str, default_label: str, settings, search, queries, exact, d: str) -> None:
    """Times search(q, kw) for each kw of settings ({} = the peer's defaults, reported as
    default_label) and appends latency, recall@10 and target hits to out["runs"]."""
    for kw in settings:
        res, found = time_searches(lambda q: search(q, kw), queries)
        res.update(params=kw or default_label, recall_at_10=recall(found, exact), target_hit_at_10=target_hit(found, d))
        out["runs"].append(res)
        print(f"  {name} {kw or 'default'}: {json.dumps(res)}", flush=True)


def run_fast_plaid(docs, queries, exact, path: str, d: str) -> dict:
    from fast_plaid import search as fp_search
    shutil.rmtree(path, ignore_errors=True)
    out = {"version": pkg_version("fast-plaid"), "runs": []}
    t = time.perf_counter()
    fp = fp_search.FastPlaid(index=path, device="cpu")
    fp.create(documents_embeddings=docs)
    record_build(out, "fast-plaid", t, path)
    # defaults of FastPlaid.search (n_ivf_probe=8, n_full_scores=4096), then a wider probe
    run_settings(out, "fast-plaid", "default (n_ivf_probe=8, n_full_scores=4096)",
                 ({}, {"n_ivf_probe": 32, "n_full_scores": 8192}),
                 lambda q, kw: fp.search(queries_embeddings=[q], top_k=K, show_progress=False, n_processes=1, **kw)[0],
                 queries, exact, d)
    fp.close()
    return out


def run_xtr_warp(docs, queries, exact, path: str, d: str, threads: int) -> dict:
    import torch
    from xtr_warp import XTRWarp
    shutil.rmtree(path, ignore_errors=True)
    out = {"version": pkg_version("xtr-warp-rs"), "runs": []}
    t = time.perf_counter()
    w = XTRWarp(index=path)
    w.create(docs, device="cpu", show_progress=False)
    record_build(out, "xtr-warp", t, path)
    t = time.perf_counter()
    w.load(device="cpu", dtype=torch.float32)
    out["load_s"] = time.perf_counter() - t
    auto = w.optimize_hyperparams(K, queries[0][None])  # what search() picks when given nothing
    out["auto_params_first_query"] = dict(zip(("bound", "nprobe", "centroid_score_threshold", "max_candidates",
                                                "t_prime"), auto))
    # auto hyperparameters, then a wider probe (bound raised with it: bound is the centroids scored
    # before pruning, and the auto value is derived from the auto nprobe)
    wide = {"nprobe": 16, "bound": max(128, auto[0])}
    run_settings(out, "xtr-warp", "default (auto)", ({}, wide),
                 lambda q, kw: w.search(q, top_k=K, num_threads=threads, show_progress=False, **kw)[0],
                 queries, exact, d)
    w.free()
    return out


def pkg_version(name: str):
    from importlib.metadata import version
    return version(name)


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def run_peers(a) -> dict:
    import torch
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.dir, "colkern.json")) as f:
        colkern_out = json.load(f)
    docs, queries, exact = load_data(a.dir)
    n_vec = sum(d.shape[0] for d in docs)
    out = {"cpu": colkern_out["cpu"], "threads": a.threads, "torch": torch.__version__, "vectors": n_vec,
           "docs": len(docs), "queries": len(queries), "load_avg_1min_start": os.getloadavg()[0],
           "exact_target_hit_at_10": target_hit(exact, a.dir), "peers": {}}
    print(f"{len(docs):,} docs, {n_vec:,} vectors, {len(queries)} queries; torch {torch.__version__}", flush=True)
    for name in a.peers:
        path = os.path.join(a.dir, f"{name}-index")
        try:
            if name == "fast-plaid":
                out["peers"][name] = run_fast_plaid(docs, queries, exact, path, a.dir)
            else:
                out["peers"][name] = run_xtr_warp(docs, queries, exact, path, a.dir, a.threads)
        except Exception as e:  # a peer that fails on this machine is recorded, the other still runs
            import traceback
            traceback.print_exc()
            out["peers"][name] = {"error": f"{type(e).__name__}: {e}"}
        if not a.keep_index:
            shutil.rmtree(path, ignore_errors=True)
    b = colkern_out["build"]
    out["colkern"] = {"build_s": b["build_s"], "index_s": b["index_s"], "generate_s": b["generate_s"],
                      "search": [{k: r[k] for k in ("nprobe", "candidates", "rescore", "median_ms", "p95_ms",
                                                     "recall@10", "load_avg_1min")} for r in colkern_out["search"]],
                      "colkern_info": colkern_out.get("colkern_info")}
    slug = re.sub(r"[^a-z0-9]+", "-", out["cpu"].lower()).strip("-")[:40]
    path = a.json or os.path.join(HERE, "results", f"peers-{slug}-{colkern_out['args']['vectors']}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"wrote {path}")
    return out


def main(argv=None):
    a = parse_args(argv)
    set_threads(a.threads)
    return prepare(a) if a.cmd == "prepare" else run_peers(a)


if __name__ == "__main__":
    main()
