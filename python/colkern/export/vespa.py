"""colkern.Index -> a Vespa application package and its JSON feed (Vespa's ColPali recipe).

    package = vespa_package(index, "pages")              # vespa.package.ApplicationPackage
    app_dir, feed, n = write_vespa(index, "pages", "out/")  # out/app/ + out/feed.jsonl
    #   vespa deploy out/app  &&  vespa feed out/feed.jsonl
    body = vespa_query(Q, "pages", k=10)                  # POST /search/ body, ranking "bits"

Schema `name`: doc_id, file, page (int, 0-based), metadata (JSON string), and
    embedding        tensor<int8>(patch{}, v[dim/8])    sign bits, 8 per int8 cell, MSB first
    embedding_float  tensor<bfloat16>(patch{}, v[dim])  (paged attribute; when the index keeps floats)
Rank profiles (inputs query(qtb) tensor<int8>(querytoken{}, v[dim/8]), query(qt) tensor<float>(querytoken{}, v[dim])):
    hamming  first phase max_sim_hamming = sum_i max_j 1 / (1 + hamming(qb_i, b_j))
    bits     hamming first phase, second phase max_sim_bits = sum_i max_j q_i . unpack_bits(b_j)
             (bits read as {0, 1}: colkern.maxsim_bits mode "01")
    float    hamming first phase, second phase exact MaxSim over embedding_float

Bits convention: the feed holds the sign bits of the RAW vectors (colkern.pack_bits(x): bit =
x > 0), and queries are binarised the same way (qtb = pack_bits(q)). colkern's own shards store
the sign bits of x - corpus mean (colkern.retrieval.shard), which colkern scores with a query
folded by that mean; Vespa's recipe (and every client written for it) binarises queries without
knowing a corpus mean, so exporting centred bits would silently break them. The price: where
the corpus has a strong common mean, raw sign bits carry less (colkern measured float x bits
recall@10 0.24 raw vs 0.72 centred on such data), so rank such corpora with the "float"
profile, which rescores with the exact floats. Raw sign bits are
recomputed from the stored floats; a bits-only index is exported only if it is uncentred
(center=False, or made from a binary MultiVectorIndex), whose stored bits already are raw sign
bits. With these bits, max_sim_hamming = sum_i 1 / (1 + (dim - s_i) / 2) where s_i is
colkern.maxsim_hamming of query token i alone (max_j dim - 2 hamming), and max_sim_bits =
colkern.maxsim_bits(mode="01"); tests/test_export.py evaluates both expressions on the feed.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator, Tuple

import torch
from torch import Tensor

from .._atomic import atomic_write
from .._types import PathLike
from ..ops import pack_bits
from .stream import check_index, check_positive, iter_documents

try:
    from vespa.package import (
        ApplicationPackage,
        Document,
        Field,
        FirstPhaseRanking,
        Function,
        RankProfile,
        Schema,
        SecondPhaseRanking,
    )
except ImportError as e:  # pragma: no cover - the export extra is missing
    raise ImportError("colkern.export.vespa_package needs pyvespa: pip install 'colkern[export]'") from e

MAX_SIM_HAMMING = ("sum(reduce(1 / (1 + sum(hamming(query(qtb), attribute(embedding)), v)), max, patch), "
                   "querytoken)")
MAX_SIM_BITS = "sum(reduce(sum(query(qt) * unpack_bits(attribute(embedding)), v), max, patch), querytoken)"
MAX_SIM_FLOAT = ("sum(reduce(sum(query(qt) * cell_cast(attribute(embedding_float), float), v), max, patch), "
                 "querytoken)")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _check(index, name, op: str):
    index = check_index(index, op)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{op}: name must be a Vespa application name (lowercase letter, then lowercase letters, "
                         f"digits, '_'), got {name!r}")
    if index.dim % 8:
        raise ValueError(f"{op}: the index has dim {index.dim}; Vespa's unpack_bits needs a multiple of 8")
    if not index.has_float and index.codebook is not None and bool(index.codebook.mean.any()):
        raise ValueError(f"{op}: the index {index.path!r} keeps only centred sign bits (of x - corpus mean); "
                         f"Vespa's recipe needs the raw sign bits: export an index that keeps floats "
                         f"(keep_float=True) or was made with center=False")
    return index


def vespa_package(index, name: str, *, rerank_count: int = 100) -> ApplicationPackage:
    """The application package for `index` (see the module docs). name: application and schema
    name (also the document type of the feed ids). rerank_count: hits per content node that the
    second phase of the "bits" and "float" profiles rescores."""
    op = "vespa_package"
    index = _check(index, name, op)
    check_positive(rerank_count, "rerank_count", op)
    dim, nb = index.dim, index.dim // 8
    fields = [Field("doc_id", "string", indexing=["summary", "attribute"]),
              Field("file", "string", indexing=["summary", "attribute"]),
              Field("page", "int", indexing=["summary", "attribute"]),
              Field("metadata", "string", indexing=["summary"]),
              Field("embedding", f"tensor<int8>(patch{{}}, v[{nb}])", indexing=["attribute"])]
    if index.has_float:
        # paged: the floats stay on disk and are read for the second-phase hits only.
        fields.append(Field("embedding_float", f"tensor<bfloat16>(patch{{}}, v[{dim}])", indexing=["attribute"],
                            attribute=["paged"]))
    qtb = ("query(qtb)", f"tensor<int8>(querytoken{{}}, v[{nb}])")
    qt = ("query(qt)", f"tensor<float>(querytoken{{}}, v[{dim}])")
    hamming = Function("max_sim_hamming", MAX_SIM_HAMMING)
    profiles = [RankProfile("hamming", inputs=[qtb], functions=[hamming],
                            first_phase=FirstPhaseRanking("max_sim_hamming")),
                RankProfile("bits", inputs=[qtb, qt], functions=[hamming, Function("max_sim_bits", MAX_SIM_BITS)],
                            first_phase=FirstPhaseRanking("max_sim_hamming"),
                            second_phase=SecondPhaseRanking("max_sim_bits", rerank_count=rerank_count))]
    if index.has_float:
        profiles.append(RankProfile("float", inputs=[qtb, qt],
                                    functions=[hamming, Function("max_sim_float", MAX_SIM_FLOAT)],
                                    first_phase=FirstPhaseRanking("max_sim_hamming"),
                                    second_phase=SecondPhaseRanking("max_sim_float", rerank_count=rerank_count)))
    try:
        return ApplicationPackage(name=name, schema=[Schema(name, Document(fields=fields), rank_profiles=profiles)])
    except ValueError as e:
        raise ValueError(f"{op}: {e}") from None


def _blocks(rows: Tensor) -> dict:
    """A [patch, v] tensor in Vespa's JSON short form for one mapped + one indexed dimension."""
    return {"blocks": {str(j): row for j, row in enumerate(rows.tolist())}}


def vespa_feed(index, name: str) -> Iterator[dict]:
    """Vespa JSON feed operations ({"put": "id:<name>:<name>::<doc id>", "fields": {...}}), one per
    live non-empty document, read shard by shard. Bits are int8 cells (the uint8 bytes
    reinterpreted), floats are rounded to bfloat16 here, as Vespa stores them."""
    return _feed(_check(index, name, "vespa_feed"), name)  # checked now, not at the first next()


def _feed(index, name: str) -> Iterator[dict]:
    for d in iter_documents(index):
        if not d.bits.shape[0]:
            continue  # an empty document has no patches to rank
        bits = d.bits if d.floats is None else pack_bits(d.floats.contiguous())
        fields = {"doc_id": d.doc_id, "metadata": json.dumps(d.metadata, sort_keys=True),
                  "embedding": _blocks(bits.view(torch.int8))}
        if d.file is not None:
            fields.update(file=d.file, page=d.page)
        if d.floats is not None:
            fields["embedding_float"] = _blocks(d.floats.to(torch.bfloat16).float())
        yield {"put": f"id:{name}:{name}::{d.doc_id}", "fields": fields}


def vespa_query(Q: Tensor, name: str, *, k: int = 10, ranking: str = "bits") -> dict:
    """The body of a POST /search/ for one query Q float [Lq, dim]: query(qt) = Q and
    query(qtb) = colkern.pack_bits(Q) as int8 (the feed's convention), every document matched
    (`where true`) and ranked by profile `ranking` ("hamming", "bits" or "float")."""
    op = "vespa_query"
    if not isinstance(Q, Tensor) or Q.dim() != 2 or not Q.is_floating_point() or Q.shape[0] < 1 or Q.shape[1] % 8:
        raise ValueError(f"{op}: Q must be a float tensor [Lq >= 1, dim] with dim a multiple of 8, got "
                         f"{getattr(Q, 'dtype', type(Q).__name__)} {tuple(getattr(Q, 'shape', ()))}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{op}: name must be a Vespa application name, got {name!r}")
    if ranking not in ("hamming", "bits", "float"):
        raise ValueError(f"{op}: ranking must be 'hamming', 'bits' or 'float', got {ranking!r}")
    check_positive(k, "k", op)
    q = Q.detach().float().cpu().contiguous()
    qtb = pack_bits(q).view(torch.int8)
    return {"yql": f"select doc_id, file, page from {name} where true", "ranking": ranking, "hits": k,
            "input.query(qt)": {str(i): row for i, row in enumerate(q.tolist())},
            "input.query(qtb)": {str(i): row for i, row in enumerate(qtb.tolist())}}


def write_vespa(index, name: str, out_dir: PathLike, *, rerank_count: int = 100) -> Tuple[str, str, int]:
    """Writes the application package to out_dir/app/ and the feed to out_dir/feed.jsonl (one
    operation per line, streamed; the feed is kept out of the package, which is uploaded whole
    on deploy). -> (app dir, feed path, documents fed)."""
    package = vespa_package(index, name, rerank_count=rerank_count)
    out_dir = os.fspath(out_dir)
    app_dir, feed_path = os.path.join(out_dir, "app"), os.path.join(out_dir, "feed.jsonl")
    os.makedirs(app_dir, exist_ok=True)
    package.to_files(Path(app_dir))
    count = 0

    def write(f) -> None:
        nonlocal count
        for op in vespa_feed(index, name):
            f.write(json.dumps(op, separators=(",", ":")).encode() + b"\n")
            count += 1

    atomic_write(feed_path, write)
    return app_dir, feed_path, count
