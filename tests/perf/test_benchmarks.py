"""The performance benchmarks of `nox -s perf` (see bench/perf/cases/ for what each times).

Under `nox -s tests` (benchmarks disabled) each runs one round at small size: the check is
that the code runs and its rows are well formed. Targets are recorded in perf.csv, not
asserted: a missed target is a finding to report, not a broken test.
"""

from __future__ import annotations

import math

import pytest

import optimizers
from bench.perf import cases as perf_cases
from bench.perf.timing import COLUMNS, Target
from tests.devices import DEVICES


def check(rows) -> None:
    assert rows
    for r in rows:
        assert r.rounds >= 1
        assert math.isfinite(r.median), r
        assert r.median > 0, r
        assert r.met in ("yes", "no", "")
        if r.target:
            assert (r.met == "yes") == Target.parse(r.target).met(r.ratio), r
        else:
            assert r.met == ""
        assert len(COLUMNS) == len(r.__dataclass_fields__)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", list(perf_cases.PARAM_SETS))
@pytest.mark.parametrize("method", optimizers.names())
def test_1_optimizer_step(perf, method, size, device):
    rows = perf.run(perf_cases.step_case(method, size, device, perf.scale))
    check(rows)
    assert {r.impl for r in rows} == {"scratch", "torch-foreach", "torch-fused"}
    assert sum(bool(r.target) for r in rows) == 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("which", ["crops15", "synthetic"])
def test_2_harness_overhead(perf, which, device):
    check(perf.run(perf_cases.harness_case(which, device, perf.scale)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_size", sorted(perf_cases.DATALOADER_TARGETS))
def test_3_batching_vs_dataloader(perf, batch_size, device):
    (row,) = perf.run(perf_cases.dataloader_case(batch_size, device, perf.scale))
    check([row])
    if row.rounds == 1:  # a speed-up: DataLoader time / runner time
        assert row.ratio == pytest.approx(row.baseline_median / row.median)


@pytest.mark.parametrize("device", DEVICES)
def test_4_gd_vs_matmuls(perf, device):
    check(perf.run(perf_cases.gd_limit_case(device, perf.scale)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["gd", "minibatch"])
def test_5_scaling(perf, method, device):
    rows = perf.run(perf_cases.scaling_case(method, device, perf.scale))
    check(rows)
    assert len(rows) == len(perf.scale.scaling_ns) + 1
    assert rows[-1].target
    assert math.isfinite(rows[-1].ratio)


def test_6_memory(perf):
    (row,) = perf.run(perf_cases.memory_case(perf.scale))
    check([row])
    assert row.unit == "bytes"
    assert row.baseline_median == perf.scale.memory_n * 101 * 4
