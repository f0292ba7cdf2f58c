"""Steering a data set's labels into the intermediate CER range: the target CER of every variant
and the severity search that aims at it (used by colkern.quality.dataset.build).

Random severities give bimodal labels (most pages read perfectly or not at all; the feasibility
probe in ANCHORS.md saw exactly that). So each variant aims at a target CER, and the severity is
searched per source:
  * targets: variant k of source i aims at t = frac(u_i + vdc(k)), u_i uniform per source and
    vdc the base-2 van der Corput sequence (0, 1/2, 1/4, 3/4, ...): the first V targets of a
    source are spread evenly over [0, 1) for any V, and adding variants later never changes the
    targets of existing ones;
  * severity: `choose_severity` treats CER(severity) of the source as non-decreasing and
    brackets the target between observed variants (anchors (0, 0) and (1, 1)), interpolating
    inside the bracket (regula falsi, kept off the bracket ends so it keeps shrinking), plus a
    little jitter; a source's first probe uses a fixed prior (no damage below severity 0.35).
    Every OCR run is a stored sample - the search wastes no OCR calls;
  * regions: 60% of the sources are damaged in a region that grows with the severity (see
    colkern.quality.degrade.sample_region), which turns Tesseract's all-or-nothing failure on a
    uniformly degraded page into a CER that rises with the damaged share of the lines.
Measured (40 generated sources x 8 variants, eng + jpn, Tesseract 5.3 psm 4, seed 2): the share
of labels with 0.1 <= CER < 0.9 was 22% with uniform random severities (steer=False; 48% below
0.1, 29% at 0.9 or above), 45% steered without the prior and 53% with it (25% / 22% at the ends).
The search follows the first engine (the primary); other engines label the same images. The
build report holds the resulting CER histogram.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np


def _van_der_corput(k: int) -> float:
    x, denom = 0.0, 1.0
    while k:
        denom *= 2.0
        k, bit = divmod(k, 2)
        x += bit / denom
    return x


def variant_target(seed: int, source_index: int, variant: int) -> float:
    """Target primary-engine CER in [0, 1) of one variant (see the module docstring)."""
    u = np.random.default_rng([int(seed), int(source_index), 0x7A67]).random()
    return float((u + _van_der_corput(int(variant))) % 1.0)


# Below this severity a clean 7-14 pt page almost always keeps CER < 0.05 (measured per op on
# generated pages), so a source's first probe spends the whole [0, 1] range above it.
PRIOR_KNEE = 0.35


def choose_severity(observations: Sequence[Tuple[float, float]], target: float, *,
                    rng: Optional[np.random.Generator] = None, jitter: float = 0.01,
                    knee: float = PRIOR_KNEE) -> float:
    """Severity in [0, 1] expected to give CER `target`, from (severity, cer) pairs seen on this source.

    CER is assumed non-decreasing in severity, with anchors (0, 0) and (1, 1). The bracket is the
    largest observed severity whose CER <= target and the smallest whose CER >= target; the pick
    interpolates linearly inside it, clamped to the middle 60% so repeated calls keep shrinking
    the bracket even when the curve is a step (Tesseract often falls from 0.1 to 1.0 within 0.05 of
    severity). Noisy observations that cross (lo above hi) give their midpoint. With nothing
    observed inside [0, 1] yet, the prior is linear from (knee, 0) to (1, 1).
    """
    lo_s, lo_c, hi_s, hi_c = 0.0, 0.0, 1.0, 1.0
    for s, c in observations:
        if c <= target and s >= lo_s:
            lo_s, lo_c = float(s), float(c)
        if c >= target and s <= hi_s:
            hi_s, hi_c = float(s), float(c)
    if (lo_s, hi_s) == (0.0, 1.0) and not any(0.0 < s < 1.0 for s, _ in observations):
        s = knee + (1.0 - knee) * target
    elif lo_s >= hi_s:
        s = 0.5 * (lo_s + hi_s)
    else:
        frac = (target - lo_c) / (hi_c - lo_c) if hi_c > lo_c else 0.5
        s = lo_s + min(max(frac, 0.2), 0.8) * (hi_s - lo_s)
    if rng is not None and jitter > 0:
        s += float(rng.uniform(-jitter, jitter))
    return float(min(max(s, 0.0), 1.0))
