"""Type aliases shared by every layer, defined once (torch-free: the lowest layer imports it)."""
from __future__ import annotations

import os
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]
