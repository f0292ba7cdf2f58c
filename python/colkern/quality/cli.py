"""`colkern quality build-dataset | train | evaluate | predict`: the OCR quality predictor's CLI."""
from __future__ import annotations

import json
import os
import sys


def add_commands(sub) -> None:
    q = sub.add_parser("quality", help="predict how well an OCR engine will read pages (CER / WER)",
                       description="OCR quality prediction: build a labelled data set with a real OCR "
                                   "engine, train and evaluate a predictor, predict pages.")
    qs = q.add_subparsers(dest="quality_command", required=True)

    b = qs.add_parser("build-dataset", help="generate degraded pages and label them with real OCR (resumable)")
    b.add_argument("out", metavar="DIR")
    b.add_argument("--sources", type=int, required=True, help="generated source documents")
    b.add_argument("--variants", type=int, default=8, help="degraded variants per source (default 8)")
    b.add_argument("--engines", default="tesseract", help="comma-separated: tesseract, rapidocr")
    b.add_argument("--langs", default="eng", help="comma-separated: eng, jpn (default eng)")
    b.add_argument("--layouts", default=None,
                   help="comma-separated: receipt, form, prose, invoice, vertical (default: all a language has)")
    b.add_argument("--dpi", type=int, default=150)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--timeout", type=float, default=10.0, help="seconds per OCR call; a timeout is CER 1")
    b.add_argument("--capture", choices=("none", "camera", "scanner"), default="none",
                   help="camera: each source is also warped, skewed, photographed at an angle, shadowed or "
                        "shaken; scanner: its ink faded or spread, its paper tinted, its other side showing "
                        "through, a dark border, a slight skew or a 1-bit scan (drawn per source; "
                        "colkern.quality.capture) before its degradations")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_build)

    t = qs.add_parser("train", help="train a predictor on a data set (optionally with grouped k-fold CV)")
    t.add_argument("dataset", metavar="DATASET_DIR")
    t.add_argument("-o", "--output", required=True, metavar="MODEL")
    t.add_argument("--engine", default=None, help="whose labels to learn (default: the data set's first)")
    t.add_argument("--encoder", default="glyph",
                   help="patch features: glyph (binarised connected components, default), pixel (pixel "
                        "statistics), ppocr (the PP-OCR detector's feature map), lines (line direction, lighting), "
                        "skew (projection-profile skew), border (dark bands along the edges), or parts joined by '+' "
                        "(e.g. glyph+ppocr: concatenated on the 32-px grid)")
    t.add_argument("--cv", type=int, default=5, help="grouped k-fold folds to report first (0: none)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_train)

    e = qs.add_parser("evaluate", help="score a model on held-out data sets (pooled); write a report + scatter plot")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("dataset", metavar="DATASET_DIR", nargs="+")
    e.add_argument("--report", required=True, metavar="DIR", help="report.md, report.json, scatter-*.png")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_evaluate)

    p = qs.add_parser("predict", help="predicted CER / WER and a verdict for each page of PDFs or images")
    p.add_argument("inputs", nargs="+", metavar="PDF_OR_IMAGE")
    p.add_argument("--model", default=None, help="a model file (default: the shipped model for --engine)")
    p.add_argument("--engine", default="tesseract", choices=("tesseract", "rapidocr"),
                   help="which shipped model to use (default tesseract)")
    p.add_argument("--lang", default="eng", help="page language of the shipped model: eng or jpn (default eng)")
    p.add_argument("--pages", default=None, help="PDF pages to predict, 1-based: e.g. 1-6,8 (default all)")
    p.add_argument("--boxes", default=None, metavar="JSON",
                   help="predict regions instead of pages: a JSON file with a list of boxes, each "
                        "[x0, y0, x1, y1] in pixels of the page image (PDF pages rendered at the model's "
                        "DPI) or {\"box\": [...], \"name\": ..., \"page\": n (1-based, PDFs)}")
    p.add_argument("--dpi", type=int, default=None, help="render DPI for PDFs (default: the model's)")
    p.add_argument("--overlay-dir", default=None, metavar="DIR", help="write a per-patch quality overlay PNG per page")
    p.add_argument("--json", action="store_true", help="one JSON object per page")
    p.set_defaults(func=_predict)


def _build(args) -> int:
    from .dataset import build_dataset

    report = build_dataset(args.out, n_sources=args.sources, variants_per_source=args.variants,
                           engines=tuple(s.strip() for s in args.engines.split(",") if s.strip()),
                           langs=[s.strip() for s in args.langs.split(",") if s.strip()], dpi=args.dpi,
                           **({"layouts": [s.strip() for s in args.layouts.split(",") if s.strip()]}
                              if args.layouts else {}),
                           seed=args.seed, workers=args.workers, timeout=args.timeout, progress=not args.quiet,
                           capture=args.capture)
    print(report.summary())
    return 0


def encoder_from_spec(spec: str):
    """"glyph", "pixel", "ppocr", "lines", "skew", "border", or parts joined by "+" (a ConcatPatchEncoder on the
    32-px grid: the pixel part then uses 32-px patches)."""
    from .pipeline import make_encoder

    parts = [p.strip() for p in spec.split("+") if p.strip()]
    if len(parts) == 1:
        return make_encoder(parts[0])
    return make_encoder("concat", {"parts": [{"name": p, "params": {"patch": 32}} for p in parts]})


def parse_pages(spec: str):
    """ "1-6,8" -> [0, 1, 2, 3, 4, 5, 7] (0-based); ValueError for anything else."""
    pages = []
    for part in spec.split(","):
        part = part.strip()
        try:
            lo, _, hi = part.partition("-")
            lo_i, hi_i = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ValueError(f"--pages: expected page numbers like 1-6,8, got {spec!r}") from None
        if lo_i < 1 or hi_i < lo_i:
            raise ValueError(f"--pages: pages are 1-based ranges lo-hi with lo <= hi, got {part!r}")
        pages.extend(range(lo_i - 1, hi_i))
    return pages


def _train(args) -> int:
    from .dataset import load_dataset
    from .pipeline import train_predictor

    ds = load_dataset(args.dataset)
    engine = args.engine or ds.engines[0]
    model, cv = train_predictor(ds, engine, encoder=encoder_from_spec(args.encoder), cv_folds=args.cv,
                                seed=args.seed, progress=not args.quiet)
    if cv is not None:
        print(cv.summary())
    model.save(args.output)
    print(f"{args.output}: {engine} predictor trained on {len(ds)} pages of {len(set(ds.source_ids))} sources")
    return 0


def _evaluate(args) -> int:
    from .dataset import load_dataset
    from .pipeline import evaluate_predictor, load_model

    datasets = [load_dataset(d) for d in args.dataset]
    ev = evaluate_predictor(load_model(args.model), datasets, args.report, progress=not args.quiet)
    print(ev.summary())
    print(f"report: {os.path.join(os.path.abspath(args.report), 'report.md')}")
    return 0


def _predict(args) -> int:
    from .api import predict, resolve_model

    model = resolve_model(args.model, args.engine, args.lang)
    pages = parse_pages(args.pages) if args.pages else None
    if args.boxes:
        return _predict_regions(args, model, pages)
    rows = predict(args.inputs, model=model, overlay_dir=args.overlay_dir, dpi=args.dpi, pages=pages)
    if args.json:
        for r in rows:
            print(json.dumps(r.to_dict(), ensure_ascii=False))
    else:
        lang = model.engine_config.get("lang") or ",".join(model.engine_config.get("langs") or []) or "?"
        print(f"predicted {model.engine} ({lang}) quality ({model.encoder_name} features)")
        print(f"{'page':>4}  {'CER':>6}  {'WER':>6}  {'verdict':<7}  file")
        for r in rows:
            page = "-" if r.page is None else str(r.page + 1)
            if r.cer is None:
                print(f"{page:>4}  {'-':>6}  {'-':>6}  {r.verdict:<7}  {r.file}: {r.error}")
            else:
                wer = f"{r.wer:6.3f}" if r.wer is not None else f"{'-':>6}"
                print(f"{page:>4}  {r.cer:6.3f}  {wer}  {r.verdict:<7}  {r.file}")
    failed = [r for r in rows if r.verdict == "error"]
    for r in failed:
        print(f"failed: {r.file}{'' if r.page is None else f' page {r.page + 1}'}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def _read_boxes(path: str):
    try:
        with open(path, "rb") as f:
            spec = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"--boxes: no such file {path!r}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--boxes: {path} is not JSON ({e})") from None
    if not isinstance(spec, list) or not spec:
        raise ValueError(f"--boxes: {path} must hold a non-empty JSON list of boxes")
    return spec


def _predict_regions(args, model, pages) -> int:
    from .api import predict_regions

    spec = _read_boxes(args.boxes)
    failed = 0
    if not args.json:
        print(f"predicted {model.engine} quality of regions ({model.encoder_name} features)")
        print(f"{'page':>4}  {'CER':>6}  {'WER':>6}  {'verdict':<7}  {'box':<22}  name  file")
    for path in args.inputs:
        is_pdf = path.lower().endswith(".pdf")
        by_page = {}
        for i, b in enumerate(spec):
            page = b.get("page", 1) if isinstance(b, dict) else 1
            if isinstance(page, bool) or not isinstance(page, int) or page < 1:
                raise ValueError(f"--boxes: box {i}: page must be a 1-based page number, got {page!r}")
            if not is_pdf and page != 1:
                continue
            by_page.setdefault(page - 1, []).append({k: v for k, v in b.items() if k != "page"}
                                                    if isinstance(b, dict) else b)
        for page, boxes in sorted(by_page.items()):
            if pages is not None and page not in pages:
                continue
            try:
                regions = predict_regions(path, boxes, model=model, page=page if is_pdf else None, dpi=args.dpi)
            except (OSError, ValueError) as e:
                failed += 1
                print(f"failed: {path}{f' page {page + 1}' if is_pdf else ''}: {e}", file=sys.stderr)
                continue
            for r in regions:
                if args.json:
                    print(json.dumps({"file": path, "page": page + 1 if is_pdf else None, **r.to_dict()},
                                     ensure_ascii=False))
                else:
                    cer = "-" if r.cer is None else f"{r.cer:.3f}"
                    wer = "-" if r.wer is None else f"{r.wer:.3f}"
                    p = str(page + 1) if is_pdf else "-"
                    print(f"{p:>4}  {cer:>6}  {wer:>6}  {r.verdict:<7}  {str(list(r.box)):<22}  "
                          f"{r.name or '-'}  {path}")
    return 1 if failed else 0
