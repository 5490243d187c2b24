"""perf case 11 (cost per epoch with two CPU hogs beside the runs; the time the cost measurement
adds). Under `nox -s tests` it runs once at SMALL size: the code runs and the rows are well
formed; the targets are recorded in perf.csv (`met` yes/no), never asserted."""

from __future__ import annotations

from bench.perf import cases as perf_cases
from tests.perf.test_benchmarks import check


def test_11_cost_noise(perf):
    rows = perf.run(perf_cases.cost_noise_case(perf.scale))
    check(rows)
    problems = ("crops15", "diabetes") if perf.scale.name == "full" else ("crops15",)
    assert {(r.size, r.method) for r in rows} == {(p, m) for p in problems for m in ("sgd", "adam")}
    for row in rows:
        assert row.target == str(perf_cases.SPREAD_TARGET)
        assert row.ratio >= 1.0  # max / min
        assert "2 CPU hogs" in row.detail


def test_11_cost_phase(perf):
    (row,) = perf.run(perf_cases.cost_phase_case(perf.scale))
    check([row])
    assert row.ratio == row.median / row.baseline_median
