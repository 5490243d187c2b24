"""Statistics over seeds: medians with 95% bootstrap intervals, optima, time to target.

Interval: the bootstrap percentile interval of the median (resample the seeds with replacement,
take the median of each resample, report the 2.5% and 97.5% quantiles), with a fixed RNG so the
report is reproducible. For 5 or fewer seeds this interval is exactly [min, max] of the seeds
(a bootstrap median lands on the smallest value with probability > 2.5%), which is why the loss
curves' shaded band, the seeds' range, is the same 95% interval.

Computed without resampling the values each time (the same numbers as resampling them,
`_resampled_ci`, bitwise but for the sign of a zero among zeros of both signs; tested): a
resample's median depends only on how often it drew each
position, and the fixed RNG draws the same positions for every sample of n values, so the
distinct draw counts of n (3 for n = 2, 126 for n = 5, at most `RESAMPLES`) and their
multiplicities are computed once per n; a sample then only ranks its values. 15-30x faster for
2-6 seeds (0.05-0.1 ms a call instead of 1-2.4 ms, measured), about 2x for 10 or more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

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
    if np.isposinf(x).any() and np.isneginf(x).any():  # inf - inf medians: resample as defined
        return _resampled_ci(x, level, resamples, seed)
    order = np.argsort(x, kind="stable")
    ranked = x[order]
    draws, weights = _draws(n, resamples, seed)
    drawn_up_to = draws[:, order].cumsum(axis=1)  # per draw: values drawn of rank <= r
    low = (drawn_up_to > (n - 1) // 2).argmax(axis=1)  # rank of the resample's median
    if n % 2:
        medians, counts = ranked, np.bincount(low, weights=weights, minlength=n)
    else:  # np.median's mean of the two middle values
        high = (drawn_up_to > n // 2).argmax(axis=1)
        pairs, which = np.unique(low * n + high, return_inverse=True)
        counts = np.bincount(which.ravel(), weights=weights, minlength=pairs.size)
        medians = (ranked[pairs // n] + ranked[pairs % n]) / 2
        by_value = np.argsort(medians, kind="stable")
        medians, counts = medians[by_value], counts[by_value]
    ends = np.cumsum(counts)  # sorted bootstrap medians: medians[i] fills ranks < ends[i]
    lo, hi = (medians[np.searchsorted(ends, k, side="right")] for k in _ends(resamples, level))
    return Estimate(med, float(lo), float(hi), n)


@lru_cache(maxsize=64)
def _draws(n: int, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of how often each of n positions is drawn by `_resampled_ci`'s
    resamples, and how many resamples have each."""
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (np.arange(resamples)[:, None] * n + picks).ravel()
    counts = np.bincount(flat, minlength=resamples * n).reshape(resamples, n)
    rows, weights = np.unique(counts, axis=0, return_counts=True)
    return rows, weights


@lru_cache(maxsize=16)
def _ends(resamples: int, level: float) -> tuple[int, int]:
    """Which sorted bootstrap medians `np.quantile(..., method="inverted_cdf")` returns."""
    alpha = (1 - level) / 2
    picked = np.quantile(np.arange(resamples), [alpha, 1 - alpha], method="inverted_cdf")
    return int(picked[0]), int(picked[1])


def _resampled_ci(x: np.ndarray, level: float, resamples: int, seed: int) -> Estimate:
    """The definition: resample x (n >= 2 values, no NaN) `resamples` times, median of each,
    the interval's ends their `inverted_cdf` quantiles."""
    n = x.size
    rng = np.random.default_rng(seed)
    boot = np.median(x[rng.integers(0, n, size=(resamples, n))], axis=1)
    alpha = (1 - level) / 2
    # "inverted_cdf" keeps the interval's ends on values a bootstrap median can take (and
    # makes inf ends possible without inf - inf = nan interpolation).
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], method="inverted_cdf")
    return Estimate(float(np.median(x)), float(lo), float(hi), n)
