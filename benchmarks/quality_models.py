"""Train, compare and ship the OCR quality predictors (issue 14): per OCR engine and page language,
every patch encoder (glyph, pixel, the PP-OCR detector's feature map, and concatenations) trained on
the same generated pages, cross-validated (grouped by source document), calibrated out of fold,
and scored on held-out generated pages whose sources were never seen in training.

    python benchmarks/quality_models.py features /work/qdata [--plan P]      # encode every page once (resumable)
    python benchmarks/quality_models.py train /work/qdata --plan P --out benchmarks/results/quality-models-P \\
        [--ship python/colkern/quality/models] [--previous DIR]

The data sets and plans (what each run trains on and is scored on, and the models shipped before
it) are in quality_plans.py.

Samples whose OCR call timed out are left out of training and scoring (on a shared, loaded
machine a timeout says more about the machine than the page); their number is reported.

The shipped encoder per (engine, lang) is chosen by grouped 5-fold CV Spearman of CER on the
training pages, never by the held-out figures. With --previous, the model shipped before the run
competes too, scored (and calibrated) on the training pages of sets it never saw, against the new
model's out-of-fold predictions on those same pages. Held-out metrics are reported pooled and per
held-out set. --combos trains only some encoders (the others take most of the time).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from typing import Dict, List

import numpy as np

# quality_plans.py lies beside this script (run as a script, or with benchmarks/ on sys.path)
from quality_plans import DEFAULT_PLAN, PLANS, PREVIOUS

# combination name -> the base encodings it concatenates (first part's content mask)
COMBOS = {
    "glyph": ["glyph"],
    "pixel": ["pixel16"],
    "ppocr": ["ppocr"],
    "glyph+pixel": ["glyph", "pixel32"],
    "glyph+ppocr": ["glyph", "ppocr"],
    "glyph+pixel+ppocr": ["glyph", "pixel32", "ppocr"],
    "glyph+pixel+ppocr+lines": ["glyph", "pixel32", "ppocr", "lines"],
    "glyph+pixel+ppocr+lines+skew": ["glyph", "pixel32", "ppocr", "lines", "skew"],
    "glyph+pixel+ppocr+lines+skew+border": ["glyph", "pixel32", "ppocr", "lines", "skew", "border"],
}
# Combos computed from a cached combo and one more encoder, without encoding the page again with
# every part (the PP-OCR network takes most of the time): combo -> (cached combo, added encoder).
# Pooling is column-wise, so pool(concat(A..., B)) is pool(A...)'s columns with B's inserted after
# each block of them, B pooled over the content mask of A's first part (_splice).
EXTENDED = {"glyph+pixel+ppocr+lines+skew+border": ("glyph+pixel+ppocr+lines+skew", "border")}
ENCODED = [c for c in COMBOS if c not in EXTENDED]
CACHE = "bench-features-v1.npz"


def _base_encoders(names=None):
    """{base encoding: its encoder} for `names` (all when None): only those asked for are built
    (the PP-OCR one opens an ONNX session)."""
    from colkern.quality.encoders.border import BorderPatchEncoder
    from colkern.quality.encoders.glyph import GlyphPatchEncoder
    from colkern.quality.encoders.lines import LinePatchEncoder
    from colkern.quality.encoders.pixel import PixelPatchEncoder
    from colkern.quality.encoders.ppocr import PPOCRPatchEncoder
    from colkern.quality.encoders.skew import SkewPatchEncoder

    makers = {"glyph": lambda: GlyphPatchEncoder(32), "pixel16": lambda: PixelPatchEncoder(16),
              "pixel32": lambda: PixelPatchEncoder(32), "ppocr": lambda: PPOCRPatchEncoder(32),
              "lines": lambda: LinePatchEncoder(32), "skew": lambda: SkewPatchEncoder(32),
              "border": lambda: BorderPatchEncoder(32)}
    unknown = set(names or ()) - set(makers)
    if unknown:
        raise ValueError(f"_base_encoders: unknown encodings {sorted(unknown)}")
    return {n: make() for n, make in makers.items() if names is None or n in names}


def combo_encoder(name: str):
    """The encoder object (for model files) whose page_features equal this script's pooled combo."""
    from colkern.quality.cli import encoder_from_spec

    return encoder_from_spec(name)


_ENC = None


def _worker_image(image_path: str):
    global _ENC
    import torch
    from PIL import Image

    if _ENC is None:
        torch.set_num_threads(1)
        _ENC = _base_encoders()
    with Image.open(image_path) as im:
        im.load()
        return im.copy()


def _encode_one(image_path: str) -> Dict[str, np.ndarray]:
    """Every ENCODED combo's pooled page vector of one page."""
    from colkern.quality.encoders.combined import concat_patch_features
    from colkern.quality.encoders.pooling import pool_features

    image = _worker_image(image_path)
    base = {k: _ENC[k].encode(image) for k in dict.fromkeys(p for c in ENCODED for p in COMBOS[c])}
    out = {}
    for combo in ENCODED:
        parts = COMBOS[combo]
        pf = base[parts[0]] if len(parts) == 1 else concat_patch_features([base[p] for p in parts])
        out[combo] = pool_features([pf]).numpy()[0]
    return out


def _extend_one(task) -> np.ndarray:
    """(image path, EXTENDED combo) -> the pooled vector of [the cached combo's first part, the
    added encoder] for _splice."""
    from colkern.quality.encoders.combined import concat_patch_features
    from colkern.quality.encoders.pooling import pool_features

    image_path, combo = task
    cached, added = EXTENDED[combo]
    image = _worker_image(image_path)
    pf = concat_patch_features([_ENC[COMBOS[cached][0]].encode(image), _ENC[added].encode(image)])
    return pool_features([pf]).numpy()[0]


def _splice(cached: np.ndarray, pair: np.ndarray, d_first: int, d_added: int) -> np.ndarray:
    """The pooled vector of the cached combo with the added encoder's columns inserted after each
    of its six blocks ([mean | max | std] over all and over content patches), then the two global
    columns; `pair` is _extend_one's vector (first part and added encoder, d_first and d_added
    features)."""
    d_cached = (len(cached) - 2) // 6
    if len(cached) != 6 * d_cached + 2 or len(pair) != 6 * (d_first + d_added) + 2:
        raise ValueError(f"_splice: vector lengths {len(cached)}, {len(pair)} do not fit D {d_cached}, "
                         f"{d_first} + {d_added}")
    if not np.array_equal(cached[-2:], pair[-2:], equal_nan=True):
        raise ValueError("_splice: the two vectors were pooled over different content masks")
    w = d_first + d_added
    blocks = [np.concatenate([cached[b * d_cached:(b + 1) * d_cached], pair[b * w + d_first:(b + 1) * w]])
              for b in range(6)]
    return np.concatenate(blocks + [cached[-2:]])


def _load_cache(root: str) -> Dict[str, Dict[str, np.ndarray]]:
    path = os.path.join(root, CACHE)
    if not os.path.exists(path):
        return {}
    with np.load(path) as z:
        ids = z["ids"].tolist()
        out = {c: dict(zip(ids, z[c])) for c in ENCODED if c in z}
        out.update({c: dict(zip(z[f"{c}::ids"].tolist(), z[c])) for c in EXTENDED if c in z})
        return out


def _save_cache(root: str, cache: Dict[str, Dict[str, np.ndarray]]) -> None:
    import io

    from colkern._atomic import atomic_write_bytes

    ids = sorted(set.intersection(*(set(cache[c]) for c in ENCODED)))  # samples with every encoded combo
    arrays = {c: np.stack([cache[c][i] for i in ids]) for c in ENCODED}
    for c in EXTENDED:                       # added later, under their own ids
        ext_ids = sorted(cache.get(c, {}))
        if ext_ids:
            arrays[c] = np.stack([cache[c][i] for i in ext_ids])
            arrays[f"{c}::ids"] = np.array(ext_ids)
    buf = io.BytesIO()
    np.savez(buf, ids=np.array(ids), **arrays)
    atomic_write_bytes(os.path.join(root, CACHE), buf.getvalue())


def features(data_root: str, workers: int = 2, names=None, plan: str = DEFAULT_PLAN) -> None:
    """Encode every sample of every data set (only those missing from the cache)."""
    from colkern.quality.dataset import load_dataset

    configs = PLANS[plan].values()
    names = names or sorted({n.partition("%")[0] for c in configs for k in ("train", "heldout") for n in c[k]})
    for name in names:
        root = os.path.join(data_root, name)
        if not os.path.isdir(root):
            print(f"{name}: missing, skipped", flush=True)
            continue
        ds = load_dataset(root)
        loaded = _load_cache(root)
        cache = {c: loaded.get(c, {}) for c in COMBOS}
        todo = [s for s in ds if any(s.sample_id not in cache[c] for c in ENCODED)]
        print(f"{name}: {len(ds)} samples, {len(todo)} to encode", flush=True)
        ctx = multiprocessing.get_context("spawn")
        if todo:
            t0 = time.perf_counter()
            with ctx.Pool(workers) as pool:
                for k, (s, feats) in enumerate(zip(todo, pool.imap(_encode_one, [s.image_path for s in todo],
                                                                    chunksize=4))):
                    for c, v in feats.items():
                        cache[c][s.sample_id] = v
                    if (k + 1) % 100 == 0:
                        _save_cache(root, cache)
            _save_cache(root, cache)
            print(f"{name}: encoded {len(todo)} pages in {time.perf_counter() - t0:.0f} s", flush=True)
        _extend(root, ds, cache, ctx, workers)


def _extend(root: str, ds, cache, ctx, workers: int) -> None:
    """The EXTENDED combos of the samples that have their cached combo and lack them."""
    for combo, (cached, added) in EXTENDED.items():
        todo = [s for s in ds if s.sample_id in cache[cached] and s.sample_id not in cache[combo]]
        if not todo:
            continue
        encoders = _base_encoders({COMBOS[cached][0], added})
        dims = len(encoders[COMBOS[cached][0]].feature_names()), len(encoders[added].feature_names())
        t0 = time.perf_counter()
        with ctx.Pool(workers) as pool:
            tasks = [(s.image_path, combo) for s in todo]
            for s, pair in zip(todo, pool.imap(_extend_one, tasks, chunksize=4)):
                cache[combo][s.sample_id] = _splice(cache[cached][s.sample_id], pair, *dims)
        _save_cache(root, cache)
        print(f"{os.path.basename(root)}: {combo} added to {len(todo)} pages in {time.perf_counter() - t0:.0f} s",
              flush=True)


def _stack(data_root: str, names: List[str], engine: str, combos=None):
    """X per combo, labels, groups (source ids) and sample ids of the data sets, without samples
    whose `engine` label timed out or errored; -> (X dict, y dict, groups, n_excluded, sizes, the
    data set each sample came from)."""
    from colkern.quality.dataset import load_dataset

    combos = list(combos or COMBOS)
    X = {c: [] for c in combos}
    y = {"cer": [], "wer": []}
    groups, origin, excluded, sizes = [], [], 0, {}
    for name in names:
        name, _, parity = name.partition("%")
        ds = load_dataset(os.path.join(data_root, name))
        cache = _load_cache(ds.root)
        n = 0
        for s in ds:
            if parity and s.source_index % 2 != (parity == "odd"):
                continue
            lab = s.labels.get(engine)
            if lab is None:
                continue
            if lab.timed_out or lab.error:
                excluded += 1
                continue
            if any(s.sample_id not in cache.get(c, {}) for c in combos):
                continue  # not encoded yet
            for c in combos:
                X[c].append(cache[c][s.sample_id])
            y["cer"].append(lab.cer)
            y["wer"].append(lab.wer)
            groups.append(s.source_id)
            origin.append(name)
            n += 1
        sizes[name + (f"%{parity}" if parity else "")] = {"pages": n}
    return ({c: np.stack(v).astype(np.float32) for c, v in X.items()}, {k: np.array(v) for k, v in y.items()},
            np.array(groups), excluded, sizes, np.array(origin))


def _ci(m) -> dict:
    return {"value": m.value, "low": m.low, "high": m.high}


def _combo_of(model) -> str:
    """The combo whose pooled columns are the features of `model` (a shipped predictor)."""
    for combo in COMBOS:
        enc = combo_encoder(combo)
        if enc.name == model.encoder_name and enc.params() == model.encoder_params:
            return combo
    raise ValueError(f"no combo matches the encoder of {model.path}: {model.encoder_name} {model.encoder_params}")


def _heldout_metrics(y, pred, groups, n_bootstrap: int) -> dict:
    from colkern.quality.stats import bootstrap_metrics, group_codes

    return {k: _ci(v) for k, v in bootstrap_metrics(y, pred, group_codes(groups, len(groups)),
                                                    n_bootstrap=n_bootstrap).items()}


def _by_set(y, pred, groups, origin, n_bootstrap: int = 200) -> dict:
    """CER metrics per held-out data set (a pooled figure can hide a set the model fails on)."""
    return {name: _heldout_metrics(y[origin == name], pred[origin == name], groups[origin == name], n_bootstrap)
            for name in dict.fromkeys(origin.tolist())}


def train(data_root: str, out_dir: str, ship_dir: str = None, n_bootstrap: int = 1000, configs=None,
          prev_dir: str = None, plan: str = DEFAULT_PLAN, combos=None) -> dict:
    from colkern.quality.model import QualityPredictor, fit_isotonic
    from colkern.quality.stats import bootstrap_metrics, group_codes, spearman

    previous = PREVIOUS.get(plan, {})
    combos = list(combos or COMBOS)
    unknown = [c for c in combos if c not in COMBOS]
    if unknown:
        raise ValueError(f"--combos: unknown {unknown}; known: {list(COMBOS)}")
    for (engine, lang), cfg in PLANS[plan].items():
        key = f"{engine}/{lang}"
        if configs and key not in configs:
            continue
        try:
            old = old_combo = None
            if (engine, lang) in previous and prev_dir:
                old = QualityPredictor.load(os.path.join(prev_dir, previous[(engine, lang)][0]))
                old_combo = _combo_of(old)
            needed = combos + ([old_combo] if old_combo and old_combo not in combos else [])
            Xtr, ytr, gtr, ex_tr, sizes_tr, origin_tr = _stack(data_root, cfg["train"], engine, needed)
            Xte, yte, gte, ex_te, sizes_te, origin_te = _stack(data_root, cfg["heldout"], engine, needed)
        except FileNotFoundError as e:
            print(f"{key}: {e}; skipped", flush=True)
            continue
        assert not set(gtr) & set(gte), "held-out sources overlap the training sources"
        codes_te = group_codes(gte, len(gte))
        entry = {"train": {"sets": sizes_tr, "pages": int(len(gtr)), "sources": int(len(set(gtr))),
                           "excluded_timeouts": ex_tr,
                           "label_cer_mean": float(ytr["cer"].mean()),
                           "label_frac_above_0.1": float((ytr["cer"] > 0.1).mean())},
                 "heldout": {"sets": sizes_te, "pages": int(len(gte)), "sources": int(len(set(gte))),
                             "excluded_timeouts": ex_te, "label_cer_mean": float(yte["cer"].mean()),
                             "label_frac_above_0.1": float((yte["cer"] > 0.1).mean())},
                 "encoders": {}}
        print(f"== {key}: train {len(gtr)} pages / {len(set(gtr))} sources, held-out {len(gte)} / "
              f"{len(set(gte))}", flush=True)
        models, oof = {}, {}
        real = np.char.startswith(origin_tr.astype(str), "real/")  # the real documentation pages
        for combo in combos:
            enc = combo_encoder(combo)
            model = QualityPredictor.for_encoder(enc, engine, engine_config={"lang": lang})
            t0 = time.perf_counter()
            cv = model.calibrate(Xtr[combo], ytr, gtr, n_splits=5, seed=0, n_bootstrap=200)
            model.fit(Xtr[combo], ytr, groups=gtr)
            pred = model.predict(Xte[combo])
            raw = model.predict(Xte[combo], raw=True)
            held = {t: _heldout_metrics(yte[t], pred[t], gte, n_bootstrap) for t in ("cer", "wer")}
            held["cer_raw_spearman"] = float(bootstrap_metrics(yte["cer"], raw["cer"], codes_te, n_bootstrap=1)["spearman"].value)
            # out of fold on the real documentation pages among the training pages, if any
            cv_real = float(spearman(ytr["cer"][real], cv.targets["cer"].oof[real])) if real.sum() > 2 else None
            entry["encoders"][combo] = {
                "n_features": int(Xtr[combo].shape[1]),
                "cv": {t: {k: _ci(v) for k, v in r.metrics.items()} for t, r in cv.targets.items()},
                "cv_real_pages_spearman": cv_real,
                "heldout": held, "heldout_by_set": _by_set(yte["cer"], pred["cer"], gte, origin_te),
                "seconds": round(time.perf_counter() - t0, 1)}
            models[combo], oof[combo] = model, cv.targets["cer"].oof
            print(f"  {combo:<18} CV spearman {cv.targets['cer'].metrics['spearman'].value:.3f}"
                  + (f" (real pages {cv_real:.3f})" if cv_real is not None else "") + "  held-out "
                  f"spearman {held['cer']['spearman']['value']:.3f} pearson {held['cer']['pearson']['value']:.3f} "
                  f"auc {held['cer']['auc']['value']:.3f}", flush=True)
        best = max(combos, key=lambda c: entry["encoders"][c]["cv"]["cer"]["spearman"]["value"])
        chosen, chosen_model, calibration_pages = best, models[best], int(len(gtr))
        if old is not None:
            seen = previous[(engine, lang)][1]
            combo = old_combo
            label = f"{combo} (previous model, {old.training.get('n_samples')} pages)"
            unseen = ~np.isin(origin_tr, seen)  # its score and calibration only on pages it never saw
            Xo, yo, go = Xtr[combo][unseen], {t: v[unseen] for t, v in ytr.items()}, gtr[unseen]
            raw_tr = old.predict(Xo, raw=True)
            old.calibration = {t: fit_isotonic(raw_tr[t], yo[t]) for t in old.targets}
            codes_tr = group_codes(go, len(go))
            in_sample = {t: {k: _ci(v) for k, v in bootstrap_metrics(yo[t], raw_tr[t], codes_tr,
                                                                      n_bootstrap=200).items()}
                         for t in ("cer", "wer")}
            pred = old.predict(Xte[combo])
            held = {t: _heldout_metrics(yte[t], pred[t], gte, n_bootstrap) for t in ("cer", "wer")}
            # The new model on the same pages: its out-of-fold predictions there.
            new_same = float(spearman(yo["cer"], oof[best][unseen]))
            entry["encoders"][label] = {
                "n_features": int(Xo.shape[1]), "cv": in_sample, "heldout": held,
                "heldout_by_set": _by_set(yte["cer"], pred["cer"], gte, origin_te),
                "new_model_oof_spearman_same_pages": new_same,
                "note": "the model shipped before this run; 'cv' is its out-of-sample score on the training "
                        f"pages of sets it never saw ({int(unseen.sum())} pages), where its calibration is fitted"}
            print(f"  previous model       new-train spearman {in_sample['cer']['spearman']['value']:.3f} "
                  f"(new {best} out of fold there: {new_same:.3f})  "
                  f"held-out spearman {held['cer']['spearman']['value']:.3f}", flush=True)
            if in_sample["cer"]["spearman"]["value"] > new_same:
                chosen, chosen_model, calibration_pages = label, old, int(unseen.sum())
        entry["shipped"] = chosen
        _write_report(out_dir, {key: entry})
        if ship_dir:
            m = chosen_model
            m.training.setdefault("dataset", {})
            m.training["issue14"] = {"train_sets": cfg["train"] if chosen in COMBOS else "older generated pages",
                                     "calibration_pages": calibration_pages, "selected_by": "grouped 5-fold CV Spearman (CER)"}
            if chosen in COMBOS:
                m.training["dataset"] = {"path": "+".join(cfg["train"]), "samples": int(len(gtr)),
                                         "sources": int(len(set(gtr))), "seed": None}
                m.engine_config.update({"name": engine, "lang": lang, "dpi": 150,
                                        "options": {"psm": 4} if engine == "tesseract" else {},
                                        "vertical": ({"lang": "jpn_vert", "psm": 5}
                                                     if (engine, lang) == ("tesseract", "jpn") else None)})
            else:
                m.engine_config["lang"] = lang
            path = os.path.join(ship_dir, f"{engine}-{lang}.colq")
            m.save(path)
            print(f"  shipped {chosen} -> {path}", flush=True)
    return _write_report(out_dir, {})


def _write_report(out_dir: str, entries: dict) -> dict:
    """Merges `entries` into out_dir/report.json (other engines' entries stay) and rewrites
    report.md; called after every (engine, lang), so a long run that is stopped keeps what it did."""
    from colkern._atomic import atomic_write_bytes

    os.makedirs(out_dir, exist_ok=True)
    report = {}
    jpath = os.path.join(out_dir, "report.json")
    if os.path.exists(jpath):
        with open(jpath) as f:
            report = json.load(f)
    report.update(entries)
    atomic_write_bytes(jpath, json.dumps(report, indent=2).encode())
    atomic_write_bytes(os.path.join(out_dir, "report.md"), markdown(report).encode())
    return report


def markdown(report: dict) -> str:
    out = ["# OCR quality predictors: encoders compared per engine and language",
           "",
           "Held-out: generated pages whose source documents were never seen in training; 95% cluster-"
           "bootstrap intervals over source documents. CV: grouped 5-fold on the training pages (raw "
           "out-of-fold predictions). Held-out predictions are calibrated (isotonic, fitted out of fold).",
           ""]
    for key, e in report.items():
        tr, te = e["train"], e["heldout"]
        out += [f"## {key}", "",
                f"Training: {tr['pages']} pages of {tr['sources']} sources ({', '.join(tr['sets'])}; "
                f"{tr['label_frac_above_0.1']:.0%} with CER > 0.1; {tr['excluded_timeouts']} timed-out pages left out). "
                f"Held-out: {te['pages']} pages of {te['sources']} sources ({', '.join(te['sets'])}; "
                f"{te['label_frac_above_0.1']:.0%} with CER > 0.1; {te['excluded_timeouts']} left out). "
                f"Shipped: **{e['shipped']}**.", "",
                "| encoder | features | CV Spearman | CV Spearman, real pages | held-out Spearman | held-out Pearson "
                "| MAE | AUC (CER > 0.1) | WER Spearman |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in e["encoders"].items():
            h = r["heldout"]["cer"]

            def c(m):
                return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"
            cv_real = r.get("cv_real_pages_spearman")
            out.append(f"| {name} | {r['n_features']} | {r['cv']['cer']['spearman']['value']:.3f} | "
                       f"{'-' if cv_real is None else f'{cv_real:.3f}'} | {c(h['spearman'])} | "
                       f"{c(h['pearson'])} | {h['mae']['value']:.3f} | {c(h['auc'])} | "
                       f"{r['heldout']['wer']['spearman']['value']:.3f} |")
        out.append("")
        per_set = {name: r["heldout_by_set"] for name, r in e["encoders"].items() if "heldout_by_set" in r}
        if per_set:
            sets = list(next(iter(per_set.values())))
            out += ["Held-out CER Spearman per set:", "",
                    "| encoder | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
            for name, by in per_set.items():
                out.append(f"| {name} | " + " | ".join(
                    f"{by[k]['spearman']['value']:.3f} [{by[k]['spearman']['low']:.3f}, {by[k]['spearman']['high']:.3f}]"
                    for k in sets) + " |")
            out.append("")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features")
    f.add_argument("data_root")
    f.add_argument("--workers", type=int, default=2)
    f.add_argument("--sets", default=None)
    t = sub.add_parser("train")
    t.add_argument("data_root")
    t.add_argument("--out", required=True)
    t.add_argument("--ship", default=None)
    t.add_argument("--configs", default=None, help="e.g. tesseract/jpn,rapidocr/eng")
    for sp in (f, t):
        sp.add_argument("--plan", default=DEFAULT_PLAN, choices=sorted(PLANS))
    t.add_argument("--bootstrap", type=int, default=1000)
    t.add_argument("--previous", default=None, help="directory with copies of the models shipped before")
    t.add_argument("--combos", default=None, help=f"encoders to train, comma-separated (default all: {','.join(COMBOS)})")
    args = ap.parse_args(argv)
    if args.cmd == "features":
        features(args.data_root, args.workers, args.sets.split(",") if args.sets else None, args.plan)
    else:
        train(args.data_root, args.out, args.ship, args.bootstrap, args.configs.split(",") if args.configs else None,
              args.previous, args.plan, args.combos.split(",") if args.combos else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
