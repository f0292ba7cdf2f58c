"""Atomic file writes: a temporary file in the target's directory, fsync, then os.replace().

Readers see the old file or the new one, never a part; a failed or interrupted write leaves no
temporary file behind. The new file keeps the target's permission bits, or gets the usual 0644
(mkstemp creates 0600 files). After the rename the directory is fsynced too, so the rename itself
survives a crash (best effort: not every file system allows it).
"""
from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable

from ._types import PathLike


def atomic_write(path: PathLike, write: Callable[[BinaryIO], object]) -> str:
    """Calls write(binary file object) on a temporary file beside `path`, then replaces `path`
    with it. The directory must exist (FileNotFoundError naming it). -> the path written."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> str:
    """Writes `data` to `path` atomically (see atomic_write). -> the path written."""
    return atomic_write(path, lambda f: f.write(data))
