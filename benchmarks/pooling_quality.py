"""What token pooling costs in retrieval quality and buys in vectors and MaxSim time, on a
synthetic ColPali-like corpus (the clustered generator of benchmarks/bits_quality.py).

    python benchmarks/pooling_quality.py                                   # 500 pages x 1030, 64 queries
    python benchmarks/pooling_quality.py --docs 100 --doc-len 300 --queries 50   # quick

For each pool factor (1 = no pooling) every page is pooled with colkern pool_tokens
(hierarchical, as colpali-engine's HierarchicalTokenPooler), then exact MaxSim top-10 over the
pooled corpus (colkern.maxsim_topk) is compared with exact MaxSim top-10 over the unpooled
corpus: recall@10 = |top-10 overlap| / 10, averaged over the queries. Also reported: whether the
query's source page is in the top-10 and first, the vectors kept, the pooling time (pages/s) and the
MaxSim scan time per query (one query at a time over the whole corpus, median). Queries are
noisy copies of 20-32 tokens of a source page, as in bits_quality.py. Prints a markdown table
and writes JSON to benchmarks/results/pool-tokens-<cpu>.json (or --json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import time

import torch
from bits_quality import Generator, hit_rate, recall
from bits_quality import parse_args as generator_args

import colkern
from colkern._bench.cases import cpu_name
from colkern.ops import PackedDocs
from colkern.retrieval.pooling import pool_tokens

K = 10


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=500, help="pages in the corpus")
    p.add_argument("--doc-len", type=int, default=1030, help="vectors per page (1030 = ColPali)")
    p.add_argument("--queries", type=int, default=64)
    p.add_argument("--factors", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="default: benchmarks/results/pool-tokens-<cpu>.json")
    return p.parse_args(argv)


def top1(indices, targets) -> float:
    return sum(int(row[0]) == t for row, t in zip(indices.tolist(), targets)) / len(targets)


def scan_times(Q, mask, corpus: PackedDocs):
    """Median seconds of one exact MaxSim top-10 scan per query (B = 1)."""
    colkern.maxsim_topk(Q[0][mask[0]], corpus, K)  # warm-up
    times = []
    for b in range(Q.shape[0]):
        q = Q[b][mask[b]]
        t = time.perf_counter()
        colkern.maxsim_topk(q, corpus, K)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    g = generator_args(["--doc-len", str(a.doc_len), "--seed", str(a.seed)])
    gen = Generator(g, a.seed)
    info = colkern.backend_info()
    cpu = cpu_name()
    print(f"colkern {colkern.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{cpu}, ISA {info['cpu_isa_active']}", flush=True)

    L = a.doc_len
    values = gen.pages(a.docs, L)
    docs = list(values.view(a.docs, L, -1))
    full = PackedDocs(values, torch.arange(a.docs + 1, dtype=torch.int64) * L)
    targets = torch.randint(0, a.docs, (a.queries,), generator=torch.Generator().manual_seed(a.seed + 1)).tolist()
    Q, mask = gen.queries(lambda t: docs[t], targets)
    _, exact = colkern.maxsim_topk(Q, full, K, q_mask=mask)
    print(f"corpus: {a.docs} pages x {L} x {values.shape[1]}, {a.queries} queries", flush=True)

    rows = []
    for factor in a.factors:
        t = time.perf_counter()
        pooled = pool_tokens(full, factor)
        pool_s = time.perf_counter() - t
        _, idx = colkern.maxsim_topk(Q, pooled, K, q_mask=mask)
        rows.append({"factor": factor, "vectors": pooled.values.shape[0],
                     "vectors_kept": pooled.values.shape[0] / values.shape[0],
                     "recall@10": recall(idx, exact), "target_hit@10": hit_rate(idx, targets),
                     "target_at_1": top1(idx, targets),
                     "scan_s_per_query": scan_times(Q, mask, pooled),
                     "pool_s": pool_s, "pool_pages_per_s": a.docs / pool_s if factor > 1 else None})
        r = rows[-1]
        print(f"factor {factor}: {r['vectors']} vectors, recall@10 {r['recall@10']:.3f}, "
              f"scan {r['scan_s_per_query'] * 1e3:.1f} ms/query, pooled in {pool_s:.1f} s", flush=True)

    # How much of recall@10 any perturbation keeps on this corpus, where the pages behind the
    # source page are near-ties: the unpooled pages merely rounded to bf16.
    _, idx = colkern.maxsim_topk(Q.bfloat16(), full.to(dtype=torch.bfloat16), K, q_mask=mask)
    reference = {"recall@10": recall(idx, exact), "target_hit@10": hit_rate(idx, targets),
                 "target_at_1": top1(idx, targets)}

    base = next((r for r in rows if r["factor"] == 1), None)
    table = ["| pool factor | vectors kept | recall@10 vs unpooled | source page in top-10 | source page first "
             "| MaxSim scan ms/query | speed-up | pooling pages/s |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        speed = f"{base['scan_s_per_query'] / r['scan_s_per_query']:.2f}x" if base else "-"
        pps = f"{r['pool_pages_per_s']:.1f}" if r["pool_pages_per_s"] else "-"
        table.append(f"| {r['factor']} | {r['vectors']:,} ({100 * r['vectors_kept']:.1f}%) | {r['recall@10']:.3f} "
                     f"| {r['target_hit@10']:.3f} | {r['target_at_1']:.3f} | {r['scan_s_per_query'] * 1e3:.2f} "
                     f"| {speed} | {pps} |")
    table.append(f"| 1, rounded to bf16 (reference) | {values.shape[0]:,} (100.0%) | {reference['recall@10']:.3f} "
                 f"| {reference['target_hit@10']:.3f} | {reference['target_at_1']:.3f} | - | - | - |")
    print(f"\n{a.docs} pages x {L} vectors, {a.queries} queries, exact MaxSim top-{K}, "
          f"{torch.get_num_threads()} threads, {cpu}\n")
    print("\n".join(table))

    path = a.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                  f"pool-tokens-{re.sub(r'[^a-z0-9]+', '-', cpu.lower()).strip('-')}.json")
    result = {"config": vars(a), "generator": vars(g), "rows": rows, "bf16_reference": reference,
              "machine": {"cpu": cpu, "platform": platform.platform(), "threads": torch.get_num_threads(),
                          "colkern_info": info}}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
