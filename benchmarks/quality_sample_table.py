"""The demo table: for every page of the bundled sample PDF, the shipped models' predicted CER and
verdict next to the real CER of the engine (run on the same rendered page, scored against the
page's generated ground truth).

    python benchmarks/quality_sample_table.py --out benchmarks/results/quality-sample [--engines tesseract,rapidocr]
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def describe(steps) -> str:
    names = {"jpeg": "JPEG", "blur": "blur", "noise": "noise", "contrast": "low contrast",
             "downscale": "downscale"}
    return " + ".join(f"{names.get(op, op)} {s}" for op, s in steps) if steps else "none"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--engines", default="tesseract,rapidocr")
    args = ap.parse_args(argv)

    from colkern.quality import predict
    from colkern.quality.ocr import get_engine, label_page
    from colkern.quality.pipeline import DEFAULT_DPI, iter_pdf
    from colkern.quality.sample import PAGES, sample_pdf_path
    from colkern.quality.synth import generate_page

    engines = [e for e in args.engines.split(",") if e]
    images = {n: img for n, img, _ in iter_pdf(sample_pdf_path(), DEFAULT_DPI)}
    rows = []
    for i, (seed, layout, steps, lang) in enumerate(PAGES):
        truth = generate_page(seed, lang=lang, layout=layout, dpi=DEFAULT_DPI, small_print=lang == "jpn").text
        row = {"page": i + 1, "lang": lang, "layout": layout, "degradation": describe(steps)}
        for name in engines:
            pred = predict(sample_pdf_path(), engine=name, lang=lang, pages=[i])[0]
            with get_engine(name, lang=lang, **({"psm": 4} if name == "tesseract" else {})) as eng:
                real = label_page(eng, images[i], truth, timeout=300)
            row[name] = {"predicted_cer": pred.cer, "verdict": pred.verdict, "real_cer": real.cer,
                         "real_wer": real.wer, "predicted_wer": pred.wer}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sample.json"), "w") as f:
        json.dump(rows, f, indent=2, ensure_ascii=False)
    head = "| page | language, layout | degradation | " + " | ".join(
        f"{e}: predicted CER (verdict) | {e}: real CER" for e in engines) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(engines))]
    for r in rows:
        cells = []
        for e in engines:
            cells += [f"{r[e]['predicted_cer']:.3f} ({r[e]['verdict']})", f"{r[e]['real_cer']:.3f}"]
        lines.append(f"| {r['page']} | {r['lang']}, {r['layout']} | {r['degradation']} | " + " | ".join(cells) + " |")
    with open(os.path.join(args.out, "sample.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
