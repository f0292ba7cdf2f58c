"""PDFs and page images -> a sharded colkern.Index with a Ray Data pipeline (resumable).

    report = index_pdfs_ray(["scans/"], "pages.idx", "/models/colpali-v1.3", pool_size=4)
    report.added, report.skipped, report.failures, report.num_pages

The pipeline:
    list input files (PDFs; png / jpg / tif images, one page each; directories recursively)
    -> ray.data.from_items (one row per file, with the pages of it already indexed)
    -> flat_map: render the file's pages in CPU tasks (colkern.distributed.render), skipping the
       pages already in the index, and cut / resize the tiles to the model's input size there
       (resize_in_render); a file or page that fails becomes a failure row
    -> map_batches(actor pool): each actor loads the ColPali encoder once and encodes
       `batch_pages` pages per call (num_gpus=1 per actor when the cluster has GPUs, else a
       fraction of a CPU so the render tasks keep running), optional token pooling
       (colkern.pool_tokens, pool_factor) and OCR-quality prediction (quality=True)
    -> the driver consumes the embeddings (ds.iter_batches) and calls Index.add every
       `pages_per_shard` pages.

Where shards are written, and when the manifest commits: in the driver. Each Index.add writes
one immutable shard file and commits it by replacing the manifest atomically (one writer, under
the index's lock), so the manifest is always consistent and only ever names complete shards.
The first add also trains the codebook (centroids) on its own vectors (see colkern.Index.create;
pass `centroids=` for the size the corpus will grow to). Workers only render and encode; the
driver's work per shard is the binarisation, centroid assignment and file write of
pages_per_shard pages, which keeps up with many encoder actors (see benchmarks/bench_distributed.py).

Resume: page ids are "<absolute path>#page=<n>" (colkern.colpali.indexing.page_id). An
interrupted run loses at most the pages not yet committed (fewer than pages_per_shard plus what
was in flight); a rerun reads the ids already in the index and neither renders nor encodes
those pages again (report.skipped counts them). The settings (model, dpi, tiles, grid, dim,
binary, pool_factor) are stored in the index's attrs and checked when an index is extended.

Where files are read: the render tasks read the inputs and each actor loads the model
directory, so on a multi-node cluster both must be at the same absolute paths on every node (a
shared file system), or pass the encoder object; the index directory is written by the driver
only.

Page metadata: {"file": absolute path, "page": 0-based page}, plus "cer", "wer" and
"verdict" with quality=True (colkern.quality.predict on the rendered page, in the encoder
actor), so `Index.search(..., filter={"file": path})` works.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .._types import PathLike
from ..colpali.indexing import INDEX_KIND, IndexingReport, check_settings, encode_rendered_pages, page_id, parse_page_id
from ..retrieval.manifest import MANIFEST, read_manifest
from ..retrieval.sharded import Index
from ._ray import actor_resources, check_timeout, has_gpus, import_ray, init_ray, iterate_with_stall_timeout
from .render import collect_inputs, render_file

_SETTINGS = ("model", "dpi", "tiles", "binary", "pool_factor")  # known before the first page is encoded


class PageEncoder:
    """The actor of the map_batches stage: loads the ColPali encoder once, then encodes batches
    of rendered pages (one [tiles * n_patches, dim] float32 matrix per page, pooled with
    pool_factor) and passes failure / skip rows through."""

    def __init__(self, encoder, *, tiles: int, dpi: int, pool_factor: Optional[int], quality: bool,
                 threads: int, device: Optional[str]):
        torch.set_num_threads(threads)
        self._tmp = None
        if isinstance(encoder, dict):  # a ColPaliEncoder shipped as its checkpoint files
            from ..colpali.encoder import ColPaliEncoder

            self._tmp = tempfile.TemporaryDirectory(prefix="colkern-encoder-")
            for rel, data in encoder["files"].items():
                path = os.path.join(self._tmp.name, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data)
            encoder = ColPaliEncoder.load(self._tmp.name, device=device, batch_size=encoder["batch_size"])
        elif isinstance(encoder, bytes):  # another encoder object, pickled: unpickling may import
            from ..colpali import apply_torchvision_shim  # transformers, which needs the shim first

            apply_torchvision_shim()
            encoder = pickle.loads(encoder)
        elif isinstance(encoder, (str, os.PathLike)):
            from ..colpali.encoder import ColPaliEncoder

            encoder = ColPaliEncoder.load(encoder, device=device)
        self.encoder, self.tiles, self.dpi = encoder, tiles, dpi
        self.pool_factor, self.quality = pool_factor, quality

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, list]:
        from PIL import Image

        from ..documents.pdf import RenderedPage, Tile, split_tiles

        out: Dict[str, list] = {k: [] for k in ("kind", "file", "page", "error", "emb", "n_tokens", "dim",
                                                "grid_rows", "grid_cols", "quality")}
        pages, images = [], []
        for i in range(len(batch["kind"])):
            kind, file, page = str(batch["kind"][i]), str(batch["file"][i]), int(batch["page"][i])
            if kind != "page":
                self._emit(out, kind, file, page, str(batch["error"][i]))
                continue
            size = (int(batch["width"][i]), int(batch["height"][i]))
            data, n = bytes(batch["pixels"][i]), int(batch["ntiles"][i])
            if n == 0:  # the whole page: split it here
                image = Image.frombytes("RGB", size, data)
                parts = split_tiles(image, self.tiles)
            else:  # tiles resized by the render task
                step, image = size[0] * size[1] * 3, None
                parts = [Tile((0, 0) + size, Image.frombytes("RGB", size, data[j * step:(j + 1) * step]))
                         for j in range(n)]
            pages.append(RenderedPage(file, page, image, parts, float(self.dpi)))
            images.append(image)
        embs, ok = self._encode(pages, out)
        if self.pool_factor and self.pool_factor > 1 and embs:
            from ..retrieval.pooling import pool_tokens

            embs = [e.contiguous() for e in pool_tokens(embs, self.pool_factor)]
        quality = self._quality([images[i] for i in ok]) if self.quality else [{}] * len(ok)
        rows, cols = self.encoder.grid
        for i, e, q in zip(ok, embs, quality):
            self._emit(out, "page", pages[i].file, pages[i].page, "", e.float().numpy().tobytes(), e.shape[0],
                       e.shape[1], rows, cols, json.dumps(q))
        return out

    @staticmethod
    def _emit(out, kind, file, page, error, emb=b"", n_tokens=0, dim=0, rows=0, cols=0, quality="{}"):
        for k, v in zip(out, (kind, file, page, error, emb, n_tokens, dim, rows, cols, quality)):
            out[k].append(v)

    def _encode(self, pages, out):
        """-> (embeddings, indices of the pages they belong to); a batch that fails is retried
        page by page, and the pages that still fail become failure rows."""
        if not pages:
            return [], []
        try:
            return encode_rendered_pages(pages, self.encoder), list(range(len(pages)))
        except Exception:  # noqa: BLE001 - find the failing page(s); the others still get indexed
            embs, ok = [], []
            for i, p in enumerate(pages):
                try:
                    embs.append(encode_rendered_pages([p], self.encoder)[0])
                    ok.append(i)
                except Exception as e:  # noqa: BLE001 - reported per page
                    self._emit(out, "fail", p.file, p.page, f"encoding failed: {e}")
            return embs, ok

    @staticmethod
    def _quality(images) -> List[dict]:
        if not images:
            return []
        from ..quality.api import predict

        rows = predict(images)
        return [{"cer": r.cer, "wer": r.wer, "verdict": r.verdict} for r in rows]


def _model_input(encoder) -> Optional[tuple]:
    """(height, width, PIL resample) of the encoder's input images, or None when unknown."""
    try:
        if isinstance(encoder, (str, os.PathLike)):
            for name, key in (("preprocessor_config.json", None), ("processor_config.json", "image_processor")):
                path = os.path.join(encoder, name)
                if os.path.isfile(path):
                    with open(path) as f:
                        cfg = json.load(f)
                    cfg = cfg.get(key, {}) if key else cfg
                    if "height" in cfg.get("size", {}):
                        return int(cfg["size"]["height"]), int(cfg["size"]["width"]), int(cfg.get("resample", 3))
            return None
        H, W = encoder.image_size
        return int(H), int(W), int(encoder.processor.image_processor.resample)
    except (AttributeError, TypeError, ValueError, KeyError, OSError):
        return None


def _pack_encoder(encoder):
    """What ships an encoder object to the actors. A ColPaliEncoder goes as its checkpoint files
    (save_pretrained, read into memory; each actor writes and loads them): a pickled
    transformers model loses runtime state and its forward then fails. Other encoders (anything
    with encode_images and grid) are pickled."""
    model, processor = getattr(encoder, "model", None), getattr(encoder, "processor", None)
    if hasattr(model, "save_pretrained") and hasattr(processor, "save_pretrained"):
        with tempfile.TemporaryDirectory(prefix="colkern-encoder-") as d:
            model.save_pretrained(d)
            processor.save_pretrained(d)
            files = {}
            for root, _, names in os.walk(d):
                for name in names:
                    with open(os.path.join(root, name), "rb") as f:
                        files[os.path.relpath(os.path.join(root, name), d)] = f.read()
        return {"files": files, "batch_size": getattr(encoder, "batch_size", 4)}
    from ray import cloudpickle

    return cloudpickle.dumps(encoder)


def _check_int(value, name: str, lo: int = 1, none_ok: bool = False) -> Optional[int]:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"index_pdfs_ray: {name} must be an int >= {lo}{' or None' if none_ok else ''}, "
                         f"got {value!r}")
    return value


def index_pdfs_ray(inputs: Union[PathLike, Sequence[PathLike]], index_dir: PathLike, encoder, *,
                   model: Optional[str] = None, batch_pages: int = 8, pool_size: int = 1,
                   pages_per_shard: int = 1024, dpi: int = 144, tiles: int = 1, pool_factor: Optional[int] = None,
                   binary: bool = False, float_dtype: torch.dtype = torch.float16, centroids: Optional[int] = None,
                   address: Optional[str] = None, progress: bool = False, quality: bool = False,
                   stall_timeout_s: Optional[float] = 600.0, actor_cpus: Optional[float] = None,
                   threads_per_actor: int = 1, device: Optional[str] = None,
                   preserve_order: bool = True, resize_in_render: bool = True) -> IndexingReport:
    """Render, encode and index every page of `inputs` into the sharded index directory
    `index_dir` with Ray (see the module docstring); pages already indexed are skipped.

    encoder: a local ColPali model directory (each actor loads it with ColPaliEncoder.load on
      `device`, default CUDA when the actor has a GPU) or a ColPaliEncoder object (shipped to the
      actors as its checkpoint files, loaded there the same way). model: the model path recorded
      in the index (default: `encoder` when a path).
    batch_pages: pages per encoder call; pool_size: encoder actors; pages_per_shard: pages per
      Index.add (one shard and one manifest commit each); dpi, tiles (1 or 4): rendering;
      pool_factor: token pooling (None or 1: none); binary: keep only sign bits (else floats
      of float_dtype); centroids: codebook size (default from the first shard).
    address: None starts a local Ray (shut down at the end) unless Ray is already initialised
      in this process; "auto" / "host:port" / "ray://host:port" joins a cluster (ConnectionError
      naming it when unreachable). progress: Ray Data's progress bars. quality: also predict
      each page's OCR quality (metadata cer / wer / verdict). stall_timeout_s: TimeoutError
      when no batch arrives for that long (None: wait forever). actor_cpus: CPUs per encoder
      actor on a CPU-only cluster (default 0.5); threads_per_actor: torch threads in each.
      preserve_order: pages reach the index in input order (same positions on every run).
      resize_in_render: the render tasks cut the tiles and resize them to the model's input
      size (PIL, the processor's resample filter) before they travel to the actors: an A4 page
      at 144 dpi is 6 MB of pixels, a 448 x 448 tile 0.6 MB (measured here: 200 full renders in
      batches of 32 spilled a 512 MiB object store and took 106 s instead of 27 s). Embeddings
      then differ from those of the full render by about 1e-4 with the test model (the
      processor's resize is not PIL's), below the fp16 storage step. Off with quality=True (it
      reads the whole page).
    -> colkern.colpali.IndexingReport (index_path = index_dir, added, skipped, failures as
       (file, 0-based page or None, message), num_pages = live pages in the index)."""
    op = "index_pdfs_ray"
    batch_pages = _check_int(batch_pages, "batch_pages")
    pool_size = _check_int(pool_size, "pool_size")
    pages_per_shard = _check_int(pages_per_shard, "pages_per_shard")
    threads_per_actor = _check_int(threads_per_actor, "threads_per_actor")
    pool_factor = _check_int(pool_factor, "pool_factor", none_ok=True)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 0 < dpi <= 600:
        raise ValueError(f"{op}: dpi must be in (0, 600], got {dpi!r}")
    if tiles not in (1, 4):
        raise ValueError(f"{op}: tiles must be 1 or 4, got {tiles!r}")
    stall_timeout_s = check_timeout(stall_timeout_s, "stall_timeout_s", op)
    if isinstance(encoder, (str, os.PathLike)):
        from ..colpali.encoder import check_model_dir

        check_model_dir(encoder)  # a missing model fails here, not in every actor
        encoder = os.path.abspath(os.fspath(encoder))  # workers need not share the driver's cwd
        model = model or encoder
    elif not (hasattr(encoder, "encode_images") and hasattr(encoder, "grid")):
        raise TypeError(f"{op}: encoder must be a model directory or a ColPaliEncoder, got {type(encoder).__name__}")
    index_dir = os.path.abspath(os.fspath(index_dir))
    files = collect_inputs(inputs)
    wanted = {"kind": INDEX_KIND, "model": os.path.abspath(model) if model else None, "dpi": int(dpi),
              "tiles": int(tiles), "binary": bool(binary), "pool_factor": pool_factor}
    index = None
    done: Dict[str, List[int]] = {}
    if os.path.exists(os.path.join(index_dir, MANIFEST)):
        attrs = read_manifest(index_dir).attrs
        _check_known(attrs, wanted, index_dir)
        index = Index.open(index_dir)
        for doc_id in index.ids:
            file, page = parse_page_id(doc_id)
            done.setdefault(file, []).append(page)
    elif os.path.exists(index_dir) and (not os.path.isdir(index_dir) or any(
            f != "LOCK" and not f.startswith(".") for f in os.listdir(index_dir))):
        raise FileExistsError(f"{op}: {index_dir!r} exists and is not a colkern.Index directory")
    report = IndexingReport(index_path=index_dir)
    if not files:
        report.num_pages = len(index) if index is not None else 0
        return report

    ray = import_ray()
    started = init_ray(address)
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.execution_options.preserve_order
    try:
        ctx.enable_progress_bars = bool(progress)
        ctx.execution_options.preserve_order = bool(preserve_order)
        items = [{"file": f, "done": json.dumps(sorted(done.get(f, [])))} for f in files]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), 256))
        fit = _model_input(encoder) if resize_in_render and not quality else None
        ds = ds.flat_map(render_file, fn_kwargs={"dpi": dpi, "tiles": tiles, "fit": fit})
        gpu = has_gpus()
        if not isinstance(encoder, (str, os.PathLike)):
            encoder = _pack_encoder(encoder)
        ds = ds.map_batches(PageEncoder, batch_size=batch_pages, compute=ray.data.ActorPoolStrategy(size=pool_size),
                            batch_format="numpy",
                            fn_constructor_kwargs={"encoder": encoder, "tiles": tiles, "dpi": dpi,
                                                   "pool_factor": pool_factor, "quality": quality,
                                                   "threads": threads_per_actor,
                                                   "device": device or ("cuda" if gpu else "cpu")},
                            **actor_resources(actor_cpus))
        writer = _ShardWriter(index_dir, index, wanted, pages_per_shard, float_dtype, centroids, report)
        batches = ds.iter_batches(batch_size=None, batch_format="numpy")
        for batch in iterate_with_stall_timeout(batches, stall_timeout_s, op):
            writer.take(batch)
        writer.flush()
        report.num_pages = len(writer.index) if writer.index is not None else 0
    finally:
        ctx.enable_progress_bars, ctx.execution_options.preserve_order = saved
        if started:
            ray.shutdown()
    return report


def _check_known(attrs: dict, wanted: dict, where: str) -> None:
    if attrs.get("kind") != INDEX_KIND or any(k not in attrs for k in _SETTINGS):
        raise ValueError(f"{where!r} is not a page index made by index_pdfs_ray (attrs kind {attrs.get('kind')!r})")
    diff = [f"{k}: {attrs.get(k)!r} there, {wanted[k]!r} now" for k in _SETTINGS if attrs.get(k) != wanted[k]]
    if diff:
        raise ValueError(f"{where!r} was made with other settings ({'; '.join(diff)}); use the same settings "
                         f"or write a new index")


class _ShardWriter:
    """The driver side: gathers encoded pages and commits them with Index.add every
    pages_per_shard pages; counts skips and failures into the report."""

    def __init__(self, path, index, wanted, pages_per_shard, float_dtype, centroids, report):
        self.path, self.index, self.wanted = path, index, dict(wanted)
        self.per_shard, self.float_dtype, self.centroids, self.report = pages_per_shard, float_dtype, centroids, report
        self.docs: List[torch.Tensor] = []
        self.ids: List[str] = []
        self.meta: List[dict] = []
        self.seen = set()

    def take(self, batch: Dict[str, np.ndarray]) -> None:
        for i in range(len(batch["kind"])):
            kind, file, page = str(batch["kind"][i]), str(batch["file"][i]), int(batch["page"][i])
            if kind == "skip":
                self.report.skipped += page
            elif kind == "fail":
                self.report.failures.append((file, page if page >= 0 else None, str(batch["error"][i])))
            else:
                doc_id = page_id(file, page)
                if doc_id in self.seen:
                    continue
                self.seen.add(doc_id)
                n, d = int(batch["n_tokens"][i]), int(batch["dim"][i])
                emb = torch.from_numpy(np.frombuffer(bytes(batch["emb"][i]), dtype=np.float32).reshape(n, d).copy())
                meta = {"file": file, "page": page}
                meta.update({k: v for k, v in json.loads(str(batch["quality"][i])).items()
                             if v is None or not isinstance(v, float) or math.isfinite(v)})
                if self.index is None or "grid" not in self.wanted:
                    self._settings(d, [int(batch["grid_rows"][i]), int(batch["grid_cols"][i])])
                self.docs.append(emb)
                self.ids.append(doc_id)
                self.meta.append(meta)
                if len(self.docs) >= self.per_shard:
                    self.flush()

    def _settings(self, dim: int, grid: List[int]) -> None:
        self.wanted.update(dim=dim, grid=grid)
        if self.index is None:
            self.index = Index.create(self.path, dim, keep_float=not self.wanted["binary"],
                                      float_dtype=self.float_dtype, centroids=self.centroids, attrs=self.wanted)
        else:
            check_settings(read_manifest(self.path).attrs, self.wanted, f"index {self.path!r}")

    def flush(self) -> None:
        if self.docs:
            self.index.add(self.docs, ids=self.ids, metadata=self.meta)
            self.report.added += len(self.docs)
            self.docs, self.ids, self.meta = [], [], []
