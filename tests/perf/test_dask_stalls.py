"""perf cases 7 (a sweep on 2 Dask workers vs serial) and 8 (the disturbed-epoch detector on
injected stalls). Under `nox -s tests` each runs once at SMALL size: the check is that the code
runs, the rows are well formed and the two sweeps agree bitwise; targets are recorded in
perf.csv (`met` yes/no), never asserted."""

from __future__ import annotations

import pytest

from bench.perf import cases as perf_cases
from tests.perf.test_benchmarks import check

pytest.importorskip("distributed", reason="case 7 runs a Dask LocalCluster")


def test_7_dask_sweep_vs_serial(perf):
    (row,) = perf.run(perf_cases.dask_sweep_case(perf.scale))
    check([row])
    assert row.target == str(perf_cases.DASK_TARGET)
    assert row.ratio == pytest.approx(row.median / row.baseline_median)  # one round each
    assert "losses bitwise equal: yes" in row.detail


def test_8_stall_detector(perf):
    hits, others = perf.run(perf_cases.stall_case(perf.scale))
    check([hits, others])
    assert hits.target == str(perf_cases.HIT_TARGET)
    assert 0 <= others.ratio <= 1
    if perf.scale.name == "small":  # 4 runs x 13 epochs: stalls at epochs 5 and 12
        assert hits.detail.split(" stalls flagged")[0].endswith(" of 8")
        assert others.detail.split(" flagged")[0].endswith(" of 44")
