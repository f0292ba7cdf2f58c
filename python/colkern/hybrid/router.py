"""The page router: which pages get ColPali's multi-vector embedding, which only the text route.

ColPali costs about 1,030 vectors per page (256 KB in fp16) and a vision-language forward pass;
the text route costs a few 384-d vectors per page and a small sentence encoder. ColPali earns its
cost where the layout carries meaning (figures, charts, tables, scans, forms) and the text layer
does not hold the page's content; on a page of plain prose the text layer says it all.

The rule (PageRouter.decide), from features PyMuPDF reads off the page in 5-10 ms (page_features):

    blank    no text, no image, no vector graphics: nothing to index (reported, not indexed)
    colpali  the text layer is (nearly) empty: < min_text_chars (50) non-space characters
             (a scan, a picture-only page, a diagram): only ColPali can see it. Whatever text
             it has (a caption, labels) is indexed too, as "both" (keep_text=True)
    both     raster images cover >= image_area (10%) of the page, or vector graphics (figures,
             charts, tables) cover >= graphics_area (5%): ColPali for the layout, and the text
             layer too (keep_text=True), since it is cheap and keeps the page findable by text
    text     anything else: prose, code, lists

Vector graphics are PyMuPDF's drawing clusters (page.cluster_drawings) minus text frames: a
cluster whose paths all lie on its outline and that holds text (a framed code listing, a shaded
note) is decoration, not a figure; a table (inner rules) or a figure (inner paths, or boxes
without text such as colour swatches) is not a frame. Areas are the clusters' boxes as fractions
of the page, clipped to it. The box of a plot's paths is much smaller than the figure looks (a
curve and its axes, not the white space around them), hence the low 5% threshold: of the pages
between 4% and 15% checked by eye (about twenty), nearly all were plots, diagrams or tables, and
framed code listings measure 0 once their frames are set aside.

Measured on the Debian documentation PDFs of benchmarks/hybrid_quality.py (469 pages: the gri,
ReportLab and FreeFEM manuals): 64 pages (13.6%) go to ColPali (52 for vector graphics, 5 for
images, 7 with little text), 393 to the text route alone, 12 blank ones to neither. A real
ColPali (1,024 patches x 272 B per page) would take 17.0 MiB for the routed pages instead of
124.6 MiB for all of them; the text route holds 4,376 chunks in 6.4 MiB. Keeping the text of the
ColPali pages (keep_text=True) is worth 3.0 points of the text route's Recall@10 (0.770 vs
0.740 without it; nDCG@10 0.537 vs 0.516) for 0.56 MiB (380 chunks).

Overrides: force="colpali" | "text" | "both" routes every page that way, and overrides maps a
file (absolute path or base name) or one page of it ("<file>#page=<n>", n from 1) to a route.
Every page stays findable: a page without a text layer is never routed to "text" alone (it
goes to ColPali, whatever the override says), and a blank page is never indexed.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Mapping, Optional

TEXT = "text"
COLPALI = "colpali"
BOTH = "both"
BLANK = "blank"
ROUTES = (TEXT, COLPALI, BOTH)

# Frames: paths within this many points of a cluster's outline, around text blocks that lie at
# least this share inside it.
_FRAME_TOL = 2.0
_FRAME_TEXT = 0.2


@dataclass(frozen=True)
class PageFeatures:
    """What the router looks at. Areas are fractions of the page area, in [0, 1].

    text_chars: non-space characters of the text layer; text_area: share covered by text blocks;
    image_area: by raster images (as drawn on the page); graphics_area: by vector graphics
    clusters (text boxes excluded); n_images / n_paths: raster images drawn and vector path
    items outside text boxes.
    """

    width: float
    height: float
    text_chars: int
    text_area: float
    image_area: float
    graphics_area: float
    n_images: int
    n_paths: int

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RouteDecision:
    """The router's verdict for one page: route in ("text", "colpali", "both", "blank") and why."""

    route: str
    reason: str

    @property
    def colpali(self) -> bool:
        return self.route in (COLPALI, BOTH)

    @property
    def text(self) -> bool:
        return self.route in (TEXT, BOTH)


def _area(rect, clip) -> float:
    r = rect & clip
    return 0.0 if r.is_empty else abs(r)


def page_features(page) -> PageFeatures:
    """Features of an open PyMuPDF page (see PageFeatures)."""
    import pymupdf

    rect = page.rect
    page_area = abs(rect)
    if page_area <= 0:
        return PageFeatures(float(rect.width), float(rect.height), 0, 0.0, 0.0, 0.0, 0, 0)
    blocks = [pymupdf.Rect(b[:4]) for b in page.get_text("blocks") if b[6] == 0 and b[4].strip()]
    text = page.get_text("text")
    chars = sum(1 for c in text if not c.isspace())
    text_area = min(1.0, sum(_area(b, rect) for b in blocks) / page_area)
    images = page.get_image_info()
    image_area = min(1.0, sum(_area(pymupdf.Rect(im["bbox"]), rect) for im in images) / page_area)
    graphics, n_paths = 0.0, 0
    drawings = page.get_drawings()
    if drawings:
        for cluster in page.cluster_drawings(drawings=drawings):
            loose = cluster + (-1, -1, 1, 1)
            items = [it for d in drawings if d["rect"] in loose for it in d["items"]]
            if _is_text_frame(cluster, items, blocks):
                continue
            graphics += _area(cluster, rect)
            n_paths += len(items)
    graphics_area = min(1.0, graphics / page_area)
    return PageFeatures(float(rect.width), float(rect.height), chars, text_area, image_area, graphics_area,
                        len(images), n_paths)


def _on_border(item, box, tol: float = _FRAME_TOL) -> bool:
    """An axis-parallel line on an edge of `box`, or a rectangle that is `box` itself."""
    kind = item[0]
    if kind == "l":
        p, q = item[1], item[2]
        if abs(p.x - q.x) <= tol:
            return abs(p.x - box.x0) <= tol or abs(p.x - box.x1) <= tol
        if abs(p.y - q.y) <= tol:
            return abs(p.y - box.y0) <= tol or abs(p.y - box.y1) <= tol
        return False
    if kind in ("re", "qu"):
        r = item[1] if kind == "re" else item[1].rect
        return all(abs(a - b) <= tol for a, b in zip(r, box))
    return False


def _is_text_frame(box, items, blocks) -> bool:
    """A frame or shading around text (a code listing, a note): every path of the cluster lies on
    its outline, and text sits inside. Tables (inner rules) and figures (inner paths, or boxes
    without text, such as coloured swatches) are not frames."""
    if not items or not all(_on_border(it, box) for it in items):
        return False
    return any(_area(b, box) > _FRAME_TEXT * abs(b) for b in blocks if abs(b) > 0)


def _check_fraction(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise ValueError(f"PageRouter: {name} must be a number in [0, 1], got {v!r}")
    return float(v)


class PageRouter:
    """Decides per page whether ColPali, the text route or both index it (see the module doc).

    min_text_chars: below it the text layer counts as empty. image_area / graphics_area:
    thresholds on the share of the page covered by images / vector graphics. keep_text: pages
    that get ColPali also keep their text chunks ("both"; False: "colpali" alone). force: one
    route for every page. overrides: {file or "file#page=n": route}.
    """

    def __init__(self, *, min_text_chars: int = 50, image_area: float = 0.10, graphics_area: float = 0.05,
                 keep_text: bool = True, force: Optional[str] = None,
                 overrides: Optional[Mapping[str, str]] = None):
        if isinstance(min_text_chars, bool) or not isinstance(min_text_chars, int) or min_text_chars < 0:
            raise ValueError(f"PageRouter: min_text_chars must be an int >= 0, got {min_text_chars!r}")
        self.min_text_chars = min_text_chars
        self.image_area = _check_fraction("image_area", image_area)
        self.graphics_area = _check_fraction("graphics_area", graphics_area)
        self.keep_text = bool(keep_text)
        if force is not None and force not in ROUTES:
            raise ValueError(f"PageRouter: force must be one of {ROUTES} or None, got {force!r}")
        self.force = force
        self.overrides = {}
        for key, route in (overrides or {}).items():
            if route not in ROUTES:
                raise ValueError(f"PageRouter: override {key!r} -> {route!r}: route must be one of {ROUTES}")
            self.overrides[str(key)] = route

    def settings(self) -> dict:
        """The router's settings (stored with a hybrid index)."""
        return {"min_text_chars": self.min_text_chars, "image_area": self.image_area,
                "graphics_area": self.graphics_area, "keep_text": self.keep_text, "force": self.force,
                "overrides": dict(self.overrides)}

    @classmethod
    def from_settings(cls, settings: Mapping) -> "PageRouter":
        return cls(**dict(settings))

    def _override(self, file: Optional[str], page: Optional[int]) -> Optional[str]:
        if file is None or not self.overrides:
            return None
        names = (os.path.abspath(file), os.path.basename(file), file)
        if page is not None:
            for name in names:
                route = self.overrides.get(f"{name}#page={page + 1}")
                if route:
                    return route
        for name in names:
            route = self.overrides.get(name)
            if route:
                return route
        return None

    def decide(self, features: PageFeatures, file: Optional[str] = None, page: Optional[int] = None) -> RouteDecision:
        """The route of one page (page 0-based, file as indexed; both only for overrides)."""
        f = features
        has_text = f.text_chars >= self.min_text_chars
        if f.text_chars == 0 and f.n_images == 0 and f.n_paths == 0:
            return RouteDecision(BLANK, "blank page: no text layer, no image, no vector graphics")
        wanted = self._override(file, page) or self.force
        if wanted is not None:
            how = "override" if self._override(file, page) else "forced"
            if wanted == TEXT and not has_text:
                return RouteDecision(BOTH if f.text_chars else COLPALI,
                                     f"{how} text, but the text layer is (nearly) empty ({f.text_chars} chars): "
                                     f"ColPali keeps the page findable")
            return RouteDecision(wanted, f"{how} {wanted}")
        if not has_text:
            if f.text_chars and self.keep_text:  # a caption or a label: cheap, and it finds the page by text
                return RouteDecision(BOTH, f"little text ({f.text_chars} chars < {self.min_text_chars})")
            return RouteDecision(COLPALI, f"no text layer ({f.text_chars} chars < {self.min_text_chars})")
        visual = []
        if f.image_area >= self.image_area:
            visual.append(f"images cover {f.image_area:.0%} of the page")
        if f.graphics_area >= self.graphics_area:
            visual.append(f"vector graphics cover {f.graphics_area:.0%} of the page")
        if visual:
            return RouteDecision(BOTH if self.keep_text else COLPALI, "; ".join(visual))
        return RouteDecision(TEXT, "text page")
