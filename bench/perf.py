"""Performance measurement: side-by-side timing, the `perf.csv` table and its report section.

Every figure of `nox -s perf` is a ratio of two things measured in the same process, so a
machine busy with other work slows both alike and the ratio stays put. `Interleaved` times named
variants (a candidate, its baseline, reference variants) in rounds: each round times every
variant once, the order rotating from round to round (A B, B A, ...), after a device barrier
and with the device's stopwatch (CUDA events on a GPU). A variant's figure is the median over
rounds, its spread the IQR; a ratio is the median of the per-round ratios, so slow drifts in
the machine's load cancel within each round.

The cases themselves (what is timed against what) are in `bench.perf_cases`, the figure in
`bench.perf_plot`; `tests/perf/` runs them under pytest-benchmark and `write_outputs` writes
`results/perf/`. `markdown_section(perf_csv)` renders the report's "Performance" section.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from bench.device import Backend, CpuBackend
from bench.outputs import staged_dir

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


# ----------------------------------------------------------------------------------------------
# Files


def write_csv(rows: Iterable[Row], path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    frame.to_csv(path, index=False, float_format="%.6g")


NUMERIC_COLUMNS = (
    "median",
    "iqr",
    "rounds",
    "ratio",
    "ratio_iqr",
    "baseline_median",
    "baseline_iqr",
)


def read_csv(path: Path):  # -> pandas.DataFrame
    """perf.csv with text columns as strings ('' when empty) and numbers as floats (NaN)."""
    import pandas as pd

    text = [c for c in COLUMNS if c not in NUMERIC_COLUMNS]
    df = pd.read_csv(path, keep_default_na=False, dtype=dict.fromkeys(text, str))
    for column in NUMERIC_COLUMNS:
        df[column] = pd.to_numeric(df[column], errors="coerce")
    return df


def write_outputs(
    rows: Sequence[Row], out: Path, *, benchmark_json: Path | None = None
) -> list[str]:
    """Write perf.csv, perf.png, perf.md (and a copy of pytest-benchmark's JSON) into `out`.

    The folder is replaced in one step at the end (`staged_dir`), so a failure leaves the
    previous results in place. Returns the file names written.
    """
    from bench.perf_plot import plot

    out = Path(out)
    with staged_dir(out) as stage:
        write_csv(rows, stage / "perf.csv")
        plot(read_csv(stage / "perf.csv"), stage / "perf.png")
        (stage / "perf.md").write_text(markdown_section(stage / "perf.csv") + "\n")
        if benchmark_json is not None and Path(benchmark_json).is_file():
            shutil.copyfile(benchmark_json, stage / "benchmark.json")
        names = sorted(p.name for p in stage.iterdir())
    return names


# ----------------------------------------------------------------------------------------------
# The report's section

CASE_TITLES = {
    "1-step": "Optimizer step: scratch vs torch.optim for-loop",
    "2-harness": "Harness overhead: runner epoch vs a hand-written loop",
    "3-dataloader": "Batching: runner epoch vs the seeds' DataLoader loop",
    "4-gd-limit": "Full-batch GD epoch vs its two matrix products",
    "5-scaling": "Scaling of epoch time with n (log-log slope)",
    "6-memory": "Peak memory of a full-batch run",
}


def _fmt(x: float, digits: int = 2) -> str:
    return "—" if not isinstance(x, float | int) or not math.isfinite(x) else f"{x:.{digits}f}"


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt_value(x: float, unit: str) -> str:
    if unit == "bytes":
        return f"{x / 1e6:.0f} MB" if math.isfinite(x) else "—"
    return _fmt_seconds(x)


def markdown_section(perf_csv_path: str | os.PathLike, *, relative_to: Path | None = None) -> str:
    """The report's "## Performance" section from a perf.csv: targets, ratios, the plot.

    The plot is linked relative to `relative_to` (the folder of the markdown file that will
    hold this section; default: perf.csv's folder). A missing perf.csv gives a short section
    saying how to produce one.
    """
    path = Path(perf_csv_path)
    lines = ["## Performance", ""]
    if not path.is_file():
        lines.append(f"No performance results ({path} not found); `nox -s perf` writes them.")
        return "\n".join(lines)
    df = read_csv(path)
    devices = ", ".join(sorted(set(df["device"])))
    lines += [
        f"From `{path.name}` ({len(df)} rows, {devices}), written by `nox -s perf`. Every "
        "figure is a ratio of two measurements taken side by side in one process: interleaved "
        "rounds, the median over rounds of the per-round ratio, IQR in brackets. `<=` targets "
        "are time ratios (lower is better), `>=` targets speed-ups (higher is better).",
        "",
        "| case | what is compared | size | ratio [IQR] | target | met |",
        "|---|---|---|---|---|---|",
    ]
    judged_rows = df[df["target"] != ""]
    step = judged_rows[judged_rows["case"] == "1-step"]
    for (size, device), group in step.groupby(["size", "device"], sort=False):
        worst = group.loc[group["ratio"].idxmax()]
        n_met = int((group["met"] == "yes").sum())
        lines.append(
            f"| 1 | scratch / torch for-loop step, {len(group)} methods (worst: "
            f"{worst['method']}) | {size} ({device}) | {_fmt(worst['ratio'])} "
            f"[{_fmt(worst['ratio_iqr'])}] | {worst['target']} | "
            f"{'yes' if n_met == len(group) else 'no'} ({n_met}/{len(group)}) |"
        )
    for _, r in judged_rows[judged_rows["case"] != "1-step"].iterrows():
        number = r["case"].split("-", 1)[0]
        what = f"{r['candidate']} vs {r['baseline']}"
        if r["case"] == "5-scaling":
            what = f"{r['method']}: {r['metric']}"
        ratio = _fmt(r["ratio"])
        if r["rounds"] > 1 and math.isfinite(r["ratio_iqr"]):
            ratio += f" [{_fmt(r['ratio_iqr'])}]"
        lines.append(
            f"| {number} | {what} | {r['size']} ({r['device']}) | {ratio} | {r['target']} | "
            f"{r['met']} |"
        )
    lines += ["", *_step_table(df), *_notes(df)]
    image = path.with_name("perf.png")
    if image.is_file():
        base = Path(relative_to) if relative_to is not None else path.parent
        link = Path(os.path.relpath(image.resolve(), base.resolve())).as_posix()
        lines += ["", f"![Performance: ratios against targets, and scaling]({link})"]
    return "\n".join(lines)


def _step_table(df) -> list[str]:
    """Case 1 in full: scratch / torch for-loop per method and size, and against the fastest."""
    step = df[df["case"] == "1-step"]
    if step.empty:
        return []
    vs_loop = step[(step["impl"] == "scratch") & (step["target"] != "")]
    vs_best = step[step["baseline"].str.startswith("fastest")]
    sizes = list(dict.fromkeys(vs_loop["size"]))
    lines = [
        "Optimizer step, scratch / torch for-loop per method and parameter set (✗: target "
        "missed); in brackets the fastest torch variant and scratch / that variant:",
        "",
        "| method | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method in dict.fromkeys(vs_loop["method"]):
        cells = []
        for size in sizes:
            a = vs_loop[(vs_loop["method"] == method) & (vs_loop["size"] == size)]
            b = vs_best[(vs_best["method"] == method) & (vs_best["size"] == size)]
            cell = _fmt(a["ratio"].iloc[0]) if len(a) else "—"
            if len(a) and a["met"].iloc[0] == "no":
                cell += " ✗"
            if len(b):
                fastest = b["baseline"].iloc[0].removeprefix("fastest torch: ")
                cell += f" ({fastest}: {_fmt(b['ratio'].iloc[0])})"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _notes(df) -> list[str]:
    lines = []
    for case in ("2-harness", "3-dataloader", "4-gd-limit", "6-memory"):
        for _, r in df[df["case"] == case].iterrows():
            lines.append(
                f"- {CASE_TITLES[case]} ({r['size']}): {r['candidate']} "
                f"{_fmt_value(r['median'], r['unit'])}, {r['baseline']} "
                f"{_fmt_value(r['baseline_median'], r['unit'])}"
                + (f"; {r['detail']}" if r["detail"] else "")
                + "."
            )
    return ["", *lines] if lines else []
