"""The child-process side of RapidOcrEngine (colkern.quality.ocr): build RapidOCR once, then read
pages from a pipe and send back their text, until told to stop or the pipe closes.

Protocol: the child sends ("ready", None) once the models are loaded, or ("error", message) and
exits. Then for each gray uint8 [H, W] page it receives it answers ("ok", text, lines joined by
"\\n") or ("error", message); None (or a closed pipe) ends it.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np


def serve_rapidocr(conn, params: Dict[str, Any]) -> None:
    """Process target: `conn` is the child's end of a multiprocessing Pipe, `params` RapidOCR's
    settings (RapidOCR(params=...))."""
    try:
        from rapidocr import RapidOCR

        ocr = RapidOCR(params=params)
        ocr(np.full((64, 256), 255, np.uint8))  # loads the lazily created det/cls/rec sessions now
    except BaseException as e:  # report anything, including import errors, then exit
        conn.send(("error", f"{type(e).__name__}: {e}"))
        conn.close()
        return
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        try:
            out = ocr(msg)
            txts = list(out.txts) if out.txts is not None else []
            conn.send(("ok", "\n".join(txts)))
        except Exception as e:  # a bad page must not kill the worker
            conn.send(("error", f"{type(e).__name__}: {e}"))
