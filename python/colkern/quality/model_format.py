"""The quality model file (.colq): one JSON header line and the LightGBM boosters, written
atomically and checked on every load.

File format, version 1 (one file, written atomically: temp file, fsync, os.replace):

    line 1   b"COLKERN-QUALITY-PREDICTOR\\n"
    line 2   the header: one line of UTF-8 JSON (format_version, colkern_version,
             lightgbm_version, encoder {name, params, pooling}, feature_names, engine {name,
             config}, targets, lgbm_params, num_rounds, training (a summary of the training
             set), verdict_thresholds, calibration (target -> isotonic knots {x, y}, or
             null; added later inside version 1: a file without it loads as uncalibrated, and
             readers that predate it ignore it), models: [{target, nbytes, sha256}, ...]), then "\\n"
    then     the boosters in LightGBM's own text format, concatenated in the order of
             "models"; each is `nbytes` bytes with the given SHA-256; nothing follows.
The encoder is stored by name ("glyph", "pixel", ...), never by module path, so a file does not
depend on where the encoder's code lives. Loading checks all of it; every problem raises
ModelFormatError (a ValueError) naming the file.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping, Sequence, Tuple

import lightgbm as lgb

from .._atomic import atomic_write_bytes
from .._types import PathLike
from .._version import __version__

MAGIC = b"COLKERN-QUALITY-PREDICTOR\n"
FORMAT_VERSION = 1


class ModelFormatError(ValueError):
    """A quality model file that cannot be loaded: foreign, truncated, corrupt or of a newer version."""


def write_model_file(path: PathLike, header: Mapping[str, Any], boosters: Mapping[str, lgb.Booster]) -> None:
    """Write `header` plus a "models" entry and the boosters (target -> booster, in file order)."""
    texts = [b.model_to_string().encode("utf-8") for b in boosters.values()]
    head = dict(header)
    head["models"] = [{"target": t, "nbytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                      for t, b in zip(boosters, texts)]
    line = json.dumps(head, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
    atomic_write_bytes(path, MAGIC + line + b"\n" + b"".join(texts))


def read_model_file(path: str) -> Tuple[Dict[str, Any], bytes, int]:
    """-> (header, the file's bytes, offset of the first booster) after checking the magic, the
    header's JSON and the format version. FileNotFoundError for a missing file."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        raise ModelFormatError(f"{path!r} is not a colkern quality model (bad magic)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise ModelFormatError(f"quality model {path!r} is truncated: no complete header")
    try:
        head = json.loads(data[len(MAGIC):end].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"quality model {path!r} is corrupt: bad header ({e})") from None
    if not isinstance(head, dict):
        raise ModelFormatError(f"quality model {path!r} is corrupt: the header is not a JSON object")
    version = head.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFormatError(f"quality model {path!r} is corrupt: no format_version")
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"quality model {path!r} has format version {version}, newer than this "
                               f"colkern ({__version__}) reads ({FORMAT_VERSION}); upgrade colkern")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"quality model {path!r} has unknown format version {version}")
    return head, data, end + 1


def read_boosters(entries, data: bytes, pos: int, targets: Sequence[str]) -> Dict[str, lgb.Booster]:
    """The boosters listed in the header's "models" (`entries`) from data[pos:], checked against
    `targets`, sizes and checksums. Raises ModelFormatError (without the file name: the caller adds
    it), or KeyError / TypeError for malformed entries."""
    if not isinstance(entries, list) or [e.get("target") for e in entries] != list(targets):
        raise ModelFormatError("the model list does not match the targets")
    boosters = {}
    for e in entries:
        nbytes = e["nbytes"]
        if not isinstance(nbytes, int) or nbytes <= 0 or pos + nbytes > len(data):
            raise ModelFormatError(f"truncated: the {e['target']} booster needs {nbytes} bytes at {pos}, "
                                   f"the file has {len(data)}")
        blob = data[pos:pos + nbytes]
        if hashlib.sha256(blob).hexdigest() != e["sha256"]:
            raise ModelFormatError(f"checksum mismatch in the {e['target']} booster")
        try:
            boosters[e["target"]] = lgb.Booster(model_str=blob.decode("utf-8"))
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as err:
            raise ModelFormatError(f"LightGBM cannot read the {e['target']} booster ({err})") from None
        pos += nbytes
    if pos != len(data):
        raise ModelFormatError(f"{len(data) - pos} unexpected bytes after the last booster")
    return boosters
