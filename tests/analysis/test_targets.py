"""Targets on the relative gap, optima, time to target, performance profiles
(`bench.analysis.targets`)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.analysis import targets


def target_tables(star: float = 1.0, dataset: str = "d") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four runs from loss 10 (epoch 0) with optimum `star`."""
    runs = pd.DataFrame(
        {
            "run_id": ["fast", "slow", "never", "boom"],
            "problem": "d",
            "dataset": dataset,
            "model": "linear",
            "seed": 0,
            "loss_star": star,
            "status": ["ok", "ok", "ok", "diverged"],
        }
    )
    curves = {
        "fast": [10, 2, 1.05, 1.005],
        "slow": [10, 5, 3, 1.08],
        "never": [10, 5, 3, 2],
        "boom": [10, 1e3, math.inf],
    }
    rows = [
        {"run_id": rid, "epoch": e, "train_loss": loss, "elapsed_s": 0.5 * e}
        for rid, losses in curves.items()
        for e, loss in enumerate(losses)
    ]
    runs["final_train_loss"] = [c[-1] for c in curves.values()]
    return runs, pd.DataFrame(rows)


def test_targets_are_relative_gaps_from_the_shared_start():
    """gap = (L - L*) / (L0 - L*): with L0 = 10 and L* = 1, gap <= 1e-2 means L <= 1.09 and
    gap <= 1e-3 means L <= 1.009."""
    runs, epochs = target_tables()
    t = targets.time_to_target(runs, epochs).set_index("run_id")
    assert t.loc["fast", "target_loss"] == pytest.approx(1.09)
    assert t.loc["fast", "strict_target_loss"] == pytest.approx(1.009)
    assert (t.loc["fast", "epochs_to_target"], t.loc["fast", "seconds_to_target"]) == (2, 1.0)
    assert t.loc["fast", "epochs_to_strict"] == 3
    assert t.loc["slow", "epochs_to_target"] == 3
    assert math.isinf(t.loc["slow", "epochs_to_strict"])
    assert math.isinf(t.loc["never", "epochs_to_target"])
    assert math.isinf(t.loc["never", "seconds_to_target"])
    assert math.isinf(t.loc["boom", "seconds_to_target"])  # diverged before reaching it
    assert t.loc["never", "final_gap"] == pytest.approx(1 / 9)
    assert math.isinf(t.loc["boom", "final_gap"])


def test_a_zero_optimum_is_a_reachable_target():
    """L* = 0 (a 2-D function): "within 1% of L*" would mean L <= 0; the relative gap does not."""
    runs, epochs = target_tables(star=0.0)
    t = targets.time_to_target(runs, epochs).set_index("run_id")
    assert t.loc["fast", "target_loss"] == pytest.approx(0.1)
    assert t.loc["never", "epochs_to_target"] == math.inf
    epochs.loc[epochs["run_id"] == "never", "train_loss"] = [10, 5, 0.5, 0.05]
    t = targets.time_to_target(runs, epochs).set_index("run_id")
    assert t.loc["never", "epochs_to_target"] == 3


def test_absolute_target_overrides_the_gap_and_has_no_strict_target():
    runs, epochs = target_tables()
    t = targets.time_to_target(runs, epochs, target=4.0).set_index("run_id")
    assert t.loc["never", "epochs_to_target"] == 2
    assert t["epochs_to_strict"].isna().all()


def test_without_a_known_optimum_each_seed_takes_its_best_run():
    runs, epochs = target_tables()
    runs["loss_star"] = math.nan
    other = runs.assign(run_id=runs["run_id"] + "-s1", seed=1)
    e1 = epochs.assign(run_id=epochs["run_id"] + "-s1", train_loss=epochs["train_loss"] * 2)
    runs, epochs = pd.concat([runs, other]), pd.concat([epochs, e1])
    star = targets.run_optimum(runs, epochs)
    assert star["fast"] == 1.005  # seed 0's lowest loss
    assert star["fast-s1"] == 2.01  # seed 1's own
    ref = targets.reference_optimum(runs, epochs).iloc[0]
    assert ref["optimum_kind"] == targets.NONE_KNOWN
    assert not ref["known"]


@pytest.mark.parametrize(
    ("dataset", "kind"),
    [
        ("crops15", "least squares"),
        ("quadratic_deep", "θ* = mean of the training points"),
        ("rosenbrock", "the function's minimum"),
    ],
)
def test_the_optimum_is_named_by_its_task(dataset, kind):
    runs, epochs = target_tables(dataset=dataset)
    assert targets.reference_optimum(runs, epochs).iloc[0]["optimum_kind"] == kind


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
