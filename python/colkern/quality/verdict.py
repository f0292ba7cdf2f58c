"""The verdict on a predicted CER: "good", "fair" or "poor", and the thresholds between them
(stored in every quality model file)."""
from __future__ import annotations

import math

import numpy as np
import torch

# verdict(cer): "good" up to 2% character errors (about one misread character per line of 50:
# usable without review), "fair" up to 10% (the text is searchable but fields need checking),
# "poor" above (re-scan or route to a human). 10% is also the threshold of the AUC reported by
# cross_validate.
VERDICT_THRESHOLDS = (0.02, 0.10)


def verdict(cer):
    """"good" (cer <= 0.02), "fair" (<= 0.10) or "poor": a str for a number, a list for an
    array. See VERDICT_THRESHOLDS."""
    good, fair = VERDICT_THRESHOLDS

    def one(c: float) -> str:
        if not math.isfinite(c):
            raise ValueError(f"verdict: cer must be finite, got {c}")
        return "good" if c <= good else "fair" if c <= fair else "poor"

    if isinstance(cer, (np.ndarray, torch.Tensor, list, tuple)):
        return [one(float(c)) for c in np.asarray(cer, dtype=np.float64).reshape(-1)]
    return one(float(cer))
