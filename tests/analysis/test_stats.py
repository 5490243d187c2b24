"""Medians and their intervals over seeds (`bench.analysis.stats`)."""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pytest

from bench.analysis import stats


def exact_bootstrap_median_interval(sample: list[float], level: float = 0.95):
    """Exact percentile interval of the bootstrap median for odd n, from the binomial law:
    P(median* <= x_(j)) = P(Binomial(n, j/n) >= (n + 1) / 2)."""
    x, n = sorted(sample), len(sample)
    half = (n + 1) // 2

    def cdf(j: int) -> float:
        p = j / n
        return sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(half, n + 1))

    alpha = (1 - level) / 2
    lo = next(x[j - 1] for j in range(1, n + 1) if cdf(j) >= alpha)
    hi = next(x[j - 1] for j in range(1, n + 1) if cdf(j) >= 1 - alpha)
    return lo, hi


def test_interval_matches_the_exact_bootstrap_on_a_known_sample():
    sample = [3.1, 0.4, 7.7, 2.2, 5.0, 1.3, 9.9, 4.4, 6.6]
    est = stats.median_ci(sample)
    assert est.median == 4.4
    # P(median* <= x_(2)) = P(Bin(9, 2/9) >= 5) = 0.030 >= 0.025 and P(median* <= x_(1)) = 0.001,
    # so the interval runs from the 2nd to (by symmetry) the 8th order statistic.
    assert exact_bootstrap_median_interval(sample) == (1.3, 7.7)
    assert (est.lo, est.hi) == (1.3, 7.7)
    assert est.n == 9


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_with_five_or_fewer_seeds_the_interval_is_the_range(n):
    sample = list(np.linspace(1.0, 2.0, n) ** 2)
    est = stats.median_ci(sample)
    assert (est.lo, est.hi) == (min(sample), max(sample))


def test_interval_handles_inf_and_nan():
    est = stats.median_ci([1.0, 2.0, math.inf, math.nan, 3.0])
    assert est.n == 4
    assert est.median == 2.5
    assert est.hi == math.inf
    assert stats.median_ci([]).n == 0
    one = stats.median_ci([7.0])
    assert (one.median, one.lo, one.hi) == (7.0, 7.0, 7.0)


def test_interval_is_reproducible():
    sample = np.random.default_rng(1).normal(size=12)
    assert stats.median_ci(sample) == stats.median_ci(sample)


def test_interval_is_bitwise_the_resampled_one():
    """`median_ci` ranks the values against draw counts cached per n; `_resampled_ci` resamples
    the values themselves (the definition). Same numbers, every size, ties, infinities (bitwise
    but for the sign of a zero median among equal zeros of both signs)."""
    rng = np.random.default_rng(7)
    for trial in range(600):
        n = int(rng.integers(2, 23))
        x = rng.normal(size=n) * 10.0 ** int(rng.integers(-3, 4))
        if trial % 3 == 0:
            x = np.round(x, 1)  # ties
        if trial % 5 == 0:
            x[rng.integers(0, n)] = np.inf
        if trial % 7 == 0 and trial % 5:  # both infinities: inf - inf, the definition itself
            x[rng.integers(0, n)] = -np.inf
        if trial % 11 == 0:
            x[: n // 2] = 0.0
            x[n // 2 :: 3] = -0.0  # equal values of two signs: any of them may be the median
        expected = stats._resampled_ci(x, stats.LEVEL, stats.RESAMPLES, 0)
        got = stats.median_ci(x)
        assert got == expected, (x, got, expected)  # == : -0.0 == 0.0, no NaN here
