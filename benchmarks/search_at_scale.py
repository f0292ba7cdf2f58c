"""colkern.Index at scale: build time, memory, bytes per vector, latency and recall@10 against exact.

    python benchmarks/search_at_scale.py                       # 1M vectors, about a minute
    python benchmarks/search_at_scale.py --vectors 10000000 --muvera
    python benchmarks/search_at_scale.py --vectors 100000000 --doc-len 250 --dir /big/disk/idx
    # the same index later, page cache dropped, 200 warm-up queries, in a 6 GiB memory cgroup
    # (cgroup v1 as root: the process and the page cache it faults in stay under the limit)
    mkdir /sys/fs/cgroup/memory/ck6g && echo 6G > /sys/fs/cgroup/memory/ck6g/memory.limit_in_bytes
    sh -c 'echo $$ > /sys/fs/cgroup/memory/ck6g/cgroup.procs && exec python benchmarks/search_at_scale.py \
        --vectors 100000000 --dir /big/disk/idx --reuse --warmup 200 --drop-caches --settings auto,auto,256'

Corpus: the clustered model of benchmarks/bits_quality.py (pages mixing topic centroids plus
shared background centroids, per-dimension noise) with a common mean direction added to every
vector (`--mean-shift`, real embeddings are anisotropic), generated page chunk by page chunk
straight into Index.add: one shard per `--shard-vectors`, floats stored as fp16 in the shards
and memory-mapped, so the corpus never has to fit in memory. Queries take 20-32 tokens of a
random target page plus noise.

Reported (JSON in benchmarks/results/search-at-scale-<cpu>-<N>.json):
  build: time (generation timed apart), peak RSS (VmHWM), bytes on disk per vector;
  search, per setting (nprobe, candidates, rescore): median and p95 latency per query (batch 1,
  `--threads` threads), recall@10 against exact float MaxSim top-10, recall of the candidate
  stage (exact top-10 found among the candidates), peak RSS while searching (VmHWM reset after
  the build; file-backed pages of the mmap included, and separately the anonymous part);
  exact: the ground truth, colkern.maxsim_topk over every shard's fp16 floats (all queries in
  one batch), merged;
  centring: float x bits recall@10 (maxsim_bits top-10 vs exact, first shard) with sign bits of
  x and of x - mean;
  muvera (--muvera): fixed-dimensional encodings + exact inner-product search and, if usearch
  is installed, an HNSW graph, then exact MaxSim reranking (bench-only: not a colkern mode).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

import torch

import colkern
from colkern._bench.cases import cpu_name
from colkern.retrieval.centroids import auto_num_centroids
from colkern.retrieval.sharded import RESCORE, Index
from colkern.retrieval.sharded_search import AUTO, resolve_knobs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bits_quality import Generator  # noqa: E402
from bits_quality import parse_args as corpus_args  # noqa: E402
from muvera import muvera_report  # noqa: E402

K = 10
SETTINGS = [(AUTO, AUTO, RESCORE), (16, 512, 128), (16, 256, 256), (8, 256, 64), (24, 1024, 256)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vectors", type=int, default=1_000_000, help="token vectors in the corpus (approximately)")
    p.add_argument("--doc-len", type=int, default=250, help="vectors per page (1030 = ColPali, 250 ~ pooled)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--mean-shift", type=float, default=1.0, help="common mean direction added to every vector")
    p.add_argument("--shard-vectors", type=int, default=8_000_000, help="vectors per add() / shard")
    p.add_argument("--centroids", type=int, default=0, help="codebook size (0: auto from --vectors)")
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dir", help="index directory (default: a temporary one, removed at the end)")
    p.add_argument("--reuse", action="store_true", help="search an index already built in --dir")
    p.add_argument("--settings", nargs="*", metavar="P,C,R",
                   help="nprobe,candidates,rescore to time (nprobe and candidates may be 'auto', the defaults)")
    p.add_argument("--warmup", type=int, default=0,
                   help="before each setting, this many other queries (other target pages), untimed: the page "
                        "cache then holds what a serving process would have, not what these queries need")
    p.add_argument("--drop-caches", action="store_true",
                   help="drop the page cache before each setting (root: /proc/sys/vm/drop_caches); with --warmup "
                        "the warm-up queries run after the drop")
    p.add_argument("--muvera", action="store_true", help="also measure MUVERA encodings + exact / HNSW search")
    p.add_argument("--json", help="output path (default benchmarks/results/search-at-scale-<cpu>-<N>.json)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def proc_status() -> dict:
    """VmHWM / VmRSS / RssAnon / RssFile in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def reset_peak_rss() -> None:
    try:  # Linux: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def build(a, gen: Generator) -> dict:
    n_pages = max(1, a.vectors // a.doc_len)
    T = n_pages * a.doc_len
    K = a.centroids or auto_num_centroids(T)
    pages_per_shard = max(1, a.shard_vectors // a.doc_len)
    chunk = 200  # pages generated per step
    t0, c0 = time.perf_counter(), time.process_time()
    t_gen = 0.0
    index = Index.create(a.dir, a.dim, centroids=K)
    for lo in range(0, n_pages, pages_per_shard):
        n = min(pages_per_shard, n_pages - lo)
        t = time.perf_counter()
        vals = torch.empty(n * a.doc_len, a.dim, dtype=torch.float16)
        for c in range(0, n, chunk):
            m = min(chunk, n - c)
            vals[c * a.doc_len:(c + m) * a.doc_len] = gen.pages(m, a.doc_len)
        t_gen += time.perf_counter() - t
        offsets = torch.arange(n + 1, dtype=torch.int64) * a.doc_len
        index.add(colkern.PackedDocs(vals, offsets), ids=[f"p{lo + i}" for i in range(n)],
                  metadata=[{"part": (lo + i) % 4} for i in range(n)])
        del vals
        print(f"  added pages {lo}..{lo + n} ({(lo + n) * a.doc_len:,} vectors) "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    disk = sum(os.path.getsize(os.path.join(a.dir, f)) for f in os.listdir(a.dir))
    return {"pages": n_pages, "doc_len": a.doc_len, "vectors": T, "centroids": K, "shards": len(index.shards),
            "build_s": total, "build_cpu_s": cpu, "generate_s": t_gen, "index_s": total - t_gen,
            "peak_rss_bytes": proc_status()["VmHWM"], "disk_bytes": disk, "disk_bytes_per_vector": disk / T,
            "stored_bytes_per_vector": index.bytes_per_vector}


def exact_topk(index: Index, Q, mask):
    """Ground truth: exact float MaxSim top-10 per shard (colkern.maxsim_topk), merged."""
    ss, ps = [], []
    for sh, base in zip(index.shards, index.bases.tolist()):
        s, i = colkern.maxsim_topk(Q.half(), colkern.PackedDocs(sh.floats, sh.offsets), K, q_mask=mask)
        ss.append(s)
        ps.append(i + base)
    s, p = torch.cat(ss, 1), torch.cat(ps, 1)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :K]
    return s.gather(1, order), p.gather(1, order)


def recall(found, exact) -> float:
    return statistics.mean(len(set(f[:K]) & set(e[:K])) / K for f, e in zip(found, exact))


def rows_of(index: Index, pos: int):
    s = int(torch.searchsorted(index.bases, torch.tensor(pos), right=True)) - 1
    sh = index.shards[s]
    lo, hi = sh.offsets[pos - int(index.bases[s])], sh.offsets[pos - int(index.bases[s]) + 1]
    return sh.floats[int(lo):int(hi)]


def drop_page_cache() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def parse_setting(text: str) -> tuple:
    parts = text.split(",")
    if len(parts) != 3:
        raise SystemExit(f"--settings: expected nprobe,candidates,rescore, got {text!r}")
    return tuple(p if p == AUTO and i < 2 else int(p) for i, p in enumerate(parts))


def time_setting(index: Index, qs, setting, warm=()) -> dict:
    """Times one (nprobe, candidates, rescore) setting, batch 1; keeps what recall needs.
    warm: untimed queries run first (the first query is the warm-up when there are none)."""
    nprobe, cands, resc = setting
    for q in (warm or qs[:1]):
        index.search(q, k=K, nprobe=nprobe, candidates=cands, rescore=resc)
    lat, cpu, found, cand = [], [], [], []
    for q in qs:
        t, c = time.perf_counter(), time.process_time()
        r = index.search(q, k=K, nprobe=nprobe, candidates=cands, rescore=resc)
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        found.append(r.indices.tolist())
    for q in qs:  # untimed: the candidate stage's output, for its recall
        r = index.search(q, k=K, nprobe=nprobe, candidates=cands, rescore=resc, return_candidates=True)
        cand.append(set(r.candidate_indices.tolist()))
    lat.sort()
    used = resolve_knobs(nprobe, cands, index.codebook.num_centroids)
    return {"nprobe": nprobe, "candidates": cands, "rescore": resc, "nprobe_used": used[0], "candidates_used": used[1],
            "warmup_queries": len(warm),
            "median_ms": 1e3 * statistics.median(lat), "p95_ms": 1e3 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
            "median_cpu_ms": 1e3 * statistics.median(cpu), "load_avg_1min": os.getloadavg()[0],
            "_found": found, "_cand": cand}


def centring(index: Index, Q, mask) -> dict:
    """float x bits recall@10 on the first shard: sign bits of x; of x - mean with the plain
    query; of x - mean with the query projected orthogonally to the mean (what Index does)."""
    sh = index.shards[0]
    _, ex = colkern.maxsim_topk(Q.half(), colkern.PackedDocs(sh.floats, sh.offsets), K, q_mask=mask)
    raw = torch.empty_like(sh.bits)
    for lo in range(0, sh.floats.shape[0], 1 << 18):
        raw[lo:lo + (1 << 18)] = colkern.pack_bits(sh.floats[lo:lo + (1 << 18)].float().contiguous())
    u = index.codebook.mean / index.codebook.mean.norm()
    Q_perp = (Q - (Q @ u)[..., None] * u).contiguous()
    out = {"docs": sh.num_docs, "mean_norm": float(index.codebook.mean.norm())}
    for name, bits, q in (("raw", raw, Q), ("centred", sh.bits, Q), ("centred_qperp", sh.bits, Q_perp)):
        _, i = colkern.maxsim_bits_topk(q, colkern.PackedDocs(bits, sh.offsets), K, dim=index.dim, q_mask=mask)
        out[f"bits_recall@10_{name}"] = recall(i.tolist(), ex.tolist())
    return out


def main(argv=None) -> dict:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    tmp = None
    if a.dir is None:
        tmp = a.dir = tempfile.mkdtemp(prefix="colkern-scale-")
        shutil.rmtree(a.dir)
    gen = Generator(corpus_args(["--dim", str(a.dim), "--mean-shift", str(a.mean_shift)]), a.seed)
    out = {"cpu": cpu_name(), "threads": a.threads, "colkern_info": colkern.backend_info(), "args": vars(a)}
    try:
        if not a.reuse:
            print(f"building {a.vectors:,} vectors in {a.dir}", flush=True)
            out["build"] = build(a, gen)
            print(json.dumps(out["build"]), flush=True)
        gc.collect()
        reset_peak_rss()
        t = time.perf_counter()
        index = Index.open(a.dir)
        out["open_s"] = time.perf_counter() - t
        g = torch.Generator().manual_seed(a.seed + 1)
        targets = torch.randint(0, index.num_positions, (a.queries,), generator=g).tolist()
        Q, mask = gen.queries(lambda t: rows_of(index, t), targets)
        settings = [parse_setting(s) for s in a.settings] if a.settings else SETTINGS
        qs = [Q[b][mask[b]].contiguous() for b in range(Q.shape[0])]
        warm = []
        if a.warmup:
            others = torch.randint(0, index.num_positions, (a.warmup,), generator=g).tolist()
            Qw, mw = gen.queries(lambda t: rows_of(index, t), others)
            warm = [Qw[b][mw[b]].contiguous() for b in range(Qw.shape[0])]
        # Our searches before the ground truth: the exact scan pages the whole corpus in, which
        # would inflate the resident memory measured for search.
        runs = []
        for s in settings:
            if a.drop_caches:
                drop_page_cache()
            res = time_setting(index, qs, s, warm)
            res["page_cache_dropped"] = a.drop_caches
            res.update({f"{k}_bytes": v for k, v in proc_status().items()})
            runs.append(res)
            print(f"  {s}: median {res['median_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms", flush=True)
        t = time.perf_counter()
        exact_s, exact_i = exact_topk(index, Q, mask)
        out["exact"] = {"s_per_query_batched": (time.perf_counter() - t) / a.queries, "queries": a.queries,
                        "mean_score_gap_2nd_10th": float((exact_s[:, 1] - exact_s[:, K - 1]).mean())}
        ex = exact_i.tolist()
        for res in runs:
            res["recall@10"] = recall(res.pop("_found"), ex)
            res["candidate_recall@10"] = statistics.mean(len(c & set(e)) / K for c, e in zip(res.pop("_cand"), ex))
            print(json.dumps(res), flush=True)
        out["search"] = runs
        out["centring"] = centring(index, Q, mask)
        print(json.dumps(out["centring"]), flush=True)
        if a.muvera:
            out["muvera"] = muvera_report(index, Q, mask, exact_i, K)
            print(json.dumps(out["muvera"]), flush=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    slug = re.sub(r"[^a-z0-9]+", "-", out["cpu"].lower()).strip("-")[:40]
    path = a.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                  f"search-at-scale-{slug}-{a.vectors}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
