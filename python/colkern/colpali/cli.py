"""`colkern index` and `colkern search`: PDF pages in, ranked pages (and heatmaps) out."""
from __future__ import annotations

import json
import os
import sys


def add_commands(sub) -> None:
    ix = sub.add_parser("index", help="render, encode with ColPali and index the pages of PDFs (resumable)",
                        description="Index every page of the given PDFs (files or directories, searched "
                                    "recursively). Rerunning the same command resumes an interrupted run "
                                    "or adds new files; pages already indexed are skipped.")
    ix.add_argument("inputs", nargs="+", metavar="PDF_DIR_OR_FILES")
    ix.add_argument("-o", "--output", required=True, metavar="INDEX", help="index file to create or extend")
    ix.add_argument("--model", metavar="PATH", help="local ColPali model directory (required, except with --hybrid)")
    ix.add_argument("--dpi", type=int, default=144, help="render resolution (default 144)")
    ix.add_argument("--tiles", type=int, choices=(1, 4), default=1,
                    help="4: encode each page as 2x2 tiles (about 4x the resolution for small print)")
    ix.add_argument("--binary", action="store_true",
                    help="keep only sign bits (16 B per 128-d vector instead of 256 B in fp16)")
    ix.add_argument("--batch-pages", type=int, default=8, help="pages per encoded and saved batch")
    ix.add_argument("--device", default=None, help="torch device for the model (default: cuda if available)")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.set_defaults(func=_index)

    se = sub.add_parser("search", help="search an index made by `colkern index` with a text query")
    se.add_argument("index", metavar="INDEX")
    se.add_argument("query")
    se.add_argument("-k", type=int, default=5, help="number of pages to return (default 5)")
    se.add_argument("--model", default=None, metavar="PATH",
                    help="ColPali model directory (default: the one the index was built with)")
    se.add_argument("--oversample", type=float, default=10, help="stage-1 candidates per result (default 10)")
    se.add_argument("--heatmap", metavar="PNG", help="write the best page with the query's heatmap on it")
    se.add_argument("--token-heatmaps", metavar="PNG", help="also write one panel per query token (needs --heatmap)")
    se.add_argument("--json", action="store_true", help="print the hits as JSON lines")
    se.add_argument("--device", default=None)
    se.set_defaults(func=_search)


def _load_encoder(model: str, device):
    from .encoder import ColPaliEncoder

    return ColPaliEncoder.load(model, device=device)


def _index(args) -> int:
    from .indexing import index_pdfs

    if not args.model:
        raise ValueError("--model PATH (a local ColPali model directory) is required")
    encoder = _load_encoder(args.model, args.device)
    report = index_pdfs(args.inputs, args.output, encoder, model=args.model, dpi=args.dpi, tiles=args.tiles,
                        binary=args.binary, batch_pages=args.batch_pages, progress=not args.quiet)
    return report.print_summary()


def _search(args) -> int:
    from ..retrieval.index import MultiVectorIndex
    from .indexing import save_page_heatmap, search_pages

    index = MultiVectorIndex.load(args.index, mmap=True)
    model = args.model or index.attrs.get("model")
    if not model:
        raise SystemExit(f"colkern search: {args.index} does not name its model; pass --model PATH")
    encoder = _load_encoder(model, args.device)
    hits = search_pages(index, encoder, args.query, k=args.k, oversample=args.oversample)
    if args.json:
        for h in hits:
            print(json.dumps({"rank": h.rank, "score": h.score, "file": h.file, "page": h.page + 1}))
    else:
        print(f"{'rank':>4}  {'score':>9}  {'page':>4}  file")
        for h in hits:
            print(f"{h.rank:>4}  {h.score:>9.3f}  {h.page + 1:>4}  {h.file}")
    if args.heatmap:
        if not hits:
            print("no pages in the index: no heatmap written", file=sys.stderr)
            return 1
        save_page_heatmap(index, encoder, args.query, hits[0], args.heatmap, tokens_png=args.token_heatmaps)
        print(f"heatmap: {os.path.abspath(args.heatmap)}", file=sys.stderr)
    return 0
