"""Relabel the samples whose OCR call timed out, with a longer timeout.

On a shared 2-core machine under heavy load (load average 20-28 while the issue-14 data sets were
built) RapidOCR needed more than the builder's 40 s per page on pages it reads fine when the
machine is idle: those timeouts are the machine's, not the page's. This reruns the engine on
exactly those samples (same image, same settings, one at a time) with `--timeout` seconds and
rewrites their label in place (atomically); the label's config records {"relabelled_timeout": T}.
A page that still times out keeps its timed-out label.

    python benchmarks/quality_relabel_timeouts.py /work/qdata/jpn-train --engine rapidocr --timeout 300
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def relabel(root: str, engine_name: str, timeout: float, limit: int = 0) -> int:
    from colkern._atomic import atomic_write
    from colkern.quality.dataset import load_dataset
    from colkern.quality.ocr import get_engine, label_page

    ds = load_dataset(root)
    options = ds.meta["build"]["engines"][engine_name]["options"]
    todo = [s for s in ds if engine_name in s.labels and s.labels[engine_name].timed_out]
    if limit:
        todo = todo[:limit]
    print(f"{root}: {len(todo)} timed-out {engine_name} labels", flush=True)
    engines = {}
    fixed = 0
    try:
        for s in todo:
            override = dict((s.source.get("ocr") or {}).get(engine_name, {}))
            lang = override.pop("lang", s.lang)
            key = (lang, json.dumps(override, sort_keys=True))
            if key not in engines:
                engines[key] = get_engine(engine_name, lang=lang, **{**options, **override})
            lab = label_page(engines[key], s.load_image(), s.text, timeout=timeout, lang=s.lang)
            path = os.path.join(root, "records", f"{s.sample_id}.json")
            with open(path, "rb") as f:
                rec = json.loads(f.read().decode("utf-8"))
            d = lab.to_dict()
            d["config"] = {**d["config"], "relabelled_timeout": timeout}
            rec["labels"][engine_name] = d
            data = json.dumps(rec, ensure_ascii=False, indent=1).encode("utf-8")
            atomic_write(path, lambda f: f.write(data))
            fixed += not lab.timed_out
            print(f"  {s.sample_id}: cer {lab.cer:.3f} in {lab.seconds:.0f} s{' (timed out again)' if lab.timed_out else ''}",
                  flush=True)
    finally:
        for e in engines.values():
            e.close()
    return fixed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="+")
    ap.add_argument("--engine", default="rapidocr")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    for root in args.roots:
        relabel(root, args.engine, args.timeout, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
