"""The OCR quality data set on disk: its format, the writers a build uses, and loading it.

    ds = load_dataset("data/ocrq")
    ds[0].image_path, ds[0].labels["tesseract"].cer, ds[0].source_id
    y, groups = ds.targets("tesseract"), ds.groups()     # for GROUPED k-fold (one source = one group)

On disk (format version 1)
--------------------------
    <dir>/dataset.json            format, version, build settings, engine versions and configs
    <dir>/images/<sample>.png     the degraded page exactly as the engines saw it (grey, dpi set)
    <dir>/records/<sample>.json   one record per sample: ids, lang, ground truth, degradation,
                                  labels per engine (OcrLabel.to_dict()), source provenance
Sample ids are "<source index:06d>-v<variant:02d>". Every file is written to a temporary file in
its directory, fsynced and os.replace()d; the record is written last, so a sample exists if and
only if its record does. Records that cannot be read (a damaged file) are skipped with a warning
by load_dataset (and recomputed by the next build).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, PngImagePlugin

from ..._atomic import atomic_write
from ..._types import PathLike
from ..ocr import OcrLabel

FORMAT = "colkern.quality.ocr-dataset"
FORMAT_VERSION = 1
META_FILE = "dataset.json"
IMAGES_DIR = "images"
RECORDS_DIR = "records"


class DatasetError(ValueError):
    """A data set directory that cannot be built into or loaded (foreign, corrupt, other settings)."""


# -- writing (the build's side) ----------------------------------------------------------------


def sample_id(index: int, variant: int) -> str:
    return f"{index:06d}-v{variant:02d}"


def make_dirs(root: str) -> None:
    """Create `root` with its images/ and records/ directories (those present are kept)."""
    os.makedirs(os.path.join(root, IMAGES_DIR), exist_ok=True)
    os.makedirs(os.path.join(root, RECORDS_DIR), exist_ok=True)


def write_meta(root: str, meta: Dict[str, Any]) -> None:
    _write_json(os.path.join(root, META_FILE), meta)


def write_image(root: str, sid: str, image: Image.Image, dpi: Optional[int]) -> str:
    """Store a sample's page as PNG (dpi recorded when known). -> its path relative to root,
    which the record names; write the record (write_record) after the image."""
    rel = f"{IMAGES_DIR}/{sid}.png"
    _write_png(os.path.join(root, rel), image, dpi)
    return rel


def write_record(root: str, record: Dict[str, Any]) -> None:
    """Store a sample's record: from now on the sample exists."""
    _write_json(os.path.join(root, RECORDS_DIR, f"{record['sample_id']}.json"), record)


def remove_stale_temps(root: str) -> None:
    """Delete the temporary files of interrupted writes in root, images/ and records/."""
    for d in (root, os.path.join(root, IMAGES_DIR), os.path.join(root, RECORDS_DIR)):
        _remove_stale_temps(d)


def _write_json(path: str, obj: Any) -> None:
    data = json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=False).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def _write_png(path: str, image: Image.Image, dpi: Optional[int]) -> None:
    def write(f):
        kwargs = {"dpi": (dpi, dpi)} if dpi else {}
        image.save(f, format="PNG", compress_level=6, pnginfo=PngImagePlugin.PngInfo(), **kwargs)
    atomic_write(path, write)


def _remove_stale_temps(directory: str) -> None:
    # Temp files of an interrupted write: never referenced by a record, safe to delete.
    for name in os.listdir(directory):
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


# -- reading -----------------------------------------------------------------------------------


def read_meta(root: str) -> Optional[Dict[str, Any]]:
    """dataset.json of `root`, or None when there is none; DatasetError when it is unreadable,
    foreign or of another format version."""
    path = os.path.join(root, META_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot read the data set description: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise DatasetError(f"{path}: not a colkern OCR quality data set (format {found!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{path}: format version {meta.get('format_version')!r}, "
                           f"this colkern reads {FORMAT_VERSION}")
    return meta


@dataclass(frozen=True)
class Sample:
    """One stored sample. image_path: absolute path of the degraded PNG (grey); text: ground truth;
    labels: engine name -> OcrLabel; degradation: {"recipe", "severity", "target_cer", "seed",
    "steps"}; source: provenance of the source page (layout, font, ... or file)."""

    sample_id: str
    source_id: str
    source_index: int
    variant: int
    lang: str
    image_path: str
    dpi: Optional[int]
    text: str
    labels: Dict[str, OcrLabel]
    degradation: Dict[str, Any]
    source: Dict[str, Any]

    def load_image(self) -> Image.Image:
        """The degraded page as a PIL image (mode "L", info["dpi"] set when known)."""
        try:
            with Image.open(self.image_path) as im:
                im.load()
                return im.copy()
        except (OSError, ValueError) as e:
            raise DatasetError(f"sample {self.sample_id}: cannot read image {self.image_path}: {e}") from e


class Dataset(Sequence[Sample]):
    """Samples of a data set directory, sorted by sample id. `meta` is dataset.json; `skipped`
    lists (record path, reason) of records that could not be read."""

    def __init__(self, root: str, meta: Dict[str, Any], samples: List[Sample], skipped: List[Tuple[str, str]]):
        self.root, self.meta, self.samples, self.skipped = root, meta, samples, skipped

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return (f"Dataset({self.root!r}, {len(self)} samples, {len(set(self.source_ids))} sources, "
                f"engines {self.engines})")

    @property
    def engines(self) -> List[str]:
        return list(self.meta["build"]["engines"])

    def engine_info(self, engine: Optional[str] = None) -> Dict[str, Any]:
        """How `engine`'s labels (default: the primary engine's) were made: {"name", "options",
        "per_lang": {lang: {"version", "config"}}, "timeout", "metric_version"}."""
        engine = engine or self.meta.get("primary_engine") or self.engines[0]
        build = self.meta["build"]
        if engine not in build["engines"]:
            raise KeyError(f"Dataset.engine_info: no engine {engine!r}; engines here: {self.engines}")
        return {"name": engine, **build["engines"][engine], "timeout": build.get("timeout"),
                "metric_version": build.get("metric_version")}

    @property
    def source_ids(self) -> List[str]:
        return [s.source_id for s in self.samples]

    def targets(self, engine: Optional[str] = None, metric: str = "cer") -> np.ndarray:
        """float64 [N]: `metric` ("cer" or "wer") of `engine` (default: the primary engine) per sample."""
        engine = engine or self.meta.get("primary_engine") or self.engines[0]
        if metric not in ("cer", "wer"):
            raise ValueError(f"Dataset.targets: metric must be 'cer' or 'wer', got {metric!r}")
        missing = [s.sample_id for s in self.samples if engine not in s.labels]
        if missing:
            raise KeyError(f"Dataset.targets: no {engine!r} label for {len(missing)} samples (e.g. {missing[0]}); "
                           f"engines here: {self.engines}")
        return np.array([getattr(s.labels[engine], metric) for s in self.samples], dtype=np.float64)

    def groups(self) -> np.ndarray:
        """int64 [N]: one integer per source_id (first-seen order), for grouped k-fold splits."""
        ids: Dict[str, int] = {}
        return np.array([ids.setdefault(s.source_id, len(ids)) for s in self.samples], dtype=np.int64)

    def image_paths(self) -> List[str]:
        return [s.image_path for s in self.samples]


def _parse_record(rec: Any, root: str) -> Sample:
    if not isinstance(rec, dict):
        raise ValueError("record is not a JSON object")
    for key in ("sample_id", "source_id", "source_index", "variant", "lang", "image", "text", "labels", "degradation"):
        if key not in rec:
            raise ValueError(f"missing key {key!r}")
    if not isinstance(rec["labels"], dict) or not rec["labels"]:
        raise ValueError("no labels")
    image_path = os.path.join(root, rec["image"])
    if not os.path.isfile(image_path):
        raise ValueError(f"image {rec['image']} is missing")
    return Sample(sample_id=str(rec["sample_id"]), source_id=str(rec["source_id"]),
                  source_index=int(rec["source_index"]), variant=int(rec["variant"]), lang=str(rec["lang"]),
                  image_path=image_path, dpi=rec.get("dpi"),
                  text=str(rec["text"]), labels={k: OcrLabel.from_dict(v) for k, v in rec["labels"].items()},
                  degradation=dict(rec["degradation"]), source=dict(rec.get("source") or {}))


def iter_records(root: str, *, strict: bool, quiet: bool = False,
                 skipped: Optional[list] = None) -> Iterator[Tuple[Dict[str, Any], Sample]]:
    """(raw record, parsed Sample) of every readable record, in file name order."""
    rdir = os.path.join(root, RECORDS_DIR)
    for name in sorted(os.listdir(rdir)):
        if name.startswith(".") or not name.endswith(".json"):
            continue  # temp files of interrupted writes
        path = os.path.join(rdir, name)
        try:
            with open(path, "rb") as f:
                rec = json.loads(f.read().decode("utf-8"))
            sample = _parse_record(rec, root)
            if sample.sample_id + ".json" != name:
                raise ValueError(f"sample_id {sample.sample_id!r} does not match the file name")
        except (OSError, ValueError, KeyError, TypeError) as e:
            if strict:
                raise DatasetError(f"{path}: unreadable sample record: {e}") from e
            if skipped is not None:
                skipped.append((path, str(e)))
            if not quiet:
                warnings.warn(f"load_dataset: skipping unreadable record {path}: {e}", RuntimeWarning)
            continue
        yield rec, sample


def load_dataset(path: PathLike, *, strict: bool = False) -> Dataset:
    """Load the data set in directory `path` (see the module docstring for the layout).

    Raises FileNotFoundError when `path` does not exist, DatasetError (a ValueError) when it is not
    a data set (no or foreign dataset.json, another format version, no records directory).
    Damaged sample records are skipped with a RuntimeWarning and listed in Dataset.skipped;
    strict=True raises DatasetError instead. -> Dataset, samples sorted by sample id.
    """
    root = os.path.abspath(os.fspath(path))
    if not os.path.exists(root):
        raise FileNotFoundError(f"load_dataset: no such directory {root!r}")
    if not os.path.isdir(root):
        raise DatasetError(f"load_dataset: {root!r} is not a directory")
    meta = read_meta(root)
    if meta is None:
        raise DatasetError(f"load_dataset: {root!r} is not an OCR quality data set (no {META_FILE})")
    if not os.path.isdir(os.path.join(root, RECORDS_DIR)):
        raise DatasetError(f"load_dataset: {root!r} has no {RECORDS_DIR}/ directory")
    skipped: List[Tuple[str, str]] = []
    samples = [sample for _, sample in iter_records(root, strict=strict, skipped=skipped)]
    return Dataset(root, meta, samples, skipped)
