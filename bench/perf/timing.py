"""Performance measurement: side-by-side timing, the `perf.csv` table and its report section.

Every figure of `nox -s perf` is a ratio of two things measured in the same process, so a
machine busy with other work slows both alike and the ratio stays put. `Interleaved` times named
variants (a candidate, its baseline, reference variants) in rounds: each round times every
variant once, the order rotating from round to round (A B, B A, ...), after a device barrier
and with the device's stopwatch (CUDA events on a GPU). A variant's figure is the median over
rounds, its spread the IQR; a ratio is the median of the per-round ratios, so slow drifts in
the machine's load cancel within each round.

The cases themselves (what is timed against what) are in `bench.perf.cases`, the figure in
`bench.perf.plot`; `tests/perf/` runs them under pytest-benchmark and
`bench.perf.results.write_outputs` writes `results/perf/` (perf.csv, perf.png and perf.md, the
report's "Performance" section).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bench.run.device import Backend, CpuBackend

# ----------------------------------------------------------------------------------------------
# Targets


@dataclass(frozen=True)
class Target:
    """A bound on a case's figure: `<= value`, `>= value`, or `low to high` (both inclusive)."""

    op: str
    value: float
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">=", "to"):
            raise ValueError(f"unknown target operator {self.op!r}; known: <=, >=, to")
        if (self.op == "to") != (self.upper is not None):
            raise ValueError("a range target needs an upper bound, and only a range has one")

    def met(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.op == "<=":
            return x <= self.value
        if self.op == ">=":
            return x >= self.value
        assert self.upper is not None
        return self.value <= x <= self.upper

    def __str__(self) -> str:
        if self.op == "to":
            return f"{self.value:g} to {self.upper:g}"
        return f"{self.op} {self.value:.2f}" if self.value < 2 else f"{self.op} {self.value:g}"

    @classmethod
    def parse(cls, text: str) -> Target:
        """The inverse of `str()`: '<= 1.10', '>= 10', '0.9 to 1.1'."""
        text = text.strip()
        for op in ("<=", ">="):
            if text.startswith(op):
                return cls(op, float(text[len(op) :]))
        low, sep, high = text.partition(" to ")
        if not sep:
            raise ValueError(f"not a target: {text!r}")
        return cls("to", float(low), float(high))


AT_MOST_1 = Target("<=", 1.00)

# ----------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Stats:
    """Median and interquartile range of a list of samples."""

    median: float
    iqr: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            return cls(math.nan, math.nan, 0)
        if len(samples) == 1:
            return cls(samples[0], 0.0, 1)
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(statistics.median(samples), q3 - q1, len(samples))


class Interleaved:
    """Times named variants side by side in rounds, each variant once per round.

    A variant is a callable doing one unit of work (an optimizer step, an epoch). `calibrate`
    runs each once untimed (first-call allocations, lazy initialisation) and picks how many
    calls one sample makes, the same for every variant, so that the fastest variant's sample
    lasts at least `min_sample_s`; a sample is the time per call. The first `warmup` rounds are
    timed but left out of the statistics.
    """

    def __init__(
        self,
        variants: Mapping[str, Callable[[], object]],
        *,
        backend: Backend | None = None,
        warmup: int = 1,
        min_sample_s: float = 0.0,
    ) -> None:
        if not variants:
            raise ValueError("Interleaved needs at least one variant")
        self.variants = dict(variants)
        self.backend = backend or CpuBackend()
        self.warmup = warmup
        self.min_sample_s = min_sample_s
        self.calls = 1
        self.samples: dict[str, list[float]] = {name: [] for name in self.variants}
        self._rounds = 0
        self._stopwatch = self.backend.stopwatch()

    def calibrate(self) -> None:
        for fn in self.variants.values():
            fn()  # untimed: first-call costs
        if self.min_sample_s > 0:
            fastest = min(self._time(name, 1) for name in self.variants)
            self.calls = max(1, math.ceil(self.min_sample_s / max(fastest, 1e-9)))

    def round(self) -> None:
        """Time every variant once, starting one further along the list than last round."""
        names = list(self.variants)
        start = self._rounds % len(names)
        for name in names[start:] + names[:start]:
            self.samples[name].append(self._time(name, self.calls))
        self._rounds += 1

    def _time(self, name: str, calls: int) -> float:
        fn = self.variants[name]
        self.backend.synchronize()
        self._stopwatch.start()
        for _ in range(calls):
            fn()
        return self._stopwatch.stop() / calls

    def measured(self, name: str) -> list[float]:
        return self.samples[name][self.warmup :]

    @property
    def rounds(self) -> int:
        return max(0, self._rounds - self.warmup)

    def stats(self, name: str) -> Stats:
        return Stats.of(self.measured(name))

    def ratio(self, numerator: str, denominator: str) -> Stats:
        """Median and IQR over rounds of time(numerator) / time(denominator)."""
        pairs = zip(self.measured(numerator), self.measured(denominator), strict=True)
        return Stats.of([a / b for a, b in pairs])


# ----------------------------------------------------------------------------------------------
# Rows of perf.csv


@dataclass(frozen=True)
class Row:
    """One line of perf.csv: a candidate against its baseline, or one point of a curve.

    `median`/`iqr` describe the candidate (seconds, or bytes for memory), `baseline_median`/
    `baseline_iqr` its baseline; `ratio` is the case's figure as `metric` defines it, with the
    IQR of the per-round ratios; `target` reads like '<= 1.10' and `met` is yes/no, both empty
    for rows shown for reference.
    """

    case: str
    method: str
    impl: str
    size: str
    device: str
    median: float
    iqr: float
    unit: str
    rounds: int
    ratio: float
    ratio_iqr: float
    target: str
    met: str
    metric: str
    candidate: str
    baseline: str
    baseline_median: float
    baseline_iqr: float
    detail: str = ""


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))


def judged(target: Target | None, ratio: float) -> tuple[str, str]:
    """(target, met) cells: empty for a reference row."""
    if target is None:
        return "", ""
    return str(target), "yes" if target.met(ratio) else "no"


def compare(
    timing: Interleaved,
    cand_variant: str,
    base_variant: str,
    *,
    target: Target | None,
    speedup: bool = False,
    **labels: Any,
) -> Row:
    """A row comparing two variants of `timing`: time ratio, or speed-up when `speedup`.

    `labels` fill the remaining columns (case, method, impl, size, device, candidate, ...).
    """
    cand, base = timing.stats(cand_variant), timing.stats(base_variant)
    if speedup:
        ratio = timing.ratio(base_variant, cand_variant)
    else:
        ratio = timing.ratio(cand_variant, base_variant)
    labels.setdefault(
        "metric",
        "speed-up: baseline time / candidate time"
        if speedup
        else "time ratio: candidate / baseline",
    )
    labels.setdefault("candidate", cand_variant)
    labels.setdefault("baseline", base_variant)
    labels.setdefault("unit", "s")
    return Row(
        median=cand.median,
        iqr=cand.iqr,
        rounds=timing.rounds,
        ratio=ratio.median,
        ratio_iqr=ratio.iqr,
        baseline_median=base.median,
        baseline_iqr=base.iqr,
        **dict(zip(("target", "met"), judged(target, ratio.median), strict=True)),
        **labels,
    )


def loglog_slope(ns: Sequence[float], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of log(seconds) against log(n)."""
    xs = [math.log(n) for n in ns]
    ys = [math.log(t) for t in seconds]
    if len(xs) < 2:
        return math.nan, math.nan
    slope, intercept = statistics.linear_regression(xs, ys)
    return slope, intercept


def above_floor(ns: Sequence[float], seconds: Sequence[float], factor: float = 10.0) -> int:
    """Index of the first point to fit: time >= factor x the smallest n's time (the overhead
    floor), keeping at least the three largest n (all points when there are fewer)."""
    floor = seconds[0]
    first = next((i for i, t in enumerate(seconds) if t >= factor * floor), len(seconds))
    return max(0, min(first, len(seconds) - 3))
