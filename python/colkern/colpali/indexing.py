"""PDF pages -> a searchable MultiVectorIndex, resumably; page search and page heatmaps.

    report = index_pdfs(["papers/"], "papers.colk", ColPaliEncoder.load(MODEL), tiles=4)
    hits = search_pages(MultiVectorIndex.load("papers.colk", mmap=True), encoder, "revenue 2023", k=5)
    save_page_heatmap(index, encoder, "revenue 2023", hits[0], "hit.png")

Every page becomes one document of the index: the ColPali patch embeddings of its tiles (1, or 4
for the 2x2 split) concatenated in row-major tile order. Its id is "<absolute path>#page=<n>"
(n from 1), so a hit names its file and page; the settings that made the embeddings (model path,
DPI, tiles, patch grid, binary) are stored in the index's attrs and checked when an index is
extended, so one index never mixes pages encoded differently.

Resumable: finished pages are saved in batches as small part files in "<INDEX>.parts/" (each an
atomic MultiVectorIndex save), so an interrupted run loses at most the batch in flight. A rerun
skips every page already in INDEX or in a part, and the final step writes INDEX atomically (old
pages + parts) before it deletes the parts: at every moment each finished page is in INDEX or in a
part, and INDEX is either the old or the new complete file.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence

import torch
from torch import Tensor

from ..ops import unpack_bits
from ..retrieval.index import IndexFormatError, MultiVectorIndex
from ..retrieval.search import search

PAGE_ID_SEP = "#page="
INDEX_KIND = "colkern.pdf_pages"
_SETTINGS = ("model", "dpi", "tiles", "grid", "dim", "binary")


def page_id(file: str, page: int) -> str:
    """The index id of 0-based page `page` of `file`: "<absolute path>#page=<page + 1>"."""
    return f"{os.path.abspath(file)}{PAGE_ID_SEP}{page + 1}"


def parse_page_id(doc_id: str):
    """(absolute path, 0-based page) of an id made by page_id()."""
    file, sep, n = doc_id.rpartition(PAGE_ID_SEP)
    if not sep or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{doc_id!r} is not a colkern page id (expected '<file>{PAGE_ID_SEP}<n>')")
    return file, int(n) - 1


@dataclass(frozen=True)
class PageHit:
    """One search result: the page's file and 0-based page number, its score and rank (from 1)."""

    rank: int
    score: float
    file: str
    page: int
    position: int  # document position in the index


@dataclass
class IndexingReport:
    """What index_pdfs() did: pages added now, pages skipped as already indexed, and failures
    (file, page or None for the whole file, message), which were left out and go on failing."""

    index_path: str
    num_pages: int = 0
    added: int = 0
    skipped: int = 0
    failures: List[tuple] = field(default_factory=list)

    def print_summary(self) -> int:
        """The CLI's report: one summary line on stdout, one line per failure on stderr.
        -> the exit code (1 when anything failed)."""
        print(f"{self.index_path}: {self.num_pages} pages ({self.added} added, "
              f"{self.skipped} already indexed, {len(self.failures)} failed)")
        for file, page, error in self.failures:
            where = f"{file} page {page + 1}" if page is not None else file
            print(f"failed: {where}: {error}", file=sys.stderr)
        return 1 if self.failures else 0


def index_settings(encoder, *, model: str, dpi: int, tiles: int, binary: bool) -> dict:
    """The attrs that describe how an index's page embeddings were made."""
    rows, cols = encoder.grid
    return {"kind": INDEX_KIND, "model": os.path.abspath(model), "dpi": int(dpi), "tiles": int(tiles),
            "grid": [int(rows), int(cols)], "dim": int(encoder.dim), "binary": bool(binary)}


def check_settings(attrs: dict, wanted: dict, where: str) -> None:
    """Refuses to extend an index whose pages were made with different settings."""
    if attrs.get("kind") != INDEX_KIND:
        raise IndexFormatError(f"{where} is not a PDF page index made by colkern index "
                               f"(attrs kind {attrs.get('kind')!r})")
    diff = [f"{k}: {attrs.get(k)!r} there, {wanted[k]!r} now" for k in _SETTINGS if attrs.get(k) != wanted[k]]
    if diff:
        raise ValueError(f"{where} was made with other settings ({'; '.join(diff)}); use the same "
                         f"settings or write a new index")


def index_pdfs(inputs: Iterable[str], index_path: str, encoder, *, model: str, dpi: int = 144, tiles: int = 1,
               binary: bool = False, batch_pages: int = 8, progress: bool = False) -> IndexingReport:
    """Render, encode and index every page of the PDFs in `inputs` (files or directories).

    encoder: a colkern.colpali.ColPaliEncoder (or anything with encode_images, grid and dim).
    binary: keep only the packed sign bits (16 bytes per 128-d vector instead of 256 in fp16);
    search then rescores with maxsim_bits instead of the float vectors.
    Pages already in `index_path` or in its parts directory are skipped; a file or page that
    fails is reported in the result and the rest of the batch goes on.
    """
    from ..documents.pdf import RenderedPage, iter_pdf_pages  # PyMuPDF is needed only here

    if tiles not in (1, 4):
        raise ValueError(f"index_pdfs: tiles must be 1 or 4, got {tiles!r}")
    if isinstance(batch_pages, bool) or not isinstance(batch_pages, int) or batch_pages < 1:
        raise ValueError(f"index_pdfs: batch_pages must be a positive int, got {batch_pages!r}")
    index_path = os.path.abspath(index_path)
    wanted = index_settings(encoder, model=model, dpi=dpi, tiles=tiles, binary=binary)
    parts_dir = index_path + ".parts"
    existing = _load_existing(index_path, wanted)
    parts, next_part = _load_parts(parts_dir, wanted)
    done = {i for x in ([existing] if existing else []) + parts for i in x.ids}
    report = IndexingReport(index_path=index_path, skipped=0)

    batch: list = []

    def flush():
        nonlocal next_part
        part = _encode_part(batch, encoder, wanted, os.path.join(parts_dir, f"part-{next_part:06d}.colk"), report)
        if part is not None:
            parts.append(part)
            next_part += 1
        batch.clear()

    for item in iter_pdf_pages(list(inputs), dpi=dpi, tiles=tiles, progress=progress):
        if not isinstance(item, RenderedPage):  # a PageFailure or FileFailure: reported, and on we go
            report.failures.append((item.file, getattr(item, "page", None), item.error))
            continue
        if page_id(item.file, item.page) in done:
            report.skipped += 1
            continue
        batch.append(item)
        if len(batch) == batch_pages:
            flush()
    if batch:
        flush()

    if parts:
        merged = MultiVectorIndex.concat(([existing] if existing else []) + parts, attrs=wanted)
        merged.save(index_path)
        shutil.rmtree(parts_dir, ignore_errors=True)
        report.num_pages = merged.num_docs
    else:
        report.num_pages = existing.num_docs if existing else 0
    return report


def search_pages(index: MultiVectorIndex, encoder, query: str, k: int = 5, *, oversample: float = 10) -> List[PageHit]:
    """The k best pages for a text query: hamming stage 1 over the bits, then exact float
    rescoring (or maxsim_bits on a binary index) of k * oversample candidates."""
    _require_page_index(index)
    Q = encoder.encode_queries([query])[0]
    rescore = "float" if index.floats is not None else "bits"
    res = search(Q, index, k, stage1="hamming", oversample=oversample, rescore=rescore)
    hits = []
    for rank, (doc_id, pos, score) in enumerate(zip(res.ids, res.indices.tolist(), res.scores.tolist()), 1):
        file, page = parse_page_id(doc_id)
        hits.append(PageHit(rank=rank, score=float(score), file=file, page=page, position=pos))
    return hits


def page_embeddings(index: MultiVectorIndex, position: int) -> Tensor:
    """Float32 [n_patches, dim] of one indexed page: its stored vectors, or its sign bits as +-1
    for a binary index (what maxsim_bits scores)."""
    lo, hi = int(index.offsets[position]), int(index.offsets[position + 1])
    if index.floats is not None:
        return index.floats[lo:hi].float()
    return unpack_bits(index.bits[lo:hi], index.dim, mode="pm1")


def save_page_heatmap(index: MultiVectorIndex, encoder, query: str, hit: PageHit, out_png: str, *,
                      how: str = "max", tokens_png: Optional[str] = None) -> str:
    """Writes a PNG of the page of `hit`, of the page's rendered size, with the query's
    interaction over its patches on top: how="max" colours each patch by its best similarity with
    any query token; "sum_of_max" shows where the MaxSim score comes from (see colkern.heatmap).
    tokens_png: also write one panel per query token there."""
    from ..documents.pdf import render_page_image
    from .heatmap import aggregate, save_heatmap, save_token_heatmaps, similarity_maps

    attrs = _require_page_index(index)
    Q = encoder.encode_queries([query])[0].float()
    page_image = render_page_image(hit.file, hit.page, dpi=attrs["dpi"])
    maps = similarity_maps(Q, page_embeddings(index, hit.position), tuple(attrs["grid"]),
                           tiles_grid=attrs["tiles"] if attrs["tiles"] > 1 else None)
    heat = aggregate(maps, how)
    title = f"{os.path.basename(hit.file)} p.{hit.page + 1}: {query}"
    save_heatmap(page_image, heat, out_png, title=title)
    if tokens_png:
        save_token_heatmaps(page_image, maps, tokens_png, title=title)
    return out_png


# ---------------------------------------------------------------------------------------------


def _require_page_index(index: MultiVectorIndex) -> dict:
    if index.attrs.get("kind") != INDEX_KIND:
        where = index.path or "this index"
        raise ValueError(f"{where} is not a PDF page index made by colkern index")
    return index.attrs


def _load_existing(index_path: str, wanted: dict) -> Optional[MultiVectorIndex]:
    if not os.path.exists(index_path):
        return None
    existing = MultiVectorIndex.load(index_path, mmap=True)  # concat copies it once, when merging
    check_settings(existing.attrs, wanted, f"index {index_path!r}")
    return existing


def _load_parts(parts_dir: str, wanted: dict):
    """The finished parts of an interrupted run, and the number for the next part file."""
    parts, next_part = [], 0
    for path in sorted(glob.glob(os.path.join(parts_dir, "part-[0-9]*.colk"))):
        number = os.path.basename(path)[len("part-"):-len(".colk")]
        if not number.isdigit():
            continue
        next_part = max(next_part, int(number) + 1)
        try:
            part = MultiVectorIndex.load(path)
        except IndexFormatError as e:
            raise IndexFormatError(f"{e}; delete {path!r} to index its pages again") from None
        check_settings(part.attrs, wanted, f"part {path!r}")
        parts.append(part)
    return parts, next_part


def _encode_part(batch: Sequence, encoder, attrs: dict, part_path: str,
                 report: IndexingReport) -> Optional[MultiVectorIndex]:
    """Encodes a batch of rendered pages and saves them as one part; a page whose encoding fails
    is reported and left out (the batch is retried page by page to find it)."""
    pages, embs = [], []
    try:
        embs = encode_rendered_pages(batch, encoder)
        pages = list(batch)
    except Exception:  # find the failing page(s); the others still get indexed
        for page in batch:
            try:
                embs.append(encode_rendered_pages([page], encoder)[0])
                pages.append(page)
            except Exception as e:  # noqa: BLE001 - reported per page, the batch goes on
                report.failures.append((page.file, page.page, f"encoding failed: {e}"))
    if not pages:
        return None
    part = MultiVectorIndex.build(embs, ids=[page_id(p.file, p.page) for p in pages],
                                  keep_float=not attrs["binary"], attrs=attrs)
    os.makedirs(os.path.dirname(part_path), exist_ok=True)
    part.save(part_path)
    report.added += len(pages)
    return part


def encode_rendered_pages(pages: Sequence, encoder) -> List[Tensor]:
    """Encodes RenderedPages (documents.pdf) in one encoder call. -> one [tiles * n_patches, dim]
    tensor per page: the tiles' patch embeddings, tile by tile."""
    tile_images = [t.image for p in pages for t in p.tiles]
    out = encoder.encode_images(tile_images)
    per_page, i = [], 0
    for p in pages:
        n = len(p.tiles)
        per_page.append(torch.cat([e.embeddings for e in out[i:i + n]], 0))
        i += n
    return per_page
