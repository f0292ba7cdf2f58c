"""colkern.Index -> a Qdrant multi-vector collection, and MaxSim queries against it.

    client = QdrantClient(url="http://localhost:6333")           # or QdrantClient(path=...) / (":memory:")
    to_qdrant(colkern.Index.open("pages.idx"), client, "pages", binary_quantization=True)
    hits = qdrant_search(client, "pages", Q, k=10)                  # ids, scores

Collection: one unnamed multi-vector per point (the document's token vectors, comparator
MAX_SIM, distance DOT), HNSW off (m=0: Qdrant's advice for multi-vectors, which are meant for
exact rescoring; a query scans every point). Point id: uuid5 of the colkern id (point_id), so
an export is deterministic and a point names its document; payload: {"doc_id", "file" and
"page" (0-based) for a page id "<file>#page=<n>", "metadata": the document's metadata}.
Deleted and empty (zero-vector) documents are not exported. The vectors are stored in the index's float dtype when
Qdrant has it (float16), so Qdrant scores exactly the vectors colkern rescoring reads.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import List, Union

import torch
from torch import Tensor

from .stream import batches, check_index, check_positive, iter_documents

try:
    from qdrant_client import models
except ImportError as e:  # pragma: no cover - the export extra is missing
    raise ImportError("colkern.export.to_qdrant needs qdrant-client: pip install 'colkern[export]'") from e

# The uuid5 namespace of point ids, point_id(doc_id) = uuid5(NAMESPACE, doc_id): a fixed value
# (uuid5(NAMESPACE_URL, "colkern:doc-id")), so any client can compute a document's point id.
NAMESPACE = uuid.UUID("d8e9f154-0f3a-5f9f-83a6-3fb7ee9a0437")


def point_id(doc_id: str) -> str:
    """The Qdrant point id of colkern document `doc_id` (a UUID string, stable across exports)."""
    return str(uuid.uuid5(NAMESPACE, doc_id))


def to_qdrant(index, client, collection: str, *, binary_quantization: bool = False, batch_size: int = 16,
              recreate: bool = False) -> int:
    """Exports the live documents of colkern.Index `index` into a new Qdrant collection.

    client: a qdrant_client.QdrantClient (server, local path or ":memory:"). collection: a name
    not in use (ValueError if it exists, unless recreate=True, which drops it first).
    binary_quantization: Qdrant's binary quantization of the stored vectors (kept in RAM, the
    originals rescore). batch_size: documents per upsert (a ColPali page is ~1030 x 128 floats).
    Needs an index that keeps float vectors (ValueError for a bits-only one). -> documents exported.
    """
    op = "to_qdrant"
    index = check_index(index, op)
    if not isinstance(collection, str) or not collection:
        raise ValueError(f"{op}: collection must be a non-empty str, got {collection!r}")
    check_positive(batch_size, "batch_size", op)
    if not index.has_float:
        raise ValueError(f"{op}: the index {index.path!r} keeps only sign bits; Qdrant's MaxSim needs the float "
                         f"vectors (build the index with keep_float=True)")
    if client.collection_exists(collection):
        if not recreate:
            raise ValueError(f"{op}: collection {collection!r} already exists (pass recreate=True to replace it)")
        client.delete_collection(collection)
    float16 = any(s.floats.dtype == torch.float16 for s in index.shards)
    client.create_collection(
        collection,
        vectors_config=models.VectorParams(
            size=index.dim,
            # DOT, not COSINE: Qdrant normalises vectors for COSINE, so its MaxSim would equal
            # colkern's only for unit vectors; with DOT, sum_i max_j q_i . d_j is colkern.maxsim
            # on the stored vectors whatever their norms (ColPali's are unit, so both agree there).
            distance=models.Distance.DOT,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            hnsw_config=models.HnswConfigDiff(m=0),
            datatype=models.Datatype.FLOAT16 if float16 else models.Datatype.FLOAT32),
        quantization_config=models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
        if binary_quantization else None)
    n = 0
    for batch in batches(iter_documents(index), batch_size):
        points = [models.PointStruct(id=point_id(d.doc_id), vector=d.floats.float().tolist(), payload=_payload(d))
                  for d in batch if d.floats.shape[0]]  # Qdrant refuses an empty multi-vector
        if points:
            client.upsert(collection, points=points, wait=True)
        n += len(points)
    return n


def _payload(doc) -> dict:
    payload = {"doc_id": doc.doc_id}
    if doc.file is not None:
        payload.update(file=doc.file, page=doc.page)
    payload["metadata"] = doc.metadata
    return payload


@dataclass(frozen=True)
class QdrantHits:
    """qdrant_search's result, shaped like SearchResult's: ids [k'] and scores float32 [k'] for a
    single query, [B][k'] and [B, k'] for a batch (k' = min(k, points in the collection))."""

    ids: Union[List[str], List[List[str]]]
    scores: Tensor


def qdrant_search(client, collection: str, Q: Tensor, k: int = 10) -> QdrantHits:
    """MaxSim top-k of the query token vectors Q float [Lq, dim] or [B, Lq, dim] in a collection
    made by to_qdrant (the colkern ids come from the payload)."""
    op = "qdrant_search"
    if not isinstance(collection, str) or not collection:
        raise ValueError(f"{op}: collection must be a non-empty str, got {collection!r}")
    check_positive(k, "k", op)
    if not isinstance(Q, Tensor) or Q.dim() not in (2, 3) or not Q.is_floating_point() or Q.shape[-2] < 1:
        raise ValueError(f"{op}: Q must be a float tensor [Lq, dim] or [B, Lq, dim], got "
                         f"{getattr(Q, 'dtype', type(Q).__name__)} {tuple(getattr(Q, 'shape', ()))}")
    queries = Q.detach().float().cpu().reshape(-1, *Q.shape[-2:])
    ids, scores = [], []
    for q in queries:
        found = client.query_points(collection, query=q.tolist(), limit=k, with_payload=["doc_id"]).points
        ids.append([p.payload["doc_id"] for p in found])
        scores.append([p.score for p in found])
    scores = torch.tensor(scores, dtype=torch.float32).reshape(len(ids), -1)
    return QdrantHits(ids[0], scores[0]) if Q.dim() == 2 else QdrantHits(ids, scores)
