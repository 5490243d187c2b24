"""Cost per epoch: interleaved rounds, a measured noise floor, stalls that fall on every workload
alike. Deterministic: a fake clock gives each workload a scripted cost and injects stalls."""

from __future__ import annotations

import itertools
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import cli
from bench.analysis import cost as analysis
from bench.run import config, cost

# Scripted cost of one epoch: above cost.MIN_SAMPLE_S, so a sample is one epoch.
BASE_S = {"gd": 4e-3, "sgd": 48e-3, "minibatch": 16e-3}


def median_interval_bruteforce(n: int, level: float = 0.95) -> int:
    """The 1-based rank j of the interval [x_(j), x_(n+1-j)] from the binomial distribution."""
    j = 0
    while sum(math.comb(n, i) for i in range(j + 1)) / 2**n <= (1 - level) / 2:
        j += 1
    return j


@pytest.mark.parametrize("n", [1, 3, 5, 6, 10, 30, 60])
def test_median_interval_is_the_order_statistic_interval(n):
    x = [float(i) for i in range(n, 0, -1)]
    med, lo, hi = cost.median_interval(x)
    assert med == pytest.approx((n + 1) / 2)
    j = median_interval_bruteforce(n)
    if j == 0:
        assert (lo, hi) == (1.0, float(n))  # too few samples: their range
    else:
        assert (lo, hi) == (float(j), float(n + 1 - j))


class FakeClock:
    """A backend whose stopwatches return each workload's scripted cost (`costs`, in the order
    the workloads are built), `stall` x in the (round, position) slots `stalled` names; the
    host's CPU time is not used. The first two readings of each workload are its warm-up."""

    name = "cpu"
    torch_device = torch.device("cpu")
    cpu_time_meaningful = False

    def __init__(self, costs: list[float], stalled=lambda r, p: False, stall: float = 10.0):
        self.costs, self.stalled, self.stall = costs, stalled, stall
        self.made = itertools.count()
        self.readings = 0

    def synchronize(self) -> None:
        return None

    def stopwatch(self):
        clock, index = self, next(self.made)

        class Watch:
            def start(self) -> None:
                return None

            def stop(self) -> float:
                k = clock.readings - 2 * len(clock.costs)  # < 0: warm-up
                clock.readings += 1
                slot = divmod(k, len(clock.costs)) if k >= 0 else None
                stall = clock.stall if slot is not None and clock.stalled(*slot) else 1.0
                return clock.costs[index] * stall

        return Watch()


def specs(methods=("gd", "sgd", "minibatch"), seeds=(0, 1)):
    suite = config.apply_overrides(
        config.Suite(problems=(config.Problem("crops15", hparams={"lr": 1e-5}),)),
        config.Overrides(methods=methods, seeds=seeds, impls=("scratch", "torch"), epochs=3),
    )
    return suite.expand()


def fake_costs(runs):
    """The scripted cost of each workload in creation order: every run, then the copy."""
    out = [BASE_S[s.method] for s in runs]
    return [*out, out[0]]


def measured(clock: FakeClock, runs, **kw) -> pd.DataFrame:
    rows = cost.measure(runs, cost.CostConfig(**kw), backend_for=lambda _: clock)
    return pd.DataFrame(rows)


def test_rounds_time_every_workload_once_in_a_shuffled_order():
    runs = specs()
    clock = FakeClock(fake_costs(runs))
    table = measured(clock, runs, min_rounds=4, max_rounds=4)
    assert len(table) == 4 * (len(runs) + 1)  # every run and the copy, each round
    orders = [tuple(g.sort_values("position")["run_id"]) for _, g in table.groupby("round")]
    assert len(set(orders)) > 1  # the order changes from round to round
    assert set(table["cost_s"]) == set(BASE_S.values())
    assert (
        table.groupby("round")["position"].apply(sorted).map(list).tolist()
        == [list(range(len(runs) + 1))] * 4
    )


def test_constant_costs_stop_at_the_minimum_of_rounds():
    runs = specs()
    table = measured(FakeClock(fake_costs(runs)), runs, min_rounds=5, max_rounds=50)
    assert table["round"].max() == 4  # every interval is already tight


def test_stalls_do_not_move_costs_ratios_or_the_floor():
    runs = specs()
    # A busy machine: two whole rounds stalled, and the first half of three other rounds: no
    # workload is stalled in half of its rounds.
    clock = FakeClock(fake_costs(runs), lambda r, p: r in (0, 3) or (r in (5, 8, 11) and p < 6))
    table = measured(clock, runs, min_rounds=12, max_rounds=12, rel_width=0.0)
    assert (table["cost_s"] > 2 * table["cost_s"].min()).any()  # stalls were injected
    per_run = analysis.per_run(table).set_index("run_id")
    for spec in runs:
        assert per_run.loc[spec.run_id, "cost_s"] == BASE_S[spec.method]
    frame = pd.DataFrame(
        [{"run_id": s.run_id, "method": s.method, "impl": s.impl, "seed": s.seed,
          "hparams": s.hparams_json, "schedule": s.schedule, "batch_size": s.batch_size,
          "dtype": s.dtype} for s in runs]
    )  # fmt: skip
    floor = analysis.noise_floor(table, frame)
    assert floor["floor"].tolist() == [1.0]  # identical workloads, identical costs
    assert floor["twin_pairs"].tolist() == [6]
    sgd = next(s for s in runs if s.method == "sgd")
    gd = next(s for s in runs if s.method == "gd" and s.seed == sgd.seed and s.impl == sgd.impl)
    assert analysis.paired(table, sgd.run_id, gd.run_id) == pytest.approx(12.0)


def test_contention_in_every_round_leaves_the_paired_ratios_exact():
    runs = specs()
    clock = FakeClock(fake_costs(runs), lambda r, p: True, stall=3.0)  # a machine busy throughout
    table = measured(clock, runs, min_rounds=6, max_rounds=6)
    per_run = analysis.per_run(table).set_index("run_id")
    for spec in runs:  # every cost inflated alike
        assert per_run.loc[spec.run_id, "cost_s"] == pytest.approx(3 * BASE_S[spec.method])
    sgd = next(s for s in runs if s.method == "sgd")
    gd = next(s for s in runs if s.method == "gd" and s.seed == sgd.seed and s.impl == sgd.impl)
    assert analysis.paired(table, sgd.run_id, gd.run_id) == pytest.approx(12.0)


def test_a_floor_names_no_difference_inside_it():
    assert not analysis.beyond_floor(1.04, 1.05)
    assert not analysis.beyond_floor(1 / 1.04, 1.05)
    assert analysis.beyond_floor(1.06, 1.05)
    assert not analysis.beyond_floor(math.nan, 1.05)


# ----------------------------------------------------------------------------------------------
# Through the CLI

ARGV = ["--datasets", "crops15", "--standardize", "--methods", "gd,sgd", "--seeds", "0,1",
        "--epochs", "3", "--no-parity"]  # fmt: skip


def test_a_run_measures_its_costs_and_the_report_rebuild_keeps_them(tmp_path):
    out = tmp_path / "o"
    assert cli.main(["run", *ARGV, "--timing-budget", "2", "--out", str(out)]) == 0
    costs = pd.read_csv(out / "costs.csv")
    runs = pd.read_csv(out / "runs.csv")
    assert set(costs["run_id"]) == set(runs["run_id"])
    assert (runs["cost_s"] > 0).all()
    assert (runs["cost_rounds"] >= 5).all()
    epochs = pd.read_csv(out / "epochs.csv")
    merged = epochs.merge(runs[["run_id", "cost_s"]], on="run_id")
    assert merged["elapsed_s"].to_numpy() == pytest.approx(
        (merged["epoch"] * merged["cost_s"]).to_numpy(), rel=1e-6
    )
    before = runs[["run_id", "cost_s"]].to_csv()
    assert cli.main(["report", str(out)]) == 0
    assert pd.read_csv(out / "runs.csv")[["run_id", "cost_s"]].to_csv() == before


def test_timing_budget_zero_measures_nothing(tmp_path):
    out = tmp_path / "o"
    assert cli.main(["run", *ARGV, "--timing-budget", "0", "--out", str(out)]) == 0
    assert not (out / "costs.csv").exists()
    assert "cost_s" not in pd.read_csv(out / "runs.csv")


def test_a_reused_run_keeps_how_it_was_timed(tmp_path):
    out = tmp_path / "o"
    assert cli.main(["run", *ARGV, "--timing-budget", "0", "--out", str(out)]) == 0
    with sqlite3.connect(out / "store.sqlite") as db:  # as if a Dask command had stored them
        db.execute("UPDATE runs SET timed_by = 'dask', parallel_runs = 2")
    argv = ["run", *ARGV, "--timing-budget", "0", "--executor", "serial", "--out", str(out)]
    assert cli.main(argv) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["timed_by"]) == {"dask"}
    assert set(runs["parallel_runs"]) == {2}
    with sqlite3.connect(out / "store.sqlite") as db:  # one run computed again, serially
        db.execute("DELETE FROM runs WHERE method = 'sgd' AND seed = 1")
    assert cli.main(argv) == 0
    report = " ".join((out / "report.md").read_text().split())
    assert "the runs' own epoch times mix how they were taken (" in report


def test_failed_runs_are_not_measured(tmp_path: Path):
    (tmp_path / "bad.py").write_text(
        "import torch\n\nclass Bad(torch.optim.SGD):\n    def step(self, closure=None):\n"
        "        raise RuntimeError('no')\n"
    )
    out = tmp_path / "o"
    argv = ["run", *ARGV, "--methods", f"gd,{tmp_path}/bad.py:Bad", "--hp", "lr=0.01",
            "--timing-budget", "1", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    costs = pd.read_csv(out / "costs.csv")
    assert set(costs["method"]) == {"gd"}
