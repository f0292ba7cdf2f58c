"""OCR engines behind one interface, with hard per-page timeouts, and the OCR quality label.

    engine = get_engine("tesseract", lang="jpn", psm=6)       # or "rapidocr"
    result = engine.recognize(page_image, timeout=10.0)      # OcrResult(text, seconds, timed_out, error)
    label = label_page(engine, page_image, ground_truth, timeout=10.0)
    label.cer, label.wer, label.to_dict()                    # both in [0, 1]; see colkern.quality.text_metrics

A label is only meaningful together with the OCR configuration that produced it (engine, version,
language, page segmentation mode, DPI, ...): the same page can have CER 0.02 under one PSM and 0.4
under another, so every OcrLabel carries engine, version, lang and config.

A page that times out or makes the engine fail counts as a total failure: its text is "" and its
CER / WER are 1 (0 only if the reference is empty too). Noisy pages can keep Tesseract busy for
tens of seconds; a predictor that says "this page is not worth OCRing" should learn that.

Engines:
  TesseractEngine  the `tesseract` binary (5.x) in a subprocess per page, killed on timeout.
                   OMP_THREAD_LIMIT=1 by default: Tesseract's OpenMP threads spin against each
                   other and against parallel workers (0.33 s vs 2.6-3 s per page on 2 busy cores).
  RapidOcrEngine   rapidocr 3.x with the PP-OCR ONNX models bundled in its wheel (offline), run in a
                   persistent worker process so that a timeout can kill it; see its docstring.
"""
from __future__ import annotations

import abc
import functools
import io
import multiprocessing
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Type

import numpy as np
from PIL import Image

from ._images import flatten_alpha, image_dpi
from ._rapidocr_worker import serve_rapidocr
from .text_metrics import METRIC_VERSION, cer, wer

__all__ = ["OcrEngine", "OcrResult", "OcrLabel", "TesseractEngine", "RapidOcrEngine", "get_engine",
           "available_engines", "label_page", "OcrEngineError"]


class OcrEngineError(RuntimeError):
    """An OCR engine that cannot be started (missing binary, language or model)."""


@dataclass(frozen=True)
class OcrResult:
    """The outcome of one recognize() call.

    text: recognised text ("" on timeout or error); seconds: wall time of the call;
    timed_out: the engine was killed after `timeout` seconds; error: a message when the engine
    failed on this page, else None; settings: per-call effective settings that are not fixed by the
    engine's config (Tesseract's DPI when it is taken from the image).
    """

    text: str
    seconds: float
    timed_out: bool = False
    error: Optional[str] = None
    settings: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.error is None


class OcrEngine(abc.ABC):
    """An OCR engine configured for one language.

    Subclasses set `name`, set `_version` and `_lang` when constructed, and implement config and
    recognize(). `config` is a JSON-serialisable dict of every setting that changes the output (it
    is stored with each label). Engines holding resources (worker processes) release them in
    close(); use `with engine: ...`.
    """

    name: ClassVar[str]
    _version: str
    _lang: str

    @property
    def version(self) -> str:
        """Engine version string, e.g. "5.3.0"."""
        return self._version

    @property
    def lang(self) -> str:
        """The language the engine is configured for, Tesseract-style ("eng", "jpn")."""
        return self._lang

    @property
    @abc.abstractmethod
    def config(self) -> Dict[str, Any]:
        """Every setting that changes the output (includes "lang")."""

    @abc.abstractmethod
    def recognize(self, image: Image.Image, *, timeout: float) -> OcrResult:
        """OCR one page image. Never blocks much longer than `timeout` seconds; a timeout or a
        failure on this page is reported in the result, not raised."""

    def close(self) -> None:
        """Release processes / models. The engine may be used again (it restarts lazily)."""

    def __enter__(self) -> "OcrEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r}, config={self.config!r})"


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"recognize: timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _as_page_image(image: Image.Image) -> Image.Image:
    """Grey or RGB version of `image` (transparency composited onto white)."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"recognize: image must be a PIL.Image.Image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise ValueError(f"recognize: image is empty ({image.width}x{image.height})")
    if image.mode in ("L", "RGB"):
        return image
    return flatten_alpha(image).convert("RGB")


# ---------------------------------------------------------------------------------------------
# Tesseract


@functools.lru_cache(maxsize=None)
def _tesseract_info(binary: str):
    """(version, installed languages) of a tesseract binary, cached per path."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        langs = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OcrEngineError(f"TesseractEngine: cannot run {binary!r}: {e}") from e
    m = re.search(r"tesseract\s+v?(\d[\w.\-]*)", out.stdout + out.stderr)
    if out.returncode != 0 or not m:
        raise OcrEngineError(f"TesseractEngine: {binary!r} --version failed: {(out.stdout + out.stderr)[-300:]!r}")
    # --list-langs prints a header line ('List of available languages in "..." (3):') then one per line.
    available = [ln.strip() for ln in langs.stdout.splitlines()[1:] if ln.strip()]
    return m.group(1), tuple(available)


class TesseractEngine(OcrEngine):
    """Tesseract 5 through its command line, one subprocess per page.

    lang: Tesseract language(s), "eng", "jpn" or "jpn+eng" (each must be installed).
    psm: page segmentation mode. Default 6 (one uniform block of text): the generated pages are
      single-column, and the automatic mode 3 splits a receipt's item and price columns into
      separate blocks, which scrambles the reading order and inflates CER for reasons that are
      not image quality. Use 3 for real multi-column documents.
    oem: OCR engine mode (1 = LSTM only, the one the installed traineddata supports).
    dpi: resolution passed as --dpi; None takes it from the image (PIL info["dpi"]) and falls back
      to 300 when the image has none. The value used is returned in OcrResult.settings.
    threads: OMP_THREAD_LIMIT for the subprocess (1 is fastest when several pages run in parallel).
    binary: the tesseract executable.
    """

    name = "tesseract"

    def __init__(self, lang: str = "eng", *, psm: int = 6, oem: int = 1, dpi: Optional[int] = None,
                 threads: int = 1, binary: str = "tesseract"):
        resolved = shutil.which(binary)
        if resolved is None:
            raise OcrEngineError(f"TesseractEngine: binary {binary!r} not found on PATH "
                                 "(install tesseract-ocr, e.g. apt-get install tesseract-ocr)")
        if not isinstance(psm, int) or not 0 <= psm <= 13:
            raise ValueError(f"TesseractEngine: psm must be an int in 0..13, got {psm!r}")
        if not isinstance(oem, int) or not 0 <= oem <= 3:
            raise ValueError(f"TesseractEngine: oem must be an int in 0..3, got {oem!r}")
        if dpi is not None and (not isinstance(dpi, int) or not 30 <= dpi <= 2400):
            raise ValueError(f"TesseractEngine: dpi must be None or an int in 30..2400, got {dpi!r}")
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"TesseractEngine: threads must be a positive int, got {threads!r}")
        version, available = _tesseract_info(resolved)
        if not isinstance(lang, str) or not lang:
            raise ValueError(f"TesseractEngine: lang must be a non-empty string, got {lang!r}")
        missing = [part for part in lang.split("+") if part not in available]
        if missing:
            raise OcrEngineError(f"TesseractEngine: language(s) {missing} not installed for {resolved} "
                                 f"(installed: {list(available)}; e.g. apt-get install tesseract-ocr-{missing[0]})")
        self._binary, self._version = resolved, version
        self._lang, self._psm, self._oem, self._dpi, self._threads = lang, psm, oem, dpi, threads

    @property
    def config(self) -> Dict[str, Any]:
        return {"lang": self._lang, "psm": self._psm, "oem": self._oem, "dpi": self._dpi}

    def recognize(self, image: Image.Image, *, timeout: float) -> OcrResult:
        timeout = _check_timeout(timeout)
        image = _as_page_image(image)
        dpi = self._dpi or image_dpi(image) or 300
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)  # fast: the bytes only cross a pipe
        cmd = [self._binary, "stdin", "stdout", "-l", self._lang, "--psm", str(self._psm),
               "--oem", str(self._oem), "--dpi", str(dpi)]
        env = dict(os.environ, OMP_THREAD_LIMIT=str(self._threads))
        settings = {"dpi": dpi}
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
        except OSError as e:
            return OcrResult("", time.perf_counter() - start, False, f"cannot start tesseract: {e}", settings)
        try:
            out, err = proc.communicate(buf.getvalue(), timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()  # reap the process and close its pipes
            return OcrResult("", time.perf_counter() - start, True, None, settings)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            msg = err.decode("utf-8", "replace").strip()[-500:]
            return OcrResult("", seconds, False, f"tesseract exited with {proc.returncode}: {msg}", settings)
        return OcrResult(out.decode("utf-8", "replace"), seconds, False, None, settings)


# ---------------------------------------------------------------------------------------------
# RapidOCR


@functools.lru_cache(maxsize=None)
def _rapidocr_version() -> str:
    try:
        from rapidocr._version import __version__
    except ImportError as e:
        raise OcrEngineError(f"RapidOcrEngine: rapidocr is not installed ({e}); "
                             "pip install rapidocr onnxruntime") from e
    return str(__version__)


class RapidOcrEngine(OcrEngine):
    """RapidOCR 3.x (PP-OCRv6 small det + rec, PP-OCRv4 mobile cls, ONNX Runtime on CPU).

    The default models ship inside the rapidocr wheel and serve both English and Japanese (one
    multilingual recogniser), so `lang` only selects the metric rules and is recorded with the
    label. Nothing is downloaded: the model paths are the bundled files.

    Timeouts: ONNX Runtime cannot be interrupted from Python, and a thread stuck in it cannot be
    stopped, so the engine runs in a persistent child process (spawn start method: no fork of a
    process that already runs torch / OpenMP threads). recognize() sends the page and waits at
    most `timeout` seconds; on timeout it kills the child and returns timed_out=True, and the next
    call starts a new child. Caveats: starting the child (interpreter, imports, model load) takes
    a few seconds and is NOT counted in `timeout` (it has its own `start_timeout`), so the first
    call and the first call after each timeout are slower; the page crosses a pipe (~1 MB, < 5 ms).

    lang: "eng" or "jpn" (Tesseract-style codes). threads: ONNX Runtime intra-op threads.
    text_score: minimum recognition confidence of a kept text line (rapidocr's Global.text_score).
    start_timeout: seconds allowed for the child to import rapidocr and load the models (600: on a
      loaded 2-core machine that alone took over 120 s).
    """

    name = "rapidocr"
    _LANGS = ("eng", "jpn")

    def __init__(self, lang: str = "eng", *, threads: int = 1, text_score: float = 0.5,
                 start_timeout: float = 600.0):
        if lang not in self._LANGS:
            raise ValueError(f"RapidOcrEngine: lang must be one of {self._LANGS}, got {lang!r}")
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"RapidOcrEngine: threads must be a positive int, got {threads!r}")
        if not 0.0 <= float(text_score) <= 1.0:
            raise ValueError(f"RapidOcrEngine: text_score must be in [0, 1], got {text_score!r}")
        self._version = _rapidocr_version()
        self._lang, self._threads, self._text_score = lang, threads, float(text_score)
        self._start_timeout = _check_timeout(start_timeout)
        self._proc = None
        self._conn = None

    @property
    def config(self) -> Dict[str, Any]:
        return {"lang": self._lang, "det": "PP-OCRv6_det_small", "rec": "PP-OCRv6_rec_small",
                "cls": "PP-OCRv4_cls_mobile", "runtime": "onnxruntime", "threads": self._threads,
                "text_score": self._text_score}

    def _params(self) -> Dict[str, Any]:
        return {"Global.log_level": "error", "Global.text_score": self._text_score,
                "EngineConfig.onnxruntime.intra_op_num_threads": self._threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1}

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve_rapidocr, args=(child, self._params()), daemon=True,
                           name="colkern-rapidocr")
        proc.start()
        child.close()
        if not parent.poll(self._start_timeout):
            _kill(proc)
            raise OcrEngineError(f"RapidOcrEngine: worker did not start within {self._start_timeout} s")
        try:
            kind, payload = parent.recv()
        except EOFError:
            _kill(proc)
            raise OcrEngineError(f"RapidOcrEngine: worker died while starting (exit code {proc.exitcode})")
        if kind != "ready":
            _kill(proc)
            raise OcrEngineError(f"RapidOcrEngine: worker failed to start: {payload}")
        self._proc, self._conn = proc, parent

    def recognize(self, image: Image.Image, *, timeout: float) -> OcrResult:
        timeout = _check_timeout(timeout)
        page = np.asarray(_as_page_image(image).convert("L"), dtype=np.uint8)
        if self._proc is None or not self._proc.is_alive():
            self.close()
            self._start()
        start = time.perf_counter()
        try:
            self._conn.send(page)
            ready = self._conn.poll(timeout)
        except (OSError, BrokenPipeError) as e:
            self.close()
            return OcrResult("", time.perf_counter() - start, False, f"rapidocr worker pipe failed: {e}")
        if not ready:
            self.close()  # kills the busy worker; the next call starts a fresh one
            return OcrResult("", time.perf_counter() - start, True, None)
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError) as e:
            self.close()
            return OcrResult("", time.perf_counter() - start, False, f"rapidocr worker died: {e!r}")
        seconds = time.perf_counter() - start
        if kind != "ok":
            return OcrResult("", seconds, False, str(payload))
        return OcrResult(payload, seconds, False, None)

    def close(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        if proc is not None:
            _kill(proc)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _kill(proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(5)


# ---------------------------------------------------------------------------------------------
# Registry


_ENGINES: Dict[str, Type[OcrEngine]] = {"tesseract": TesseractEngine, "rapidocr": RapidOcrEngine}


def available_engines() -> List[str]:
    """Names accepted by get_engine()."""
    return sorted(_ENGINES)


def get_engine(name: str, **kwargs) -> OcrEngine:
    """Construct a registered engine by name ("tesseract", "rapidocr") with its keyword settings."""
    try:
        cls = _ENGINES[name]
    except (KeyError, TypeError):
        raise ValueError(f"get_engine: unknown engine {name!r}; known: {available_engines()}") from None
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Labels


@dataclass(frozen=True)
class OcrLabel:
    """One OCR engine's quality on one page image.

    cer / wer: bounded error rates in [0, 1] (colkern.quality.text_metrics; 1 on timeout / error);
    engine / version / lang / config: what produced the text (config includes per-call settings
    such as the DPI actually passed); seconds: OCR wall time; timed_out / error: failure status;
    text: the raw OCR output (kept so labels can be re-scored if the metric changes);
    metric_version: colkern.quality.text_metrics.METRIC_VERSION used for cer / wer.
    """

    cer: float
    wer: float
    engine: str
    version: str
    lang: str
    config: Dict[str, Any]
    seconds: float
    timed_out: bool
    error: Optional[str] = None
    text: str = ""
    metric_version: int = METRIC_VERSION

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "OcrLabel":
        if not isinstance(d, Mapping):
            raise ValueError(f"OcrLabel.from_dict: expected a mapping, got {type(d).__name__}")
        required = ("cer", "wer", "engine", "version", "lang", "config", "seconds", "timed_out")
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"OcrLabel.from_dict: missing keys {missing}")
        for k in ("cer", "wer"):
            v = d[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"OcrLabel.from_dict: {k} must be a number in [0, 1], got {v!r}")
        if not isinstance(d["config"], Mapping):
            raise ValueError(f"OcrLabel.from_dict: config must be a mapping, got {d['config']!r}")
        return cls(cer=float(d["cer"]), wer=float(d["wer"]), engine=str(d["engine"]),
                   version=str(d["version"]), lang=str(d["lang"]), config=dict(d["config"]),
                   seconds=float(d["seconds"]), timed_out=bool(d["timed_out"]), error=d.get("error"),
                   text=str(d.get("text", "")), metric_version=int(d.get("metric_version", METRIC_VERSION)))


def label_page(engine: OcrEngine, image: Image.Image, reference: str, *, timeout: float,
               lang: Optional[str] = None) -> OcrLabel:
    """OCR `image` with `engine` and score it against the ground truth `reference`.

    lang: language for the metric rules; defaults to engine.lang. A timeout or an engine error
    scores the empty string (CER = WER = 1 unless the reference is empty).
    """
    if not isinstance(reference, str):
        raise TypeError(f"label_page: reference must be str, got {type(reference).__name__}")
    result = engine.recognize(image, timeout=timeout)
    lang = lang or engine.lang
    text = result.text if result.ok else ""
    return OcrLabel(cer=cer(reference, text, lang=lang), wer=wer(reference, text, lang=lang),
                    engine=engine.name, version=engine.version, lang=lang,
                    config={**engine.config, **result.settings}, seconds=result.seconds,
                    timed_out=result.timed_out, error=result.error, text=text)
