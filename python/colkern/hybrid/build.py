"""Building a hybrid index: PDFs in, three sub-indexes out (see colkern.hybrid.store for the layout).

For every page of every PDF: PageRouter decides "text", "colpali", "both" or "blank" from the
page's features; the text route chunks and embeds the text layer, ColPali embeds the rendered
page; SigLIP embeds every non-junk image of the file. Models that were not given change the
plan, never silently lose a page:

  * no ColPali model: a page routed to ColPali keeps its text chunks if it has a text layer
    (or its OCR text with ocr=...); a page with neither is reported as skipped;
  * no text model: text pages go to ColPali instead (if given);
  * no SigLIP model: images are not indexed (counted in the report).

Bad input never stops the batch: a file that cannot be opened, a page that fails, an image that
cannot be decoded and a batch that fails to encode are recorded (BuildReport.failures /
skipped / warnings) and the rest goes on. Model directories are checked before any work, so a
missing model is one clear error at the start.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .._types import PathLike
from .._version import __version__
from ..colpali.indexing import encode_rendered_pages, page_id
from ..ops import PackedDocs
from ..retrieval.index import MultiVectorIndex
from . import router as routes
from .ann import ANN_MIN_ITEMS, build_anns, check_ann_mode
from .images import iter_pdf_images
from .models import check_model_paths, load_model, resolve_ocr
from .router import PageRouter, page_features
from .store import FORMAT, VERSION, save_dir
from .text_route import TextChunk, chunk_blocks, chunk_page


@dataclass
class BuildReport:
    """What a build did. routes: pages per router decision; indexed: items per sub-index;
    failures: (file, page or None, message) for files, pages and batches that failed; skipped:
    (file, page, reason) for pages that were deliberately not indexed (blank, or no model can
    read them); warnings: (file, message) for images that could not be decoded and the like;
    seconds: wall time per stage."""

    index_dir: str
    files: int = 0
    pages: int = 0
    routes: Dict[str, int] = field(default_factory=dict)
    indexed: Dict[str, int] = field(default_factory=dict)
    ocr_pages: int = 0
    junk_images: int = 0
    images_not_indexed: int = 0
    failures: List[Tuple[str, Optional[int], str]] = field(default_factory=list)
    skipped: List[Tuple[str, int, str]] = field(default_factory=list)
    warnings: List[Tuple[str, str]] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"files": self.files, "pages": self.pages, "routes": dict(self.routes), "indexed": dict(self.indexed),
                "ocr_pages": self.ocr_pages, "junk_images": self.junk_images,
                "images_not_indexed": self.images_not_indexed,
                "failures": [list(f) for f in self.failures], "skipped": [list(s) for s in self.skipped],
                "warnings": [list(w) for w in self.warnings],
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


# -- the build -------------------------------------------------------------------------------


class _Builder:
    def __init__(self, report: BuildReport, *, colpali, siglip, text, router: PageRouter, dpi: float, tiles: int,
                 chunk_words: int, junk: dict, ocr, ocr_dpi: int, ocr_timeout: float, batch_size: int):
        self.report = report
        self.colpali, self.siglip, self.text = colpali, siglip, text
        self.router = router
        self.dpi, self.tiles, self.chunk_words, self.junk = dpi, tiles, chunk_words, junk
        self.ocr, self.ocr_dpi, self.ocr_timeout = ocr, ocr_dpi, ocr_timeout
        self.batch_size = batch_size
        self.files: List[str] = []
        self.file_idx: Dict[str, int] = {}
        self.pages: List[dict] = []
        self.page_row: Dict[Tuple[int, int], dict] = {}
        self.page_embs: List[Tensor] = []
        self.page_ids: List[str] = []
        self.text_vecs: List[Tensor] = []
        self.text_rows: List[dict] = []
        self.image_vecs: List[Tensor] = []
        self.image_rows: List[dict] = []
        self._pending_text: List[Tuple[TextChunk, str]] = []
        self.seconds: Dict[str, float] = {}

    def _time(self, stage: str, t0: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    # -- per file ------------------------------------------------------------------------------

    def add_file(self, file: str) -> None:
        import pymupdf

        from ..documents.pdf import PdfError, render_pdf

        try:
            for _ in render_pdf(file, pages=[]):  # colkern.documents' checks: missing, not a PDF, encrypted...
                pass
            doc = pymupdf.open(file, filetype="pdf")
        except (PdfError, OSError, RuntimeError) as e:
            self.report.failures.append((file, None, getattr(e, "reason", None) or str(e)))
            return
        file_idx = len(self.files)
        self.files.append(file)
        self.file_idx[file] = file_idx
        self.report.files += 1
        colpali_pages: List[int] = []
        ocr_pages: List[int] = []
        try:
            for pno in range(doc.page_count):
                self.report.pages += 1
                try:
                    plan = self._route_page(doc.load_page(pno), file, file_idx)
                except Exception as e:  # noqa: BLE001 - one bad page; the file goes on
                    self.report.failures.append((file, pno, f"{type(e).__name__}: {e}"))
                    continue
                if "colpali" in plan:
                    colpali_pages.append(pno)
                if "ocr" in plan:
                    ocr_pages.append(pno)
            if ocr_pages:
                self._ocr_pages(doc, file, file_idx, ocr_pages)
        finally:
            doc.close()
        if colpali_pages:
            self._colpali_pages(file, colpali_pages)
        if self.siglip is not None:
            self._images(file, file_idx)
        else:
            self._count_images(file)
        if len(self._pending_text) >= 256:
            self.flush_text()

    def _route_page(self, page, file: str, file_idx: int) -> List[str]:
        t0 = time.perf_counter()
        feats = page_features(page)
        decision = self.router.decide(feats, file, page.number)
        self.report.routes[decision.route] = self.report.routes.get(decision.route, 0) + 1
        has_text = feats.text_chars >= self.router.min_text_chars
        plan: List[str] = []
        note = ""
        if decision.route != routes.BLANK:
            want_colpali, want_text = decision.colpali, decision.text
            if want_colpali and self.colpali is None:
                want_colpali = False
                if feats.text_chars and self.text is not None:
                    want_text, note = True, "no ColPali model: text layer only"
            if want_text and self.text is None:
                want_text = False
                if self.colpali is not None:
                    want_colpali, note = True, "no text model: ColPali instead"
            if want_colpali:
                plan.append("colpali")
            if want_text:
                chunks = chunk_page(page, file, max_words=self.chunk_words)
                self._pending_text.extend((c, "text") for c in chunks)
                if chunks:
                    plan.append("text")
            if not has_text and self.ocr is not None and self.text is not None:
                plan.append("ocr")
        self._time("route", t0)
        row = {"file": file_idx, "page": page.number, "route": decision.route, "reason": decision.reason,
               "indexed_by": [p for p in plan if p != "ocr"], "features": feats.to_dict()}
        if note:
            row["note"] = note
        self.pages.append(row)
        self.page_row[file_idx, page.number] = row
        if not plan:
            reason = decision.reason if decision.route == routes.BLANK else (
                f"{decision.reason}; no model given can index it (pass colpali=... for pages without a text "
                f"layer, or ocr=... with a text model)")
            self.report.skipped.append((file, page.number, reason))
        return plan

    def _ocr_pages(self, doc, file: str, file_idx: int, pages: List[int]) -> None:
        from ..documents.pdf import render_open_page

        t0 = time.perf_counter()
        for pno in pages:
            page = doc.load_page(pno)
            row = self.page_row[file_idx, pno]
            try:
                result = self.ocr.recognize(render_open_page(page, self.ocr_dpi), timeout=self.ocr_timeout)
            except Exception as e:  # noqa: BLE001 - OCR failing on one page
                self.report.failures.append((file, pno, f"OCR failed: {type(e).__name__}: {e}"))
                continue
            text = getattr(result, "text", "") or ""
            error = getattr(result, "error", None) or ("timed out" if getattr(result, "timed_out", False) else None)
            if error:
                self.report.failures.append((file, pno, f"OCR failed: {error}"))
            r = page.rect
            chunks = chunk_blocks([((r.x0, r.y0, r.x1, r.y1), text)], file, pno, max_words=self.chunk_words)
            if chunks:
                self._pending_text.extend((c, "ocr") for c in chunks)
                row["indexed_by"].append("ocr")
                self.report.ocr_pages += 1
            if not row["indexed_by"]:
                self.report.skipped.append((file, pno, "no text layer, OCR found no text and no ColPali model given"))
        self._time("ocr", t0)

    # -- ColPali -------------------------------------------------------------------------------

    def _colpali_pages(self, file: str, pages: List[int]) -> None:
        from ..documents.pdf import PageFailure, render_pdf

        t0 = time.perf_counter()
        batch = []
        for item in render_pdf(file, dpi=self.dpi, tiles=self.tiles, pages=pages):
            if isinstance(item, PageFailure):
                self.report.failures.append((item.file, item.page, f"render failed: {item.error}"))
                continue
            batch.append(item)
            if len(batch) == self.batch_size:
                self._encode_rendered(batch)
                batch = []
        if batch:
            self._encode_rendered(batch)
        self._time("colpali", t0)

    def _encode_rendered(self, batch) -> None:
        try:
            embs = encode_rendered_pages(batch, self.colpali)
            done = list(batch)
        except Exception:  # find the failing page(s); the others still get indexed
            embs, done = [], []
            for p in batch:
                try:
                    embs.extend(encode_rendered_pages([p], self.colpali))
                    done.append(p)
                except Exception as e:  # noqa: BLE001 - reported per page
                    self.report.failures.append((p.file, p.page, f"ColPali encoding failed: {e}"))
        for p, e in zip(done, embs):
            self.page_embs.append(e)
            self.page_ids.append(page_id(p.file, p.page))

    # -- text ----------------------------------------------------------------------------------

    def flush_text(self) -> None:
        if not self._pending_text:
            return
        t0 = time.perf_counter()
        pending, self._pending_text = self._pending_text, []
        try:
            vecs = self.text.encode([c.text for c, _ in pending])
            done = pending
        except Exception:  # noqa: BLE001 - retry one by one to find the failing chunk
            vecs, done = [], []
            for c, source in pending:
                try:
                    vecs.append(self.text.encode([c.text]))
                    done.append((c, source))
                except Exception as e:  # noqa: BLE001
                    self.report.failures.append((c.file, c.page, f"text encoding failed: {e}"))
            vecs = torch.cat(vecs) if vecs else None
        if vecs is not None and len(done):
            self.text_vecs.append(vecs)
            for c, source in done:
                self.text_rows.append({"file": self.file_idx[c.file], "page": c.page, "bbox": list(c.bbox),
                                       "text": c.text, "source": source})
        self._time("text", t0)

    # -- images --------------------------------------------------------------------------------

    def _images(self, file: str, file_idx: int) -> None:
        t0 = time.perf_counter()
        thresholds = {k: v for k, v in self.junk.items() if k in ("min_bytes", "min_side", "max_aspect")}
        batch = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for im in iter_pdf_images(file, keep_junk=True, **thresholds):
                    if im.junk:
                        self.report.junk_images += 1
                        continue
                    batch.append(im)
                    if len(batch) == self.batch_size:
                        self._encode_images(batch, file_idx)
                        batch = []
                if batch:
                    self._encode_images(batch, file_idx)
            self.report.warnings.extend((file, str(w.message)) for w in caught)
        except Exception as e:  # noqa: BLE001 - the file's pages are indexed already
            self.report.failures.append((file, None, f"image extraction failed: {type(e).__name__}: {e}"))
        self._time("images", t0)

    def _count_images(self, file: str) -> None:
        """Without SigLIP: count what would have been indexed (the report says so)."""
        thresholds = {k: v for k, v in self.junk.items() if k in ("min_bytes", "min_side", "max_aspect")}
        try:
            import pymupdf

            from ..documents.pdf import is_junk_image

            with pymupdf.open(file, filetype="pdf") as doc:
                seen = set()
                for page in doc:
                    for info in page.get_images(full=True):
                        xref, width, height = info[0], info[2], info[3]
                        if xref in seen or xref <= 0:
                            continue
                        seen.add(xref)
                        nbytes = len(doc.xref_stream_raw(xref) or b"")
                        if is_junk_image(nbytes, width, height, **thresholds):
                            self.report.junk_images += 1
                        else:
                            self.report.images_not_indexed += 1
        except Exception:  # noqa: BLE001 - only a count
            pass

    def _encode_images(self, batch, file_idx: int) -> None:
        try:
            vecs = self.siglip.encode_images([im.image for im in batch])
        except Exception as e:  # noqa: BLE001
            for im in batch:
                self.report.failures.append((im.file, im.page, f"SigLIP encoding of image xref {im.xref} failed: {e}"))
            return
        self.image_vecs.append(vecs)
        for im in batch:
            self.image_rows.append({"file": file_idx, "page": im.page, "bbox": list(im.bbox), "xref": im.xref,
                                    "width": im.width, "height": im.height, "nbytes": im.nbytes})

    # -- sub-indexes ---------------------------------------------------------------------------

    def page_index(self, attrs: dict) -> Optional[MultiVectorIndex]:
        if not self.page_embs:
            return None
        return MultiVectorIndex.build(self.page_embs, ids=self.page_ids, keep_float=True, attrs=attrs)


def dense_index(vectors: Sequence[Tensor], ids: List[str], attrs: dict) -> Optional[MultiVectorIndex]:
    """A MultiVectorIndex with one float32 vector per document (exact dense search by MaxSim)."""
    if not vectors:
        return None
    values = torch.cat(list(vectors), 0).float().contiguous()
    if values.shape[0] == 0:
        return None
    offsets = torch.arange(values.shape[0] + 1, dtype=torch.int64)
    return MultiVectorIndex.build(PackedDocs(values, offsets), ids=ids, keep_float=True, float_dtype=torch.float32,
                                  attrs=attrs)


def build_hybrid(paths: Iterable[PathLike], index_dir: PathLike, *, colpali=None, siglip=None, text_model=None,
                 router: Optional[PageRouter] = None, dpi: float = 144, tiles: int = 1, chunk_words: int = 60,
                 junk: Optional[dict] = None, ocr=None, ocr_dpi: int = 200, ocr_timeout: float = 30.0,
                 batch_size: int = 8, device=None, overwrite: bool = False, progress: bool = False,
                 ann: str = "auto", ann_min_items: int = ANN_MIN_ITEMS) -> Tuple[BuildReport, Dict[str, Any]]:
    """Builds a hybrid index directory from PDFs (files or directories). See HybridIndex.build.
    -> (report, the encoders used by kind "colpali" / "siglip" / "text", None where not given)."""
    from ..colpali.indexing import index_settings
    from ..documents.pdf import collect_pdfs, tile_grid

    if colpali is None and siglip is None and text_model is None:
        raise ValueError("HybridIndex.build: give at least one model (colpali=, siglip= or text_model=)")
    if tiles not in (1, 4):
        raise ValueError(f"HybridIndex.build: tiles must be 1 or 4, got {tiles!r}")
    tile_grid(tiles)
    if isinstance(chunk_words, bool) or not isinstance(chunk_words, int) or chunk_words < 1:
        raise ValueError(f"HybridIndex.build: chunk_words must be a positive int, got {chunk_words!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"HybridIndex.build: batch_size must be a positive int, got {batch_size!r}")
    router = router if router is not None else PageRouter()
    if not isinstance(router, PageRouter):
        raise TypeError(f"HybridIndex.build: router must be a PageRouter, got {type(router).__name__}")
    junk = dict(junk or {})
    unknown = set(junk) - {"min_bytes", "min_side", "max_aspect"}
    if unknown:
        raise ValueError(f"HybridIndex.build: junk takes min_bytes, min_side and max_aspect, got {sorted(unknown)}")
    check_ann_mode(ann, ann_min_items)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = [os.path.abspath(f) for f in collect_pdfs(list(paths))]  # a missing input raises here
    check_model_paths(colpali, siglip, text_model)  # before minutes of loading and rendering

    t_start = time.perf_counter()
    ocr_engine, ocr_name, own_ocr = resolve_ocr(ocr)
    try:
        t0 = time.perf_counter()
        colpali_enc, colpali_path = load_model("colpali", colpali, device)
        siglip_enc, siglip_path = load_model("siglip", siglip, device)
        text_enc, text_path = load_model("text", text_model, device)
        load_seconds = time.perf_counter() - t0
    except BaseException:
        if own_ocr:
            ocr_engine.close()
        raise

    report = BuildReport(index_dir=os.path.abspath(os.fspath(index_dir)))
    b = _Builder(report, colpali=colpali_enc, siglip=siglip_enc, text=text_enc, router=router, dpi=dpi, tiles=tiles,
                 chunk_words=chunk_words, junk=junk, ocr=ocr_engine, ocr_dpi=ocr_dpi, ocr_timeout=ocr_timeout,
                 batch_size=batch_size)
    bar = files
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(files, desc="hybrid index", unit="file")
    try:
        for f in bar:
            b.add_file(f)
        if text_enc is not None:
            b.flush_text()
    finally:
        if own_ocr:
            ocr_engine.close()

    page_attrs = None
    if colpali_enc is not None:
        page_attrs = index_settings(colpali_enc, model=colpali_path or "", dpi=int(dpi), tiles=tiles, binary=False)
        page_attrs["model"] = colpali_path
    subs = {
        "page": b.page_index(page_attrs) if page_attrs is not None else None,
        "text": dense_index(b.text_vecs, [f"text:{i}" for i in range(len(b.text_rows))],
                            {"kind": "colkern.hybrid.text", "model": text_path}),
        "image": dense_index(b.image_vecs, [f"image:{i}" for i in range(len(b.image_rows))],
                             {"kind": "colkern.hybrid.image", "model": siglip_path}),
    }
    report.indexed = {kind: (sub.num_docs if sub is not None else 0) for kind, sub in subs.items()}
    t0 = time.perf_counter()
    anns = build_anns(subs, ann, ann_min_items)
    if anns:
        b.seconds["ann"] = time.perf_counter() - t0
    report.seconds = {"load_models": load_seconds, **b.seconds, "total": time.perf_counter() - t_start}
    manifest = {
        "format": FORMAT, "version": VERSION, "colkern": __version__,
        "models": {"colpali": colpali_path, "siglip": siglip_path, "text": text_path},
        "dims": {"page": getattr(colpali_enc, "dim", None), "image": getattr(siglip_enc, "dim", None),
                 "text": getattr(text_enc, "dim", None)},
        "settings": {"dpi": dpi, "tiles": tiles, "chunk_words": chunk_words, "router": router.settings(),
                     "junk": junk, "ocr": ocr_name, "ocr_dpi": ocr_dpi},
        "files": b.files,
        "counts": dict(report.indexed),
        "report": report.to_dict(),
    }
    save_dir(index_dir, manifest, b.pages, subs, {"text": b.text_rows, "image": b.image_rows}, overwrite=overwrite,
             anns=anns)
    return report, {"colpali": colpali_enc, "siglip": siglip_enc, "text": text_enc}
