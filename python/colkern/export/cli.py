"""`colkern export qdrant` and `colkern export vespa`: a colkern.Index into a vector database."""
from __future__ import annotations

import os
import shlex


def add_commands(sub) -> None:
    ex = sub.add_parser("export", help="export a colkern.Index (directory) to Qdrant or a Vespa application")
    targets = ex.add_subparsers(dest="target", required=True)

    q = targets.add_parser("qdrant", help="upload the live documents into a new Qdrant multi-vector collection")
    q.add_argument("index", metavar="INDEX", help="colkern.Index directory (must keep float vectors)")
    q.add_argument("--collection", required=True, help="Qdrant collection to create")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="Qdrant server, e.g. http://localhost:6333")
    where.add_argument("--path", metavar="DIR", help="Qdrant local mode: the collection is stored in DIR")
    q.add_argument("--binary-quantization", action="store_true",
                   help="Qdrant binary quantization (in RAM; the stored vectors rescore)")
    q.add_argument("--recreate", action="store_true", help="drop the collection first if it exists")
    q.add_argument("--batch-size", type=int, default=16, help="documents per upsert (default 16)")
    q.set_defaults(func=_qdrant)

    v = targets.add_parser("vespa", help="write a Vespa application package and its feed (JSONL)")
    v.add_argument("index", metavar="INDEX", help="colkern.Index directory")
    v.add_argument("--name", required=True, help="application and schema name (lowercase, digits, '_')")
    v.add_argument("-o", "--output", required=True, metavar="DIR", help="writes DIR/app/ and DIR/feed.jsonl")
    v.add_argument("--rerank-count", type=int, default=100,
                   help="hits per content node rescored by the second phase (default 100)")
    v.set_defaults(func=_vespa)


def _open(path: str):
    from ..retrieval import Index

    return Index.open(path)


def _qdrant(args) -> int:
    try:
        from qdrant_client import QdrantClient
    except ImportError as e:
        raise ImportError("colkern export qdrant needs qdrant-client: pip install 'colkern[export]'") from e
    from .qdrant import to_qdrant

    index = _open(args.index)
    client = QdrantClient(url=args.url) if args.url else QdrantClient(path=args.path)
    try:
        n = to_qdrant(index, client, args.collection, binary_quantization=args.binary_quantization,
                      batch_size=args.batch_size, recreate=args.recreate)
    finally:
        client.close()
    print(f"exported {n} documents to Qdrant collection {args.collection!r} at {args.url or args.path}")
    return 0


def _vespa(args) -> int:
    from .vespa import write_vespa

    app_dir, feed, n = write_vespa(_open(args.index), args.name, args.output, rerank_count=args.rerank_count)
    print(f"wrote the Vespa application {app_dir} and {n} documents to {feed}; deploy and feed with the Vespa CLI:")
    print(f"  vespa deploy --wait 300 {shlex.quote(app_dir)}")
    print(f"  vespa feed {shlex.quote(feed)}")
    print(f"then query with ranking 'bits' (see colkern.export.vespa_query); the package is in {os.path.abspath(app_dir)}")
    return 0
