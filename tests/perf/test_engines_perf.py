"""perf cases 9 (runs per second of the vectorised and per-run engines at K runs per group) and
10 (their numeric agreement on the default suite). Under `nox -s tests` each runs once at SMALL
size: the check is that the code runs and the rows are well formed; targets are recorded in
perf.csv, never asserted (the numeric bound is a test: tests/run/test_engines.py)."""

from __future__ import annotations

import math

import pytest

from bench.perf import cases as perf_cases
from tests.perf.test_benchmarks import check


@pytest.mark.parametrize("workload", list(perf_cases.ENGINE_WORKLOADS))
def test_9_engines(perf, workload):
    rows = perf.run(perf_cases.engine_case(workload, perf.scale))
    check(rows)
    ks = perf_cases.ENGINE_KS[perf.scale.name]
    assert [r.size for r in rows] == [f"K={k}" for k in ks]
    judged = [r for r in rows if r.target]
    if workload == "sgd" and 1024 in ks:
        assert [(r.size, r.target) for r in judged] == [("K=1024", str(perf_cases.ENGINE_TARGET))]
    else:
        assert judged == []
    for r in rows:
        assert r.ratio > 0
        assert "runs/s vectorised" in r.detail


def test_10_engine_agreement(perf):
    rows = perf.run(perf_cases.agreement_case(perf.scale))
    check(rows)
    *groups, total = rows
    assert total.method == "all"
    assert {(r.size, r.method) for r in groups} == {
        (s.problem, s.method) for s in perf_cases.engines.agreement_specs(perf.scale)
    }
    assert total.ratio == max(r.ratio for r in groups)
    assert math.isfinite(total.ratio)
    for r in rows:
        assert r.detail.startswith("bitwise ")


def test_12_the_sweep_end_to_end_per_engine(perf):
    (row,) = perf.run(perf_cases.sweep_engines_case(perf.scale))
    check([row])
    assert row.target == str(perf_cases.SWEEP_RATIO_TARGET)
    assert "same selection: yes" in row.detail
