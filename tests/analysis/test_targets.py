"""Time to target and performance profiles (`bench.analysis.targets`)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.analysis import targets


def target_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame(
        {
            "run_id": ["fast", "slow", "never", "boom"],
            "problem": "d",
            "dataset": "d",
            "model": "linear",
            "loss_star": 1.0,
        }
    )
    curves = {
        "fast": [10, 2, 1.005, 1.0],
        "slow": [10, 5, 3, 1.009],
        "never": [10, 5, 3, 2],
        "boom": [10, 1e3, math.inf],
    }
    rows = [
        {
            "run_id": rid,
            "epoch": e,
            "train_loss": loss,
            "elapsed_s": 0.5 * e,
            "problem": "d",
            "dataset": "d",
            "model": "linear",
        }
        for rid, losses in curves.items()
        for e, loss in enumerate(losses)
    ]
    return runs, pd.DataFrame(rows)


def test_time_to_target_first_hit_and_infinity():
    runs, epochs = target_tables()
    t = targets.time_to_target(runs, epochs, rel_tol=0.01).set_index("run_id")
    assert t.loc["fast", "epochs_to_target"] == 2
    assert t.loc["fast", "seconds_to_target"] == 1.0
    assert t.loc["slow", "epochs_to_target"] == 3
    assert math.isinf(t.loc["never", "epochs_to_target"])
    assert math.isinf(t.loc["never", "seconds_to_target"])
    assert math.isinf(t.loc["boom", "seconds_to_target"])  # diverged before reaching it
    assert t.loc["fast", "target_loss"] == pytest.approx(1.01)


def test_absolute_target_overrides_the_optimum():
    runs, epochs = target_tables()
    t = targets.time_to_target(runs, epochs, target=4.0).set_index("run_id")
    assert t.loc["never", "epochs_to_target"] == 2


def test_nonlinear_problems_use_the_best_loss_any_run_reached():
    runs, epochs = target_tables()
    runs["loss_star"] = math.nan
    ref = targets.reference_optimum(runs, epochs).iloc[0]
    assert ref["optimum"] == 1.0
    assert ref["optimum_kind"] == "best loss any run reached"


def test_performance_profile_counts_problems_within_tau():
    times = pd.DataFrame(
        {
            "problem": ["p1", "p1", "p2", "p2", "p3", "p3"],
            "method": ["a", "b", "a", "b", "a", "b"],
            "time": [1.0, 2.0, 3.0, 1.0, math.inf, 5.0],
        }
    )
    _, rho = targets.performance_profile(times, taus=[1.0, 2.0, 3.0, 100.0])
    assert list(rho["a"]) == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])  # never on p3
    assert list(rho["b"]) == pytest.approx([2 / 3, 1.0, 1.0, 1.0])
