"""`colkern index --hybrid` and `colkern search` on a hybrid index directory.

extend_commands(sub) adds the hybrid options to the `index` and `search` commands that
colkern.colpali.cli defines, and routes a run to this module when `--hybrid` is given (index)
or INDEX is a directory (search); everything else goes to the ColPali page commands unchanged.
"""
from __future__ import annotations

import json
import os
import sys

from .fusion import FUSIONS
from .router import ROUTES
from .store import KINDS


def extend_commands(sub) -> None:
    """Adds the hybrid options to the existing `index` and `search` sub-commands."""
    ix = sub.choices["index"]
    g = ix.add_argument_group("hybrid index (--hybrid: OUTPUT is a directory)")
    g.add_argument("--hybrid", action="store_true",
                   help="build a hybrid index: ColPali for layout pages, a text model for the text layer, "
                        "SigLIP for images (give any of --colpali, --text-model, --siglip)")
    g.add_argument("--colpali", metavar="DIR", help="local ColPali model directory (default: --model)")
    g.add_argument("--siglip", metavar="DIR", help="local SigLIP model directory: index the PDFs' images")
    g.add_argument("--text-model", metavar="DIR", help="local sentence-transformers model directory "
                                                       "(e.g. all-MiniLM-L6-v2): index the text layer")
    g.add_argument("--route", choices=("auto",) + ROUTES, default="auto",
                   help="which pages get ColPali: auto (the router's rule, default) or one route for every page")
    g.add_argument("--ocr", metavar="ENGINE", choices=("tesseract", "rapidocr"),
                   help="OCR pages without a text layer into the text route")
    g.add_argument("--chunk-words", type=int, default=60, help="words per text chunk (default 60)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing hybrid index at OUTPUT")
    page_index = ix.get_default("func")
    ix.set_defaults(func=lambda args: _index(args) if args.hybrid else page_index(args))

    se = sub.choices["search"]
    g = se.add_argument_group("hybrid index (INDEX is a directory)")
    g.add_argument("--colpali", metavar="DIR", help="ColPali model directory (default: the one recorded; --model too)")
    g.add_argument("--siglip", metavar="DIR", help="SigLIP model directory (default: the one recorded)")
    g.add_argument("--text-model", metavar="DIR", help="text model directory (default: the one recorded)")
    g.add_argument("--fusion", choices=FUSIONS, default="rrf",
                   help="rrf: reciprocal rank fusion (default); score: min-max normalised scores")
    g.add_argument("--group", choices=("item", "page"), default="item",
                   help="item: every page, image and text chunk is a result (default); page: one result per page")
    g.add_argument("--routes", nargs="+", choices=KINDS, help="search only these routes")
    page_search = se.get_default("func")
    se.set_defaults(func=lambda args: _search(args) if os.path.isdir(args.index) else page_search(args))


def _index(args) -> int:
    from .index import HybridIndex
    from .router import PageRouter

    colpali = args.colpali or args.model
    if not (colpali or args.siglip or args.text_model):
        raise ValueError("--hybrid needs at least one model: --colpali DIR, --text-model DIR or --siglip DIR")
    router = PageRouter(force=None if args.route == "auto" else args.route)
    index = HybridIndex.build(args.inputs, args.output, colpali=colpali, siglip=args.siglip,
                              text_model=args.text_model, router=router, dpi=args.dpi, tiles=args.tiles,
                              chunk_words=args.chunk_words, ocr=args.ocr, batch_size=args.batch_pages,
                              device=args.device, overwrite=args.overwrite, progress=not args.quiet)
    r = index.report
    routes = ", ".join(f"{n} {route}" for route, n in sorted(r.routes.items()))
    print(f"{index.path}: {r.pages} pages in {r.files} files (routes: {routes or 'none'}); indexed "
          f"{r.indexed['page']} ColPali pages, {r.indexed['text']} text chunks"
          + (f" ({r.ocr_pages} OCR pages)" if r.ocr_pages else "")
          + f", {r.indexed['image']} images ({r.junk_images} junk dropped"
          + (f", {r.images_not_indexed} not indexed: no --siglip" if r.images_not_indexed else "")
          + f"); {len(r.failures)} failed, {len(r.skipped)} skipped")
    for file, page, error in r.failures:
        where = f"{file} page {page + 1}" if page is not None else file
        print(f"failed: {where}: {error}", file=sys.stderr)
    for file, page, reason in r.skipped:
        print(f"skipped: {file} page {page + 1}: {reason}", file=sys.stderr)
    for file, message in r.warnings:
        print(f"warning: {message}", file=sys.stderr)
    return 1 if r.failures else 0


def _search(args) -> int:
    from .index import HybridIndex

    index = HybridIndex.open(args.index, colpali=args.colpali or args.model, siglip=args.siglip,
                             text_model=args.text_model, device=args.device, oversample=args.oversample)
    hits = index.search(args.query, k=args.k, fusion=args.fusion, routes=args.routes, group=args.group)
    if args.json:
        for h in hits:
            print(json.dumps(h.to_dict(), ensure_ascii=False))
    else:
        print(f"{'rank':>4}  {'kind':<5}  {'score':>9}  {'page':>4}  file")
        for h in hits:
            print(f"{h.rank:>4}  {h.kind:<5}  {h.score:>9.3f}  {h.page + 1:>4}  {h.file}")
            if h.text:
                snippet = h.text if len(h.text) <= 100 else h.text[:97] + "..."
                print(f"{'':>4}  {'':<5}  {'':>9}  {'':>4}  \"{snippet}\"")
    if args.heatmap:
        pages = [h for h in hits if h.kind == "page"]
        if not pages and "page" in index.kinds and (args.routes is None or "page" in args.routes):
            pages = index.search(args.query, k=1, routes=["page"])
            print("no page among the results: the heatmap shows the ColPali route's best page", file=sys.stderr)
        if not pages:
            print("no ColPali pages in the index: no heatmap written", file=sys.stderr)
            return 1
        index.save_heatmap(args.query, pages[0], args.heatmap, tokens_png=args.token_heatmaps)
        print(f"heatmap: {os.path.abspath(args.heatmap)}", file=sys.stderr)
    return 0
