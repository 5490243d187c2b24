"""Number formatting, once: every table, verdict and report renders numbers through here.

One missing-value glyph (`–`), one rule for significant digits, one for durations, one for
"median [lo, hi]". It sits beside `schema` at the bottom of the layers because the analysis
layer states verdicts in words (the notebooks' claims) with the same numbers the reports show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

MISSING = "–"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and math.isnan(x))


def num(x: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits; inf/-inf spelled out; missing is `–`."""
    if _missing(x):
        return MISSING
    if isinstance(x, float | np.floating):
        if not math.isfinite(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}g}"
    return str(x)


def seconds(s: Any) -> str:
    """A duration in ns, µs, ms or s with 3 significant digits; missing or infinite is `–`."""
    if _missing(s) or not math.isfinite(s):
        return MISSING
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns" if s > 0 else "0 s"


def megabytes(n: Any) -> str:
    """A byte count in MB (10^6 bytes), no decimals."""
    if _missing(n) or not math.isfinite(n):
        return MISSING
    return f"{n / 1e6:.0f} MB"


def ratio(x: Any, digits: int = 2) -> str:
    """A ratio or slope with fixed decimals (perf tables)."""
    if _missing(x) or not isinstance(x, float | int | np.number) or not math.isfinite(x):
        return MISSING
    return f"{x:.{digits}f}"


def interval(median: float, lo: float, hi: float, n: int, *, time: bool = False) -> str:
    """`median [lo, hi]`, or just the median when the interval is a point; `–` when n == 0."""
    if n == 0:
        return MISSING
    f = seconds if time else num
    if n == 1 or lo == hi:
        return f(median)
    return f"{f(median)} [{f(lo)}, {f(hi)}]"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
