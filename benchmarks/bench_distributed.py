"""What Ray costs: colkern.distributed against the single process on the same pages and index.

    python benchmarks/bench_distributed.py                 # 200 A4 pages, prints JSON
    COLKERN_BENCH_QUICK=1 pytest benchmarks/bench_distributed.py --benchmark-disable   # ~10 pages, CI

Indexing: the same PDFs (A4, text, rendered at 144 dpi) through
  - "single": one process (one torch thread, as each actor) rendering (colkern.documents.pdf),
    encoding (the tiny random-weight
    ColPali of colkern.testing: no weights can be downloaded here) and writing the same sharded
    colkern.Index with Index.add every pages_per_shard pages: the work index_pdfs_ray spreads out;
  - "index_pdfs": the existing single-process indexer (single-file .colk index), for reference;
  - "ray": index_pdfs_ray with one encoder actor (pool_size=1) on a local Ray already started
    (ray.init is timed on its own: it is paid once per cluster, not per run).
Ray overhead = ray - single, in seconds and % of single. With the tiny model the work per page
is small (rendering dominates), so the overhead is the most visible it can be; with a real
ColPali (seconds per page on CPU, ~50 ms on a GPU) the same fixed cost is a smaller share.

Search: the index "ray" wrote, queries of 16 random unit vectors, one query per call: the
median latency of colkern.Index.search against ShardedSearcher(actors=2).search, and a batch
of all queries in one call (what scatter-gather amortises). Results are identical by design
(tests/test_distributed.py checks it); the benchmark checks it again on its queries.

extra_info / the printed JSON name the CPU (python -m colkern info); these VMs are shared, so
repeat and report ranges.
"""
import json
import os
import shutil
import statistics
import tempfile
import time

import torch
from _harness import QUICK

PAGES = 10 if QUICK else 200
PER_FILE = 5 if QUICK else 20
DPI = 144
BATCH_PAGES = 8
PAGES_PER_SHARD = 64
QUERIES = 5 if QUICK else 50


def make_corpus(directory, pages, per_file):
    import pymupdf

    files = []
    for f in range(0, pages, per_file):
        doc = pymupdf.open()
        for p in range(f, min(f + per_file, pages)):
            page = doc.new_page(width=595, height=842)  # A4 in points
            for line in range(40):
                page.insert_text((50, 60 + 18 * line), f"Page {p} line {line}: quarterly revenue by region, "
                                 f"invoice {p * 100 + line}, totals and notes", fontsize=10)
        path = os.path.join(directory, f"doc{f // per_file:03d}.pdf")
        doc.save(path)
        doc.close()
        files.append(path)
    return files


def single_process(files, out, encoder):
    """Render, encode and Index.add in one process: the work of index_pdfs_ray without Ray."""
    from colkern.colpali.indexing import encode_rendered_pages, page_id
    from colkern.documents.pdf import RenderedPage, iter_pdf_pages
    from colkern.retrieval.sharded import Index

    t0 = time.perf_counter()
    index, docs, ids, batch = None, [], [], []

    def encode():
        nonlocal index
        embs = encode_rendered_pages(batch, encoder)
        docs.extend(embs)
        ids.extend(page_id(p.file, p.page) for p in batch)
        batch.clear()
        if len(docs) >= PAGES_PER_SHARD:
            commit()

    def commit():
        nonlocal index, docs, ids
        if index is None:
            index = Index.create(out, docs[0].shape[1])
        index.add(docs, ids=ids)
        docs, ids = [], []

    for item in iter_pdf_pages(files, dpi=DPI):
        if isinstance(item, RenderedPage):
            batch.append(item)
            if len(batch) == BATCH_PAGES:
                encode()
    if batch:
        encode()
    if docs:
        commit()
    return time.perf_counter() - t0


def search_latency(index_dir, actors):
    from colkern.distributed import ShardedSearcher
    from colkern.retrieval.sharded import Index

    g = torch.Generator().manual_seed(0)
    index = Index.open(index_dir)
    Q = torch.nn.functional.normalize(torch.randn(QUERIES, 16, index.dim, generator=g), dim=-1)
    t0 = time.perf_counter()
    searcher = ShardedSearcher(index_dir, actors=actors, timeout_s=300)
    start_s = time.perf_counter() - t0
    try:
        def per_query(fn):
            fn(Q[0])  # warm-up
            times = []
            for q in Q:
                t = time.perf_counter()
                fn(q)
                times.append(time.perf_counter() - t)
            return statistics.median(times)

        local_s, ray_s = per_query(index.search), per_query(searcher.search)
        t = time.perf_counter()
        a = index.search(Q)
        local_batch = time.perf_counter() - t
        t = time.perf_counter()
        b = searcher.search(Q)
        ray_batch = time.perf_counter() - t
        identical = a.ids == b.ids and torch.equal(a.scores, b.scores)
    finally:
        searcher.close()
    return {"search_actors": actors, "searcher_start_s": start_s, "single_ms_per_query": local_s * 1e3,
            "ray_ms_per_query": ray_s * 1e3, "ray_overhead_ms_per_query": (ray_s - local_s) * 1e3,
            "single_batch_ms_per_query": local_batch / QUERIES * 1e3,
            "ray_batch_ms_per_query": ray_batch / QUERIES * 1e3, "identical_results": identical}


def measure():
    import ray

    from colkern._bench.cases import cpu_name
    from colkern.colpali.encoder import ColPaliEncoder
    from colkern.colpali.indexing import index_pdfs
    from colkern.distributed import index_pdfs_ray
    from colkern.testing import build_tiny_colpali

    tmp = tempfile.mkdtemp(prefix="colkern-bench-ray-")
    try:
        model = str(build_tiny_colpali(os.path.join(tmp, "model")))
        files = make_corpus(tmp, PAGES, PER_FILE)
        threads = torch.get_num_threads()
        encoder = ColPaliEncoder.load(model, device="cpu")
        # One torch thread, as each Ray actor: tiny forwards with 2 threads on a busy 2-core VM
        # slow down several-fold (thread contention), which would flatter Ray.
        torch.set_num_threads(1)
        single_s = single_process(files, os.path.join(tmp, "single.idx"), encoder)
        t0 = time.perf_counter()
        report = index_pdfs(files, os.path.join(tmp, "single.colk"), encoder, model=model, dpi=DPI,
                            batch_pages=BATCH_PAGES)
        index_pdfs_s = time.perf_counter() - t0
        assert report.added == PAGES, report
        # Encoding alone, one thread: what one CPU actor does per page with this model.
        from colkern.documents.pdf import render_pdf

        pages = [p for p in render_pdf(files[0], dpi=DPI)][:BATCH_PAGES]
        from colkern.colpali.indexing import encode_rendered_pages

        encode_rendered_pages(pages, encoder)
        t0 = time.perf_counter()
        encode_rendered_pages(pages, encoder)
        encode_s_per_page = (time.perf_counter() - t0) / len(pages)
        t0 = time.perf_counter()
        render = list(render_pdf(files[0], dpi=DPI))
        render_s_per_page = (time.perf_counter() - t0) / len(render)
        torch.set_num_threads(threads)

        started = not ray.is_initialized()
        t0 = time.perf_counter()
        if started:
            ray.init(num_cpus=os.cpu_count(), object_store_memory=512 * 2**20, include_dashboard=False,
                     log_to_driver=False)
        init_s = time.perf_counter() - t0
        try:
            out = os.path.join(tmp, "ray.idx")
            t0 = time.perf_counter()
            r = index_pdfs_ray(files, out, model, dpi=DPI, batch_pages=BATCH_PAGES, pool_size=1,
                               pages_per_shard=PAGES_PER_SHARD, stall_timeout_s=600)
            ray_s = time.perf_counter() - t0
            assert r.added == PAGES and not r.failures, r
            files_bytes = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
            from colkern.retrieval.sharded import Index

            ix = Index.open(out)
            result = {
                "cpu": cpu_name(), "threads_single": 1, "threads_per_actor": 1, "cpus": os.cpu_count(),
                "pages": PAGES, "dpi": DPI,
                "model": "tiny random-weight ColPali (colkern.testing), 16 patches/page, dim 128",
                "single_s": single_s, "index_pdfs_s": index_pdfs_s, "ray_init_s": init_s, "ray_s": ray_s,
                "ray_overhead_s": ray_s - single_s, "ray_overhead_pct": 100 * (ray_s - single_s) / single_s,
                "single_pages_per_s": PAGES / single_s, "ray_pages_per_s": PAGES / ray_s,
                "encode_s_per_page_1_thread": encode_s_per_page, "render_s_per_page": render_s_per_page,
                "index_bytes_per_page": files_bytes / PAGES, "bytes_per_vector": ix.bytes_per_vector,
                "vectors_per_page": ix.num_vectors / PAGES, "shards": len(ix.shards),
                **search_latency(out, 2),
            }
        finally:
            if started:
                ray.shutdown()
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_overhead(benchmark):
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    benchmark.group = "distributed: Ray pipeline and scatter-gather search vs one process"
    result = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["identical_results"]


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
