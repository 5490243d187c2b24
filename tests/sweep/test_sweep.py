"""Fair comparisons: selection on the hold-out split, intervals, time to target, claims."""

from __future__ import annotations

import json
import math
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import cli
from bench.analysis import claims, stats, targets
from bench.analysis.tables import tables
from bench.errors import ConfigError
from bench.run.config import Problem, Suite
from bench.run.executors import run_all
from bench.store import CachedRuns, Store
from bench.sweep import SweepConfig, grid_specs, select
from bench.sweep.protocol import mark_edges, select_with_edges

# ----------------------------------------------------------------------------------------------
# Selection


def grid_table(points: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    """(hparams-lr, final train loss, final hold-out loss, status) rows for one method."""
    return pd.DataFrame(
        [
            {
                "problem": "d",
                "dataset": "d",
                "model": "linear",
                "method": "sgd",
                "hparams": json.dumps({"lr": lr}),
                "final_train_loss": train,
                "final_holdout_loss": hold,
                "status": status,
            }
            for lr, train, hold, status in points
        ]
    )


def test_selection_uses_the_holdout_loss_not_the_training_loss():
    grid = grid_table([(0.1, 1.0, 9.0, "ok"), (0.01, 5.0, 2.0, "ok"), (0.001, 8.0, 4.0, "ok")])
    chosen = select(grid).iloc[0]
    assert json.loads(chosen["hparams"]) == {"lr": 0.01}  # lowest hold-out, not lowest train
    assert chosen["score"] == 2.0


def test_diverged_points_never_win():
    grid = grid_table(
        [(1.0, math.nan, math.nan, "diverged"), (0.5, 0.1, 0.5, "diverged"), (0.1, 3, 3, "ok")]
    )
    chosen = select(grid).iloc[0]
    assert json.loads(chosen["hparams"]) == {"lr": 0.1}
    assert chosen["diverged_points"] == 2


def test_all_diverged_selects_nothing():
    grid = grid_table([(1.0, math.inf, math.inf, "diverged"), (0.5, math.nan, math.nan, "ok")])
    chosen = select(grid).iloc[0]
    assert chosen["hparams"] is None
    assert math.isinf(chosen["score"])


def test_selection_takes_the_median_over_selection_seeds():
    grid = pd.concat(
        [
            grid_table([(0.1, 1, 1.0, "ok"), (0.01, 1, 2.0, "ok")]),
            grid_table([(0.1, 1, 9.0, "ok"), (0.01, 1, 2.5, "ok")]),
            grid_table([(0.1, 1, 8.0, "ok"), (0.01, 1, 2.2, "ok")]),
        ]
    )
    assert json.loads(select(grid).iloc[0]["hparams"]) == {"lr": 0.01}


def test_grid_is_centred_on_the_suite_lr_and_skips_problems_without_holdout():
    suite = Suite(
        problems=(Problem("crops15", hparams={"lr": 1e-5}), Problem("crops5")),
        methods=("sgd", "momentum"),
        seeds=(0,),
    )
    config = SweepConfig(decades=1, points_per_decade=2, momentum=(0.1, 0.9), select_seeds=(0,))
    specs, skipped = grid_specs(suite, config)
    assert skipped == ["crops5"]
    sgd = sorted(s.lr for s in specs if s.method == "sgd")
    assert sgd == pytest.approx([1e-6, 10**-5.5, 1e-5, 10**-4.5, 1e-4])
    momentum = {(s.lr, s.hparams_dict["momentum"]) for s in specs if s.method == "momentum"}
    assert len(momentum) == 10
    assert all(s.holdout == 0.2 and s.impl == "scratch" for s in specs)
    assert len({s.seed for s in specs}) == 1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"decades": 0}, "decades must be > 0"),
        ({"momentum": [1.5]}, "momentum values must be in [0, 1)"),
        ({"seeds": []}, "at least one"),
        ({"colour": 1}, "unknown key colour"),
        ({"target": -1}, "target must be a loss > 0"),
    ],
)
def test_sweep_config_is_validated(table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        SweepConfig.from_mapping(table)


# ----------------------------------------------------------------------------------------------
# Intervals


def exact_bootstrap_median_interval(sample: list[float], level: float = 0.95):
    """Exact percentile interval of the bootstrap median for odd n, from the binomial law:
    P(median* <= x_(j)) = P(Binomial(n, j/n) >= (n + 1) / 2)."""
    x, n = sorted(sample), len(sample)
    half = (n + 1) // 2

    def cdf(j: int) -> float:
        p = j / n
        return sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(half, n + 1))

    alpha = (1 - level) / 2
    lo = next(x[j - 1] for j in range(1, n + 1) if cdf(j) >= alpha)
    hi = next(x[j - 1] for j in range(1, n + 1) if cdf(j) >= 1 - alpha)
    return lo, hi


def test_interval_matches_the_exact_bootstrap_on_a_known_sample():
    sample = [3.1, 0.4, 7.7, 2.2, 5.0, 1.3, 9.9, 4.4, 6.6]
    est = stats.median_ci(sample)
    assert est.median == 4.4
    # P(median* <= x_(2)) = P(Bin(9, 2/9) >= 5) = 0.030 >= 0.025 and P(median* <= x_(1)) = 0.001,
    # so the interval runs from the 2nd to (by symmetry) the 8th order statistic.
    assert exact_bootstrap_median_interval(sample) == (1.3, 7.7)
    assert (est.lo, est.hi) == (1.3, 7.7)
    assert est.n == 9


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_with_five_or_fewer_seeds_the_interval_is_the_range(n):
    sample = list(np.linspace(1.0, 2.0, n) ** 2)
    est = stats.median_ci(sample)
    assert (est.lo, est.hi) == (min(sample), max(sample))


def test_interval_handles_inf_and_nan():
    est = stats.median_ci([1.0, 2.0, math.inf, math.nan, 3.0])
    assert est.n == 4
    assert est.median == 2.5
    assert est.hi == math.inf
    assert stats.median_ci([]).n == 0
    one = stats.median_ci([7.0])
    assert (one.median, one.lo, one.hi) == (7.0, 7.0, 7.0)


def test_interval_is_reproducible():
    sample = np.random.default_rng(1).normal(size=12)
    assert stats.median_ci(sample) == stats.median_ci(sample)


# ----------------------------------------------------------------------------------------------
# Time to target and performance profiles


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


# ----------------------------------------------------------------------------------------------
# The notebooks' claims


def claim_runs(loss: dict[str, list[float]], time: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "label": label,
                "seed": s,
                "final_train_loss": v,
                "median_epoch_time_s": time[label] * (1 + 0.01 * s),
            }
            for label, values in loss.items()
            for s, v in enumerate(values)
        ]
    )


LOSS = {
    "gd": [100, 120, 90],
    "sgd": [2, 3, 2.5],
    "minibatch": [20, 25, 30],
    "momentum 0.1": [1.5, 2.5, 2],
    "momentum 0.9": [math.inf, 1, 1],
    "nesterov 0.1": [1.4, 2.4, 2.1],
    "nesterov 0.9": [5, 6, 7],
}
TIME = {
    "gd": 1e-4,
    "sgd": 4e-3,
    "minibatch": 1e-3,
    "momentum 0.1": 4e-3,
    "momentum 0.9": 4e-3,
    "nesterov 0.1": 4e-3,
    "nesterov 0.9": 4e-3,
}


def test_claims_are_computed_from_the_data():
    verdicts = {c.text: c.verdict for c in claims.evaluate(claim_runs(LOSS, TIME))}
    assert verdicts == {
        "SGD (batch 1) ends lower than full-batch GD after 100 epochs": "confirmed",
        "An SGD epoch costs more than a full-batch GD epoch": "confirmed",
        "Minibatch (batch 4) ends between GD and SGD": "confirmed",
        "A minibatch epoch costs between a GD and an SGD epoch": "confirmed",
        "Momentum 0.1 (batch 1) ends lower than plain SGD": "confirmed",
        # median 1 < 2.5, but one seed diverged: 2 of 3 seeds agree, below the 80% bar
        "Momentum 0.9 (batch 1) ends lower than plain SGD": "mixed",
        "Nesterov 0.1 (batch 1) ends lower than plain SGD": "confirmed",
        "Nesterov 0.9 (batch 1) ends lower than plain SGD": "not confirmed",
    }


def test_claims_table_carries_each_verdict():
    table = claims.to_frame(claims.evaluate(claim_runs(LOSS, TIME)))
    assert list(table.columns) == ["claim", "verdict", "evidence"]
    assert list(table["verdict"]).count("confirmed") == 6
    assert set(table["verdict"]) == {"confirmed", "mixed", "not confirmed"}


def test_flipping_the_data_flips_the_verdicts():
    flipped_loss = {**LOSS, "gd": [1, 1, 1], "minibatch": [200, 200, 200]}
    flipped_time = {**TIME, "gd": 1.0}
    result = {c.text: c for c in claims.evaluate(claim_runs(flipped_loss, flipped_time))}
    assert not result["SGD (batch 1) ends lower than full-batch GD after 100 epochs"].confirmed
    assert not result["An SGD epoch costs more than a full-batch GD epoch"].confirmed
    assert not result["Minibatch (batch 4) ends between GD and SGD"].confirmed
    assert not result["A minibatch epoch costs between a GD and an SGD epoch"].confirmed
    evidence = result["SGD (batch 1) ends lower than full-batch GD after 100 epochs"].evidence
    assert "sgd is lower in 0 of 3 seeds" in evidence


def test_claim_runs_reproduce_the_notebook_setting():
    specs = claims.claim_specs([0, 1])
    assert len(specs) == 2 * len(claims.CLAIM_RUNS)
    by_label = {label: spec for label, spec in specs if spec.seed == 0}
    assert by_label["gd"].batch_size == 15  # all 15 rows, no hold-out
    assert by_label["sgd"].batch_size == 1
    assert by_label["minibatch"].batch_size == 4
    assert by_label["nesterov 0.1"].hparams_dict == {"lr": 1e-5, "momentum": 0.1, "nesterov": True}
    assert {s.epochs for _, s in specs} == {100}
    assert {s.holdout for _, s in specs} == {0.0}


# ----------------------------------------------------------------------------------------------
# End to end


def test_sweep_cli_end_to_end(tmp_path: Path, capsys):
    cfg = tmp_path / "suite.toml"
    cfg.write_text(
        'methods = ["gd", "momentum"]\nepochs = 3\n'
        '[[problems]]\ndataset = "crops15"\n[problems.hparams]\nlr = 1e-5\n'
        '[[problems]]\ndataset = "crops5"\n'
        "[sweep]\ndecades = 1\npoints_per_decade = 1\nmomentum = [0.5]\nseeds = [7, 8]\n"
        "claims = false\nselect_seeds = [0]\nmax_extensions = 0\n"
    )
    out = tmp_path / "out"
    assert cli.main(["sweep", "--config", str(cfg), "--out", str(out)]) == 0
    assert "skipped (no hold-out): crops5" in capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert {
        "sweep.csv",
        "summary.csv",
        "selection.csv",
        "epochs.csv",
        "report.md",
        "sensitivity.png",
        "suboptimality.png",
        "profile.png",
        "generalization.png",
    } <= names
    sweep = pd.read_csv(out / "sweep.csv")
    assert set(sweep["phase"]) == {"grid", "tuned", "default"}
    grid = sweep[sweep["phase"] == "grid"]
    assert len(grid) == 2 * 3  # 2 methods x 3 learning rates x 1 momentum value x 1 seed
    assert set(sweep.loc[sweep["phase"] != "grid", "seed"]) == {7, 8}
    # The tuned reruns use exactly the setting with the lowest grid hold-out loss.
    for method, g in grid.groupby("method"):
        best = g.loc[g["final_holdout_loss"].idxmin(), "hparams"]
        tuned = sweep[(sweep["phase"] == "tuned") & (sweep["method"] == method)]
        assert set(tuned["hparams"]) == {best}
    text = (out / "report.md").read_text()
    for heading in (
        "## Protocol",
        "## Selected hyperparameters",
        "## Tuned results",
        "## Suboptimality",
        "## Time to target",
        "## Generalisation",
        "## Tuned vs library defaults",
        "## Findings",
    ):
        assert heading in text
    assert "least squares" in text


def test_sweep_without_any_holdout_is_a_one_line_error(tmp_path: Path, capsys):
    cfg = tmp_path / "suite.toml"
    cfg.write_text('methods = ["gd"]\n[[problems]]\ndataset = "crops5"\n')
    code = cli.main(["sweep", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no problem has a hold-out split" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------
# Grid edges


def test_a_selection_at_the_grid_edge_extends_the_grid_then_is_flagged():

    # lr 1e-8 on raw crops features barely moves in 3 epochs: the largest lr always wins, so
    # the grid grows upwards by max_extensions points and the pick is still flagged "high".
    suite = Suite(
        problems=(Problem("crops15", hparams={"lr": 1e-8}, epochs=3),),
        methods=("gd",),
        seeds=(0,),
    )
    config = SweepConfig(decades=0.5, points_per_decade=2, select_seeds=(0, 1), max_extensions=2)
    specs, _ = grid_specs(suite, config)
    results = run_all(specs)
    cached = CachedRuns(Store(":memory:"))
    selection, results, _ = select_with_edges(suite, config, results, cached)
    grid = tables(results)[1]
    lrs = sorted(set(grid["lr"]))
    assert lrs == pytest.approx([10**-8.5, 1e-8, 10**-7.5, 1e-7, 10**-6.5])
    assert grid.groupby("lr")["seed"].nunique().eq(2).all()  # every point on both seeds
    row = selection.iloc[0]
    assert row["at_edge"] == "high"
    assert row["extensions"] == 2
    assert json.loads(row["hparams"])["lr"] == pytest.approx(10**-6.5)
    # The same seed starts from the same weights at every grid point, extensions included.
    assert grid.groupby("seed")["init_hash"].nunique().eq(1).all()


def test_no_extension_when_the_selection_is_inside_the_grid():

    grid = pd.DataFrame(
        {
            "problem": "p",
            "method": "gd",
            "hparams": ["a", "b", "c"],
            "final_holdout_loss": [3.0, 1.0, 2.0],
            "status": "ok",
        }
    )
    sel = mark_edges(select(grid), grid, pd.Series([-1, 0, 1]))
    assert sel["at_edge"].tolist() == [""]
    sel = mark_edges(select(grid.assign(final_holdout_loss=[0.5, 1, 2])), grid,
                     pd.Series([-1, 0, 1]))  # fmt: skip
    assert sel["at_edge"].tolist() == ["low"]
