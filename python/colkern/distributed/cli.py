"""`colkern index --ray` and `colkern search --ray`: the Ray pipeline and scatter-gather search;
`colkern search` on a sharded index directory without --ray searches it in this process.

extend_commands(sub) adds the Ray options to the `index` and `search` commands defined by
colkern.colpali.cli (and extended by colkern.hybrid.cli), and routes a run here when `--ray` is
given; everything else goes to the commands as they were. With --ray, OUTPUT / INDEX is a
sharded colkern.Index directory (colkern.distributed.index_pdfs_ray).
"""
from __future__ import annotations

import json


def extend_commands(sub) -> None:
    """Adds --ray (and its options) to the existing `index` and `search` sub-commands."""
    ix = sub.choices["index"]
    g = ix.add_argument_group("Ray (--ray: OUTPUT is a sharded colkern.Index directory)")
    g.add_argument("--ray", action="store_true",
                   help="index with a Ray Data pipeline (render tasks, a pool of encoder actors) into a sharded "
                        "index directory; PNG / JPEG / TIFF images are indexed as one-page documents")
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join ('auto', host:port or ray://host:port; default: a local Ray)")
    g.add_argument("--pool-size", type=int, default=1, help="encoder actors (default 1; one GPU each when there are GPUs)")
    g.add_argument("--pages-per-shard", type=int, default=1024, help="pages per shard and manifest commit (default 1024)")
    g.add_argument("--pool-factor", type=int, default=None, help="token pooling factor (default: no pooling)")
    g.add_argument("--quality", action="store_true", help="also predict each page's OCR quality (page metadata)")
    g.add_argument("--stall-timeout", type=float, default=600.0, metavar="S",
                   help="fail when the pipeline makes no progress for S seconds (default 600)")
    page_index = ix.get_default("func")
    ix.set_defaults(func=lambda args: _index(args) if args.ray else page_index(args))

    se = sub.choices["search"]
    g = se.add_argument_group("Ray (--ray: INDEX is a sharded colkern.Index directory)")
    g.add_argument("--ray", action="store_true", help="scatter-gather search over Ray actors (same results as one process)")
    g.add_argument("--actors", type=int, default=2, help="search actors (default 2, at most one per shard)")
    g.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster to join (default: a local Ray)")
    page_search = se.get_default("func")
    se.set_defaults(func=lambda args: _search(args) if args.ray or _is_sharded_index(args.index) else page_search(args))


def _is_sharded_index(path: str) -> bool:
    """A colkern.Index directory (what `colkern index --ray` writes): searched here, in this
    process without --ray, on actors with it."""
    import os

    from ..retrieval.manifest import MANIFEST

    return os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST))


def _index(args) -> int:
    from .pipeline import index_pdfs_ray

    if not args.model:
        raise ValueError("--model PATH (a local ColPali model directory) is required with --ray")
    report = index_pdfs_ray(args.inputs, args.output, args.model, batch_pages=args.batch_pages,
                            pool_size=args.pool_size, pages_per_shard=args.pages_per_shard, dpi=args.dpi,
                            tiles=args.tiles, pool_factor=args.pool_factor, binary=args.binary,
                            address=args.address, progress=not args.quiet, quality=args.quality,
                            stall_timeout_s=args.stall_timeout, device=args.device)
    return report.print_summary()


def _search(args) -> int:
    from ..colpali.encoder import ColPaliEncoder
    from ..colpali.indexing import parse_page_id
    from ..retrieval.manifest import read_manifest
    from ..retrieval.sharded import Index
    from .searcher import ShardedSearcher

    model = args.model or read_manifest(args.index).attrs.get("model")
    if not model:
        raise SystemExit(f"colkern search: {args.index} does not name its model; pass --model PATH")
    Q = ColPaliEncoder.load(model, device=args.device).encode_queries([args.query])[0]
    if args.ray:
        with ShardedSearcher(args.index, actors=args.actors, address=args.address) as searcher:
            res = searcher.search(Q, k=args.k)
    else:  # the same search in this process (ShardedSearcher returns exactly these results)
        res = Index.open(args.index).search(Q, k=args.k)
    rows = []
    for rank, (doc_id, score) in enumerate(zip(res.ids, res.scores.tolist()), 1):
        file, page = parse_page_id(doc_id)
        rows.append({"rank": rank, "score": score, "file": file, "page": page + 1})
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(f"{'rank':>4}  {'score':>9}  {'page':>4}  file")
        for r in rows:
            print(f"{r['rank']:>4}  {r['score']:>9.3f}  {r['page']:>4}  {r['file']}")
    return 0
