"""Real pages for the OCR quality predictors: pages of documentation PDFs that Debian packages
install, degraded with colkern.quality.degrade's recipes and labelled by the real engines, then the
shipped models scored on them (never trained or tuned on them).

    apt-get install maint-guide maint-guide-ja developers-reference developers-reference-ja \\
        debian-policy gri-pdf-doc debian-edu-doc-ja
    python benchmarks/quality_real_pages.py build  /work/qdata/real  # resumable; OCR takes a while
    python benchmarks/quality_real_pages.py evaluate /work/qdata/real --out benchmarks/results/quality-real-pages
    # the same pages as a scanner or phone camera sees them (warp, skew, perspective, shadow,
    # motion blur; colkern.quality.capture) before the recipes: sets real-camera-eng / -jpn
    python benchmarks/quality_real_pages.py build  /work/qdata/real --capture camera
    python benchmarks/quality_real_pages.py evaluate /work/qdata/real --capture camera --out DIR
    # and through a scanner (faded or spread ink, tinted paper, bleed-through, a dark border, a
    # slight skew, a 1-bit scan): sets real-scanner-eng / -jpn
    python benchmarks/quality_real_pages.py build  /work/qdata/real --capture scanner
    # the same pages rendered at 300 dpi and read there by the engines (sets real-camera-300dpi-eng
    # ...); evaluate predicts them through colkern.quality.predict, which resamples them as it
    # resamples a user's 300-dpi scan
    python benchmarks/quality_real_pages.py build  /work/qdata/real --capture camera --dpi 300
    python benchmarks/quality_real_pages.py evaluate /work/qdata/real --capture camera --dpi 300 --out DIR
    # how a 300-dpi page is brought down to the models' 150 (colkern.quality.resolution.DOWNSAMPLE),
    # on every 300-dpi set (build-train --dpi 300 too: pages no shipped model trained on)
    python benchmarks/quality_real_pages.py check-resampling /work/qdata/real --out DIR
    # training pages from other PDFs (TRAIN_POOL; benchmarks/quality_models.py --plan real)
    python benchmarks/quality_real_pages.py build-train /work/qdata/real --pool-root POOL --capture camera
    python benchmarks/quality_real_pages.py build-train /work/qdata/real --pool-root POOL --capture none --variants 2
    python benchmarks/quality_real_pages.py build-train /work/qdata/real --pool-root POOL --capture scanner
    python benchmarks/quality_real_pages.py build-train /work/qdata/real --pool-root POOL --capture scanner2  # and camera2
    python benchmarks/quality_real_pages.py build-train /work/qdata/real --pool-root POOL --capture wide-scanner
    python benchmarks/quality_real_pages.py build-train /work/qdata/real --pool-root POOL --capture wide-camera

English: Debian Developer's Reference (Sphinx / LaTeX), Debian Policy (Sphinx), the Filesystem
Hierarchy Standard (DocBook), the gri manual (texinfo), the New Maintainers' Guide (DocBook /
dblatex, A4). Japanese: the Japanese Developer's Reference and New Maintainers' Guide, the Debian
Edu bookworm manual. Not used (kept for an independent evaluation): libtasn1-doc,
shared-mime-info, r-doc-pdf, auto-multiple-choice-doc-pdf, docbook-xsl-doc-pdf, siscone-doc-pdf,
why3-doc-pdf and the Japanese text of debian-reference-ja, debian-faq-ja, aptitude-doc-ja.

Pages: per PDF, the first page at or after 25%, 50% and 75% of the document with at least
MIN_CHARS characters in its text layer (the ground truth, PyMuPDF's get_text(sort=True)), rendered
at 150 dpi, grey.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sys
from typing import Dict, List

import numpy as np

SOURCES = {
    "eng": ["/usr/share/developers-reference/developers-reference.pdf",
            "/usr/share/doc/debian-policy/policy.pdf.gz",
            "/usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz",
            "/usr/share/doc/gri/gri.pdf.gz",
            "/usr/share/doc/maint-guide/maint-guide.en.pdf"],
    "jpn": ["/usr/share/developers-reference/ja/developers-reference.pdf",
            "/usr/share/doc/maint-guide-ja/maint-guide.ja.pdf",
            "/usr/share/doc/debian-edu-doc-ja/debian-edu-bookworm-manual.pdf"],
}
FRACTIONS = (0.25, 0.5, 0.75)
MIN_CHARS = {"eng": 1200, "jpn": 600}
DPI = 150


def _local_pdf(path: str, work: str) -> str:
    """PDFs shipped gzipped are unpacked into work/src (PyMuPDF reads plain files)."""
    if not path.endswith(".gz"):
        return path
    os.makedirs(os.path.join(work, "src"), exist_ok=True)
    out = os.path.join(work, "src", os.path.basename(path)[:-3])
    if not os.path.exists(out):
        with gzip.open(path, "rb") as f, open(out + ".tmp", "wb") as g:
            shutil.copyfileobj(f, g)
        os.replace(out + ".tmp", out)
    return out


def real_sources(lang: str, work: str, dpi: int = DPI):
    import pymupdf

    from colkern.quality.synth import pages_from_pdf

    out = []
    for path in SOURCES[lang]:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: install the Debian package that ships it (see the docstring)")
        pdf = _local_pdf(path, work)
        with pymupdf.open(pdf) as doc:
            n = doc.page_count
            chosen = []
            for frac in FRACTIONS:
                for k in range(int(frac * n), n):
                    if k not in chosen and len(doc[k].get_text("text").strip()) >= MIN_CHARS[lang]:
                        chosen.append(k)
                        break
        for page in pages_from_pdf(pdf, lang=lang, dpi=dpi, pages=chosen):
            page.meta["package_file"] = path
            out.append(page)
    return out


# Real pages to TRAIN on: other PDFs than the evaluation SOURCES above and the reserved ones, so the
# evaluation stays on documents the models never saw. Paths are under --pool-root, where the
# packages were unpacked without installing them (texlive-lang-japanese would pull in TeX Live):
#   apt-get download octave-doc asymptote-doc gnuplot-doc bash-doc zsh-doc maxima-doc \
#       texlive-latex-base-doc texlive-lang-japanese && for f in *.deb; do dpkg -x "$f" POOL; done
_TL = "usr/share/doc/texlive-doc/"
TRAIN_POOL = {
    "eng": ["usr/share/doc/octave/octave.pdf", "usr/share/doc/octave/liboctave.pdf",
            "usr/share/doc/octave/refcard-a4.pdf", "usr/share/doc/asymptote/asymptote.pdf",
            "usr/share/doc/gnuplot/gnuplot.pdf", "usr/share/doc/bash-doc/bashref.pdf",
            "usr/share/doc/bash-doc/bash.pdf", "usr/share/doc/zsh-common/zsh.pdf",
            "usr/share/doc/maxima-doc/maximabook-19-Sept-2004.pdf.gz",
            _TL + "latex/base/clsguide.pdf", _TL + "latex/base/fntguide.pdf",
            _TL + "latex/base/lamport-manual.pdf", _TL + "latex/base/usrguide.pdf",
            _TL + "latex/base/ltnews30.pdf", _TL + "latex/base/modguide.pdf"],
    "jpn": [_TL + "luatex/luatexja/luatexja-ja.pdf", _TL + "latex/lshort-japanese/jlshort.pdf",
            _TL + "texlive/texlive-ja/texlive-ja.pdf", _TL + "platex/base/pldoc.pdf",
            _TL + "latex/bxjscls/bxjscls-manual.pdf", _TL + "ptex/ptex-manual/ptex-manual.pdf",
            _TL + "latex/jlreq/jlreq-ja.pdf", _TL + "lualatex/japanese-mathformulas/japanese-mathformulas.pdf",
            _TL + "ptex/ptex-manual/eptexdoc.pdf", _TL + "luatex/luatexja/ltjclasses.pdf",
            _TL + "luatex/luatexja/luatexja-ruby.pdf", _TL + "uplatex/base/upldoc.pdf",
            _TL + "platex/pxchfon/pxchfon.pdf", _TL + "latex/pbibtex-manual/jbtxdoc.pdf",
            _TL + "support/mendex-doc/mendex.pdf"],
}
# A second, wider pool (benchmarks/quality_models.py --plan wide): the first one's English PDFs are
# nearly all Computer Modern (texinfo, LaTeX); these add other typesetters and faces: groff (Times,
# Helvetica, Courier), asciidoc / dblatex (Nimbus), texinfo in C059, Palatino, Latin Modern, TeX
# Gyre and typewriter faces (the evaluation's gri manual is texinfo in a typewriter face, and
# clean pages of it were over-predicted), and 15 more Japanese TeX manuals.
#   apt-get download groff gnu-standards nut-doc glpk-doc pari-doc lilypond-doc-pdf \
#       texlive-latex-recommended-doc texlive-humanities-doc && for f in *.deb; do dpkg -x "$f" POOL; done
WIDE_POOL = {
    "eng": ["usr/share/doc/groff-base/pdf/mom-pdf.pdf.gz", "usr/share/doc/groff-base/pdf/automake.pdf.gz",
            "usr/share/doc/groff-base/examples/mom/sample_docs.pdf.gz",
            "usr/share/doc/gnu-standards/standards.pdf.gz", "usr/share/doc/nut-doc/pdf/user-manual.pdf",
            "usr/share/doc/nut-doc/pdf/developer-guide.pdf", "usr/share/doc/glpk-doc/glpk.pdf",
            "usr/share/pari/doc/users.pdf", "usr/share/pari/doc/tutorial.pdf",
            "usr/share/doc/lilypond/html/Documentation/learning.pdf",
            "usr/share/doc/lilypond/html/Documentation/usage.pdf", _TL + "latex/memoir/memman.pdf",
            _TL + "latex/beamer/beameruserguide.pdf", _TL + "latex/fontspec/fontspec.pdf",
            _TL + "latex/listings/listings.pdf", _TL + "latex/screenplay/screenplay.pdf"],
    "jpn": [_TL + "ptex/ptex-manual/eptex_resume.pdf", _TL + "latex/bxjscls/bxjscls.pdf",
            _TL + "ptex/ptex-manual/ptexdoc_asciimw.pdf", _TL + "luatex/luatexja/ltjsclasses.pdf",
            _TL + "ptex/ptex-manual/jfm.pdf", _TL + "platex/pxrubrica/pxrubrica.pdf",
            _TL + "platex/base/platex.pdf", _TL + "platex/jsclasses/jsclasses.pdf",
            _TL + "ptex/ptex-manual/jtex_asciimw.pdf", _TL + "latex/pbibtex-manual/jbtxhak.pdf",
            _TL + "ptex/ptex-manual/jtexdoc_asciimw.pdf", _TL + "latex/pxcjkcat/pxcjkcat.pdf",
            _TL + "latex/pbibtex-manual/jbibtex.pdf", _TL + "latex/gentombow/gentombow-ja.pdf",
            _TL + "uplatex/base/uplatex.pdf"],
}
POOLS = {"base": TRAIN_POOL, "wide": WIDE_POOL}
TRAIN_PAGES_PER_PDF = 2
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _text_page(text: str, lang: str) -> bool:
    """Enough text in the layer to be a ground truth, and in the language (a Japanese manual's
    English pages, or a PDF whose fonts map to no Unicode, would label the wrong thing)."""
    chars = re.sub(r"\s", "", text)
    if len(chars) < MIN_CHARS[lang] // 2:
        return False
    if lang == "jpn":
        return len(_CJK.findall(chars)) >= 0.3 * len(chars)
    return sum(c.isascii() and c.isalnum() for c in chars) >= 0.6 * len(chars)


def _draw_pages(lang: str, pool_root: str, work: str, seed: int, avoid=None, pool: str = "base") -> Dict[str, List[int]]:
    """{PDF of POOLS[pool]: the TRAIN_PAGES_PER_PDF pages drawn with the seed} among each PDF's
    pages that pass _text_page and are not in avoid[PDF]."""
    import pymupdf

    rng = np.random.default_rng(seed)
    out = {}
    for rel in POOLS[pool][lang]:
        path = os.path.join(pool_root, rel)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: unpack the packages into --pool-root "
                                    f"(see {'TRAIN_POOL' if pool == 'base' else 'WIDE_POOL'})")
        with pymupdf.open(_local_pdf(path, work)) as doc:
            ok = [k for k in range(doc.page_count) if _text_page(doc[k].get_text("text"), lang)
                  and k not in (avoid or {}).get(rel, ())]
        out[rel] = sorted(int(k) for k in rng.choice(ok, size=min(TRAIN_PAGES_PER_PDF, len(ok)), replace=False))
    return out


def train_sources(lang: str, pool_root: str, work: str, seed: int, avoid_seeds=(), pool: str = "base",
                  dpi: int = DPI):
    """TRAIN_PAGES_PER_PDF pages per PDF of POOLS[pool], drawn with the seed among its pages that
    pass _text_page (and that the draws of avoid_seeds from the same pool did not take), rendered as
    the evaluation pages are."""
    from colkern.quality.synth import pages_from_pdf

    avoid: Dict[str, set] = {}
    for other in avoid_seeds:
        for rel, pages in _draw_pages(lang, pool_root, work, other, pool=pool).items():
            avoid.setdefault(rel, set()).update(pages)
    out = []
    for rel, chosen in _draw_pages(lang, pool_root, work, seed, avoid, pool).items():
        for page in pages_from_pdf(_local_pdf(os.path.join(pool_root, rel), work), lang=lang, dpi=dpi, pages=chosen):
            page.meta["package_file"] = rel
            out.append(page)
    return out


# capture mode -> (directory prefix, seed per language)
CAPTURE_SETS = {"none": ("real", {"eng": 20, "jpn": 21}), "camera": ("real-camera", {"eng": 30, "jpn": 31}),
                "scanner": ("real-scanner", {"eng": 40, "jpn": 41})}


def _dpi_suffix(dpi: int) -> str:
    """What names a set (or a report) of pages rendered at another DPI than the models' (--dpi: the
    same pages and seeds, read by the engines at that resolution): "" at the models' own."""
    return "" if dpi == DPI else f"-{dpi}dpi"


def _set_dir(work: str, capture: str, lang: str, dpi: int = DPI) -> str:
    """The evaluation set of a capture mode and language (_dpi_suffix: one of its own per DPI)."""
    return os.path.join(work, f"{CAPTURE_SETS[capture][0]}{_dpi_suffix(dpi)}-{lang}")


def build(work: str, variants: int, workers: int, engines, capture: str = "none", dpi: int = DPI,
          langs=("eng", "jpn")) -> None:
    from colkern.quality.dataset import build_dataset

    for lang in langs:
        sources = real_sources(lang, work, dpi)
        print(f"{lang}: {len(sources)} real source pages at {dpi} dpi", flush=True)
        report = build_dataset(_set_dir(work, capture, lang, dpi), sources=sources, variants_per_source=variants,
                               engines=tuple(engines), seed=CAPTURE_SETS[capture][1][lang], workers=workers,
                               timeout=60.0, progress=False, capture=capture)
        print(report.summary(), flush=True)


# Training sets: name -> (directory prefix, seed per language, capture mode, pool of POOLS).
TRAIN_SETS = {"camera": ("realtrain-camera", {"eng": 34, "jpn": 35}, "camera", "base"),
              "none": ("realtrain", {"eng": 36, "jpn": 37}, "none", "base"),
              "scanner": ("realtrain-scanner", {"eng": 38, "jpn": 39}, "scanner", "base"),
              # second draws (benchmarks/quality_models.py --plan more-real): pages of the same PDFs
              # that none of the first draws took
              "camera2": ("realtrain-camera2", {"eng": 48, "jpn": 49}, "camera", "base"),
              "scanner2": ("realtrain-scanner2", {"eng": 46, "jpn": 47}, "scanner", "base"),
              # WIDE_POOL (--plan wide); its scanned and photographed draws avoid each other's pages
              "wide-scanner": ("realtrain-wide-scanner", {"eng": 50, "jpn": 51}, "scanner", "wide"),
              "wide-camera": ("realtrain-wide-camera", {"eng": 52, "jpn": 53}, "camera", "wide")}
# draws whose pages a set avoids: the first draws for the second ones, the scanned wide draw for
# the photographed one
_AVOID = {"camera2": ("camera", "none", "scanner"), "scanner2": ("camera", "none", "scanner"),
          "wide-camera": ("wide-scanner",)}


def build_train(work: str, pool_root: str, variants: int, workers: int, engines, name: str, langs,
                dpi: int = DPI) -> None:
    from colkern.quality.dataset import build_dataset

    prefix, seeds, capture, pool = TRAIN_SETS[name]
    for lang in langs:
        avoid = [TRAIN_SETS[n][1][lang] for n in _AVOID.get(name, ())]
        sources = train_sources(lang, pool_root, work, seeds[lang], avoid, pool, dpi)
        print(f"{lang}: {len(sources)} real training pages", flush=True)
        out = os.path.join(work, f"{prefix}{_dpi_suffix(dpi)}-{lang}")
        report = build_dataset(out, sources=sources, variants_per_source=variants,
                               engines=tuple(engines), seed=seeds[lang], workers=workers, timeout=60.0,
                               progress=False, capture=capture)
        print(report.summary(), flush=True)


def _features(ds, model):
    """The model's page features of every sample: from benchmarks/quality_models.py's cache (every
    encoder computed once per page, in parallel: `quality_models.py features`) when it has them,
    else computed here (colkern.quality.pipeline.dataset_features)."""
    import numpy as np

    from colkern.quality.pipeline import dataset_features, make_encoder

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import quality_models as qm

    parts = [p["name"] for p in model.encoder_params.get("parts", [])] or [model.encoder_name]
    combo = "+".join(parts)
    cache = qm._load_cache(ds.root)
    if combo in cache and all(s.sample_id in cache[combo] for s in ds):
        return np.stack([cache[combo][s.sample_id] for s in ds]).astype(np.float32)
    return dataset_features(ds, make_encoder(model.encoder_name, model.encoder_params))


def _labelled_set(work: str, capture: str, lang: str, engine: str, dpi: int = DPI):
    """(data set, mask of the samples whose `engine` label neither timed out nor failed) of a real
    evaluation set, or None when the set is not built or has no `engine` labels."""
    from colkern.quality.dataset import load_dataset

    root = _set_dir(work, capture, lang, dpi)
    if not os.path.isdir(root):
        return None
    ds = load_dataset(root)
    if engine not in ds.engines or not len(ds):
        return None
    return ds, _readable(ds, engine)


def _readable(ds, engine: str) -> np.ndarray:
    """bool per sample: its `engine` label neither timed out nor failed."""
    return np.array([not (s.labels[engine].timed_out or s.labels[engine].error) for s in ds])


def _predicted_as_a_user(ds, engine: str, lang: str) -> np.ndarray:
    """Predicted CER of every sample through colkern.quality.predict on its image file, as a user
    calls it: the file's declared DPI is read and the page resampled to the model's."""
    from colkern.quality import predict

    rows = predict([s.image_path for s in ds], engine=engine, lang=lang)
    bad = [r for r in rows if r.cer is None]
    if bad:
        raise RuntimeError(f"no prediction for {bad[0].file}: {bad[0].verdict} {bad[0].error}")
    return np.array([r.cer for r in rows])


def evaluate(work: str, out_dir: str, n_bootstrap: int, capture: str = "none", dpi: int = DPI) -> dict:
    """The shipped models on the real evaluation sets of a capture mode; sets rendered at another
    DPI than the models' are predicted through colkern.quality.predict (resampled as a user's files
    are), the others from the feature cache."""
    from colkern.quality.pipeline import load_model, shipped_models
    from colkern.quality.stats import bootstrap_metrics

    results = {}
    for engine, lang in shipped_models():
        labelled = _labelled_set(work, capture, lang, engine, dpi)
        if labelled is None:
            continue
        ds, keep = labelled
        model = load_model(engine=engine, lang=lang)
        if dpi == DPI:
            pred = model.predict(_features(ds, model)[keep])["cer"]
        else:
            pred = _predicted_as_a_user(ds, engine, lang)[keep]
        y = ds.targets(engine, "cer")[keep]
        m = bootstrap_metrics(y, pred, ds.groups()[keep], n_bootstrap=n_bootstrap)
        files = sorted({os.path.basename(s.source.get("package_file", s.source.get("file", "?"))) for s in ds})
        results[f"{engine}/{lang}"] = {
            "pages": int(keep.sum()), "sources": int(len(set(ds.groups()[keep]))), "pdfs": files,
            "excluded_timeouts": int((~keep).sum()), "dpi": dpi,
            "model": os.path.basename(model.path), "encoder": model.encoder_name,
            "label_cer": {"mean": float(y.mean()), "frac_above_0.1": float((y > 0.1).mean())},
            "metrics": {k: {"value": v.value, "low": v.low, "high": v.high} for k, v in m.items()}}
        print(f"{engine}/{lang}: {int(keep.sum())} pages, " + ", ".join(f"{k} {v}" for k, v in m.items()), flush=True)
    os.makedirs(out_dir, exist_ok=True)
    stem = ("real-pages" if capture == "none" else f"real-pages-{capture}") + _dpi_suffix(dpi)
    with open(os.path.join(out_dir, f"{stem}.json"), "w") as f:
        json.dump(results, f, indent=2)
    rows = ["| engine / lang | pages (sources) | Spearman | Pearson | MAE | AUC (CER > 0.1) |",
            "|---|---:|---:|---:|---:|---:|"]
    for k, r in results.items():
        m = r["metrics"]
        cell = {n: f"{m[n]['value']:.3f} [{m[n]['low']:.3f}, {m[n]['high']:.3f}]" for n in m}
        rows.append(f"| {k} | {r['pages']} ({r['sources']}) | {cell['spearman']} | {cell['pearson']} | "
                    f"{m['mae']['value']:.3f} | {cell['auc']} |")
    with open(os.path.join(out_dir, f"{stem}.md"), "w") as f:
        f.write("# Shipped OCR quality models on degraded real pages (Debian documentation PDFs)"
                + (", captured by a scanner / camera" if capture != "none" else "")
                + ("" if dpi == DPI else f", rendered at {dpi} dpi") + "\n\n"
                + "\n".join(rows) + "\n")
    return results


def check_resampling(work: str, out_dir: str, dpi: int = 300) -> dict:
    """CER Spearman of the shipped Tesseract models on every set rendered at `dpi` (the WIDE_POOL
    training sets, which no shipped model trained on, and the evaluation sets), predicted through
    colkern.quality.predict with each way of bringing a page down to the model's resolution
    (colkern.quality.resolution.DOWNSAMPLE)."""
    import colkern.quality.resolution as resolution
    from colkern.quality.dataset import load_dataset
    from colkern.quality.stats import spearman

    res = f"-{dpi}dpi-"
    names = sorted(n for n in os.listdir(work) if res in n and os.path.isdir(os.path.join(work, n)))
    default, results, pools = resolution.DOWNSAMPLE, {}, {}
    try:
        for mode in ("area", "decimate"):
            resolution.DOWNSAMPLE = mode
            for name in names:
                ds = load_dataset(os.path.join(work, name))
                lang = name.rsplit("-", 1)[1]
                keep = _readable(ds, "tesseract")
                pred = _predicted_as_a_user(ds, "tesseract", lang)[keep]
                y = ds.targets("tesseract", "cer")[keep]
                results.setdefault(name, {"pages": int(keep.sum())})[mode] = float(spearman(y, pred))
                # pooled per language: the training pool's sets, the evaluation's sets
                pool = f"{'training pool' if name.startswith('realtrain') else 'evaluation'} {lang} pooled"
                pools.setdefault((pool, mode), []).append((y, pred))
                print(f"{mode} {name}: {results[name][mode]:.3f}", flush=True)
    finally:
        resolution.DOWNSAMPLE = default
    for (pool, mode), parts in sorted(pools.items()):
        y, pred = (np.concatenate(v) for v in zip(*parts))
        results.setdefault(pool, {"pages": int(len(y))})[mode] = float(spearman(y, pred))
        print(f"{mode} {pool}: {results[pool][mode]:.3f}", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "resampling.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def pooled(work: str, out_dir: str, previous_dir: str, n_bootstrap: int) -> dict:
    """The shipped models against the models in previous_dir (same file names) on every real
    evaluation set of a language pooled (in place, camera, scanner): CER Spearman of each and a
    paired cluster bootstrap of the difference over source pages (95%)."""
    from colkern.quality.model import QualityPredictor
    from colkern.quality.pipeline import load_model, shipped_models
    from colkern.quality.stats import spearman

    rng = np.random.default_rng(0)
    results = {}
    for engine, lang in shipped_models():
        new = load_model(engine=engine, lang=lang)
        old = QualityPredictor.load(os.path.join(previous_dir, os.path.basename(new.path)))
        y, pn, po, groups = [], [], [], []
        for capture in CAPTURE_SETS:
            labelled = _labelled_set(work, capture, lang, engine)
            if labelled is None:
                continue
            ds, keep = labelled
            y.append(ds.targets(engine, "cer")[keep])
            groups += [f"{capture}:{g}" for g in ds.groups()[keep]]
            pn.append(new.predict(_features(ds, new)[keep])["cer"])
            po.append(old.predict(_features(ds, old)[keep])["cer"])
        if not y:
            print(f"{engine}/{lang}: no evaluation set with its labels, skipped", flush=True)
            continue
        y, pn, po, groups = np.concatenate(y), np.concatenate(pn), np.concatenate(po), np.array(groups)
        members = [np.nonzero(groups == g)[0] for g in np.unique(groups)]
        diffs = []
        for _ in range(n_bootstrap):
            sel = np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
            diffs.append(spearman(y[sel], pn[sel]) - spearman(y[sel], po[sel]))
        results[f"{engine}/{lang}"] = {"pages": int(len(y)), "spearman": float(spearman(y, pn)),
                                       "previous_spearman": float(spearman(y, po)),
                                       "difference_95": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]}
        print(f"{engine}/{lang}: {results[f'{engine}/{lang}']}", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "pooled.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("work")
    b.add_argument("--variants", type=int, default=3)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--engines", default="tesseract,rapidocr")
    b.add_argument("--capture", choices=tuple(CAPTURE_SETS), default="none")
    b.add_argument("--dpi", type=int, default=DPI, help="render DPI (another than the models' gets its own sets)")
    b.add_argument("--langs", default="eng,jpn")
    t = sub.add_parser("build-train", help="training sets from TRAIN_POOL (never the evaluation PDFs)")
    t.add_argument("work")
    t.add_argument("--pool-root", required=True)
    t.add_argument("--variants", type=int, default=4)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--engines", default="tesseract,rapidocr")
    t.add_argument("--capture", choices=tuple(TRAIN_SETS), default="camera")
    t.add_argument("--langs", default="eng,jpn")
    t.add_argument("--dpi", type=int, default=DPI, help="render DPI (another than the models' gets its own sets)")
    e = sub.add_parser("evaluate")
    e.add_argument("work")
    e.add_argument("--out", required=True)
    e.add_argument("--bootstrap", type=int, default=1000)
    e.add_argument("--capture", choices=tuple(CAPTURE_SETS), default="none")
    e.add_argument("--dpi", type=int, default=DPI)
    pl = sub.add_parser("pooled", help="the shipped models against earlier ones, every capture of a language pooled")
    pl.add_argument("work")
    pl.add_argument("--out", required=True)
    pl.add_argument("--previous", required=True, help="directory with the earlier model files")
    pl.add_argument("--bootstrap", type=int, default=1000)
    rs = sub.add_parser("check-resampling", help="the shipped models on the sets rendered at --dpi, per DOWNSAMPLE mode")
    rs.add_argument("work")
    rs.add_argument("--out", required=True)
    rs.add_argument("--dpi", type=int, default=300)
    args = ap.parse_args(argv)
    if args.cmd == "check-resampling":
        check_resampling(args.work, args.out, args.dpi)
    elif args.cmd == "pooled":
        pooled(args.work, args.out, args.previous, args.bootstrap)
    elif args.cmd == "build":
        build(args.work, args.variants, args.workers, [s for s in args.engines.split(",") if s], args.capture,
              args.dpi, [s for s in args.langs.split(",") if s])
    elif args.cmd == "build-train":
        build_train(args.work, args.pool_root, args.variants, args.workers, [s for s in args.engines.split(",") if s],
                    args.capture, [s for s in args.langs.split(",") if s], args.dpi)
    else:
        evaluate(args.work, args.out, args.bootstrap, args.capture, args.dpi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
