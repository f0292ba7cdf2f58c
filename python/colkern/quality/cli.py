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
    b.add_argument("--dpi", type=int, default=150)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--timeout", type=float, default=10.0, help="seconds per OCR call; a timeout is CER 1")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_build)

    t = qs.add_parser("train", help="train a predictor on a data set (optionally with grouped k-fold CV)")
    t.add_argument("dataset", metavar="DATASET_DIR")
    t.add_argument("-o", "--output", required=True, metavar="MODEL")
    t.add_argument("--engine", default=None, help="whose labels to learn (default: the data set's first)")
    t.add_argument("--encoder", default="glyph", choices=("glyph", "pixel"),
                   help="patch features: glyph (binarised connected components, default) or pixel statistics")
    t.add_argument("--cv", type=int, default=5, help="grouped k-fold folds to report first (0: none)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_train)

    e = qs.add_parser("evaluate", help="score a model on a held-out data set; write a report + scatter plot")
    e.add_argument("model", metavar="MODEL")
    e.add_argument("dataset", metavar="DATASET_DIR")
    e.add_argument("--report", required=True, metavar="DIR", help="report.md, report.json, scatter-*.png")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_evaluate)

    p = qs.add_parser("predict", help="predicted CER / WER and a verdict for each page of PDFs or images")
    p.add_argument("inputs", nargs="+", metavar="PDF_OR_IMAGE")
    p.add_argument("--model", default=None, help="a model file (default: the shipped model for --engine)")
    p.add_argument("--engine", default="tesseract", choices=("tesseract", "rapidocr"),
                   help="which shipped model to use (default tesseract)")
    p.add_argument("--dpi", type=int, default=None, help="render DPI for PDFs (default: the model's)")
    p.add_argument("--overlay-dir", default=None, metavar="DIR", help="write a per-patch quality overlay PNG per page")
    p.add_argument("--json", action="store_true", help="one JSON object per page")
    p.set_defaults(func=_predict)


def _build(args) -> int:
    from .dataset import build_dataset

    report = build_dataset(args.out, n_sources=args.sources, variants_per_source=args.variants,
                           engines=tuple(s.strip() for s in args.engines.split(",") if s.strip()),
                           langs=[s.strip() for s in args.langs.split(",") if s.strip()], dpi=args.dpi,
                           seed=args.seed, workers=args.workers, timeout=args.timeout, progress=not args.quiet)
    print(report.summary())
    return 0


def _train(args) -> int:
    from .dataset import load_dataset
    from .pipeline import make_encoder, train_predictor

    ds = load_dataset(args.dataset)
    engine = args.engine or ds.engines[0]
    model, cv = train_predictor(ds, engine, encoder=make_encoder(args.encoder), cv_folds=args.cv, seed=args.seed,
                                progress=not args.quiet)
    if cv is not None:
        print(cv.summary())
    model.save(args.output)
    print(f"{args.output}: {engine} predictor trained on {len(ds)} pages of {len(set(ds.source_ids))} sources")
    return 0


def _evaluate(args) -> int:
    from .dataset import load_dataset
    from .pipeline import evaluate_predictor, load_model

    ev = evaluate_predictor(load_model(args.model), load_dataset(args.dataset), args.report, progress=not args.quiet)
    print(ev.summary())
    print(f"report: {os.path.join(os.path.abspath(args.report), 'report.md')}")
    return 0


def _predict(args) -> int:
    from .pipeline import load_model, predict_files

    model = load_model(args.model, args.engine)
    rows = predict_files(args.inputs, model, overlay_dir=args.overlay_dir, dpi=args.dpi)
    if args.json:
        for r in rows:
            print(json.dumps({"file": r.file, "page": None if r.page is None else r.page + 1, "cer": r.cer,
                              "wer": r.wer, "verdict": r.verdict, "overlay": r.overlay, "error": r.error}))
    else:
        print(f"predicted {model.engine} quality ({model.encoder_name} features)")
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
