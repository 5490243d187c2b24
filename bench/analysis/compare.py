"""When is one method's number clearly below another's? The one rule every summary uses.

A difference is *clear* when, with at least two seeds on each side, either
- the 95% intervals of the two medians do not overlap (`a.hi < b.lo`), or
- paired seed by seed (same seed = same data split and initial weights), `a < b` in at least
  `claims.MAJORITY` of at least three shared seeds and the medians agree (the claims module's
  rule; two seeds agreeing happens by chance one time in four, so it needs three).
Anything else is "no clear difference": the report then names the methods as tied rather than
ranking them on noise (e.g. "SGD ends lower than GD (29.43 vs 29.73)" with overlapping seeds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bench.analysis.claims import MAJORITY
from bench.analysis.stats import Estimate, median_ci

MIN_PAIRED_SEEDS = 3


def clearly_less(a: pd.Series, b: pd.Series) -> bool:
    """Is `a` (values indexed by seed) clearly below `b`? inf counts as the worst value."""
    a, b = a.astype(float).dropna(), b.astype(float).dropna()
    if len(a) < 2 or len(b) < 2:
        return False
    ea, eb = median_ci(a.to_numpy()), median_ci(b.to_numpy())
    if not ea.median < eb.median:
        return False
    if ea.hi < eb.lo:
        return True
    shared = a.index.intersection(b.index)
    if len(shared) < MIN_PAIRED_SEEDS:
        return False
    below = int((a[shared] < b[shared]).sum())
    return below >= MAJORITY * len(shared)


def ranked(per_seed: Mapping[str, pd.Series]) -> tuple[str, Estimate, list[str], bool] | None:
    """The method with the lowest median, its estimate, the methods not clearly above it
    (ties), and whether it is clearly below every other method. None when every median is
    inf or missing (nothing to rank)."""
    est = {m: median_ci(v.astype(float).to_numpy()) for m, v in per_seed.items()}
    finite = {m: e for m, e in est.items() if e.n and math.isfinite(e.median)}
    if not finite:
        return None
    best = min(finite, key=lambda m: (finite[m].median, list(per_seed).index(m)))
    ties = [m for m in per_seed if m != best and not clearly_less(per_seed[best], per_seed[m])]
    return best, est[best], ties, not ties and len(per_seed) > 1


def paired_ratio(a: pd.Series, b: pd.Series) -> Estimate:
    """Median [95% interval] over shared seeds of a / b (e.g. an epoch's cost relative to GD)."""
    shared = a.index.intersection(b.index)
    r = a[shared].astype(float) / b[shared].astype(float)
    return median_ci(r.replace([np.inf, -np.inf], np.nan).to_numpy())
