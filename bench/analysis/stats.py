"""Statistics over seeds: medians with 95% bootstrap intervals, optima, time to target.

Interval: the bootstrap percentile interval of the median (resample the seeds with replacement,
take the median of each resample, report the 2.5% and 97.5% quantiles), with a fixed RNG so the
report is reproducible. For 5 or fewer seeds this interval is exactly [min, max] of the seeds
(a bootstrap median lands on the smallest value with probability > 2.5%), which is why the loss
curves' shaded band, the seeds' range, is the same 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench import fmt

LEVEL = 0.95
RESAMPLES = 10_000
INTERVAL_NAME = "95% bootstrap percentile interval of the median over seeds"
RANGE_UP_TO = 5  # with this many seeds or fewer the interval is exactly the seeds' range


def interval_name(n: int) -> str:
    """What `[lo, hi]` is for a figure over n seeds: the seeds' range for n <= 5 (the
    bootstrap interval equals it there, so call it what it is), else the bootstrap interval."""
    return "the seeds' range" if n <= RANGE_UP_TO else "95% bootstrap interval of the median"


def bracket(n: int) -> str:
    """The `[...]` of `median [...]` in a heading or note: 'seeds' range' or '95% interval'."""
    return "seeds' range" if n <= RANGE_UP_TO else "95% interval"


@dataclass(frozen=True)
class Estimate:
    median: float
    lo: float
    hi: float
    n: int

    def text(self, time: bool = False) -> str:
        """`median [lo, hi]` through the one formatting module."""
        return fmt.interval(self.median, self.lo, self.hi, self.n, time=time)

    __str__ = text


def median_ci(
    values: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Median and bootstrap percentile interval; NaN values are dropped, inf is kept (a run
    that never reached a target took infinitely long)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    med = float(np.median(x))
    if n == 1:
        return Estimate(med, med, med, 1)
    rng = np.random.default_rng(seed)
    boot = np.median(x[rng.integers(0, n, size=(resamples, n))], axis=1)
    alpha = (1 - level) / 2
    # "inverted_cdf" keeps the interval's ends on values a bootstrap median can take (and
    # makes inf ends possible without inf - inf = nan interpolation).
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], method="inverted_cdf")
    return Estimate(med, float(lo), float(hi), n)
