"""pytest-benchmark wiring of `bench.perf_cases`, and the writer of results/perf/.

With benchmarks enabled (`nox -s perf`, i.e. `pytest tests/perf --benchmark-enable`) each case
runs at FULL size and the session ends by writing perf.csv, perf.png, perf.md and a copy of
pytest-benchmark's JSON (when `--benchmark-json` is given) to results/perf/. With benchmarks
disabled (the default in pyproject.toml, so `nox -s tests`) each case runs one round at SMALL
size, to check the code, and nothing is written.

Environment: OPTBENCH_PERF_OUT sets the output folder; OPTBENCH_PERF_SCALE=small runs the
enabled session at SMALL size (a quick check of the whole pipeline; its ratios mean nothing).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.perf import cases as perf_cases
from bench.perf import results as perf_core
from bench.perf.timing import Row

OUT_ENV = "OPTBENCH_PERF_OUT"
SCALE_ENV = "OPTBENCH_PERF_SCALE"

_ROWS = pytest.StashKey[list]()
_WRITTEN = pytest.StashKey[tuple]()


class Perf:
    """Runs one case under pytest-benchmark and collects its rows for perf.csv."""

    def __init__(self, benchmark, scale: perf_cases.Scale, rows: list) -> None:
        self.benchmark = benchmark
        self.scale = scale
        self._rows = rows

    def run(self, case: perf_cases.Case) -> list[Row]:
        """Calibrate, then `case.round` under `benchmark.pedantic` (one call per round).

        pytest-benchmark's statistics are per round, i.e. every variant of the case back to
        back; the per-variant figures and ratios are in `extra_info["rows"]` and perf.csv.
        """
        case.calibrate()
        self.benchmark.group = case.group
        self.benchmark.extra_info.update(case.info)
        self.benchmark.pedantic(
            case.round, rounds=case.rounds, warmup_rounds=case.warmup, iterations=1
        )
        rows = case.rows()
        self.benchmark.extra_info["rows"] = [_json_safe(asdict(r)) for r in rows]
        self._rows.extend(rows)
        return rows


def _json_safe(row: dict) -> dict:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


@pytest.fixture
def perf(benchmark, request) -> Perf:
    enabled = not benchmark.disabled
    scale = perf_cases.SCALES[os.environ.get(SCALE_ENV) or ("full" if enabled else "small")]
    rows = request.config.stash.setdefault(_ROWS, [])
    return Perf(benchmark, scale, rows if enabled else [])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write results/perf/ once pytest-benchmark has written its JSON (it runs first)."""
    rows = session.config.stash.get(_ROWS, [])
    if not rows:
        return
    out = Path(os.environ.get(OUT_ENV) or session.config.rootpath / "results" / "perf")
    json_path = session.config.getoption("benchmark_json", None)
    names = perf_core.write_outputs(rows, out, benchmark_json=json_path)
    session.config.stash[_WRITTEN] = (out, names)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    tr = terminalreporter
    tr.section("optbench performance targets")
    for r in rows:
        if r.target:
            flag = "met" if r.met == "yes" else "MISSED"
            tr.write_line(
                f"{r.case:13} {r.method:10} {r.impl:8} {r.size:24} {r.device:4} "
                f"ratio {r.ratio:8.3f} (IQR {r.ratio_iqr:.3f})  target {r.target:11} {flag}"
            )
    written = config.stash.get(_WRITTEN, None)
    if written:
        out, names = written
        tr.write_line(f"wrote {', '.join(names)} to {out}")
