"""Saving a built test model: written to a temporary directory beside the target and renamed
into place, so the target never holds a half-written model (a test that is interrupted while
building leaves nothing a later run would mistake for a model)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Tuple

from .._types import PathLike


def save_model_atomically(path: PathLike, build: Callable[[], Tuple[object, object]], owner: str) -> Path:
    """Calls build() -> (model, processor) and saves both to the directory `path`, which must not
    exist or be an empty directory. -> Path of the saved model. Raises FileExistsError (naming
    `owner`) if `path` is a file or a non-empty directory, before anything is built."""
    from ..colpali.encoder import quiet_transformers

    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{owner}: {target} exists and is not an empty directory")
    model, processor = build()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(tmp)
            processor.save_pretrained(tmp)
        if target.exists():
            target.rmdir()  # empty (checked above); os.replace cannot rename over it everywhere
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
