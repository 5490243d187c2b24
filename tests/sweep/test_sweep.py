"""The sweep protocol: selection on the hold-out split, grid edges, the sweep end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bench import cli
from bench.analysis.tables import tables
from bench.errors import ConfigError
from bench.run.config import Problem, Suite
from bench.run.executors import run_all
from bench.store import CachedRuns, Store
from bench.sweep import SweepConfig, grid_specs, select
from bench.sweep.protocol import claims_wanted, mark_edges, select_with_edges, where

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
        ({"rel_tol": 1.5}, "rel_tol must be in [0, 1)"),
        ({"strict_tol": -1}, "strict_tol must be in [0, 1)"),
        ({"claims": "yes"}, "claims must be true or false"),
    ],
)
def test_sweep_config_is_validated(table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        SweepConfig.from_mapping(table)


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
        "## Tuned vs registered defaults",
        "## Findings",
    ):
        assert heading in text
    assert "least squares" in text
    assert "every run of the sweep uses scratch on cpu" in text
    assert "The notebooks' claims: turned off" in text  # claims = false in the suite
    assert set(sweep["impl"]) == {"scratch"}


def test_a_sweep_runs_the_implementation_and_device_it_is_given(tmp_path: Path):
    """`--impl torch`: every phase (grid, reruns) runs torch.optim, and the report says so."""
    out = tmp_path / "out"
    argv = ["sweep", "--datasets", "crops15", "--methods", "gd,momentum", "--impl", "torch",
            "--devices", "cpu", "--epochs", "2", "--decades", "0.5", "--points-per-decade", "1",
            "--select-seeds", "0", "--seeds", "1,2", "--no-claims", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    sweep = pd.read_csv(out / "sweep.csv")
    assert set(sweep["impl"]) == {"torch"}
    assert set(sweep["device"]) == {"cpu"}
    assert "every run of the sweep uses torch on cpu" in (out / "report.md").read_text()


def test_where_is_the_suites_first_implementation_and_device():
    suite = Suite(problems=(Problem("crops15"),), methods=("gd",), impls=("torch", "scratch"),
                  devices=("cpu",))  # fmt: skip
    assert where(suite) == ("torch", "cpu")
    specs, _ = grid_specs(suite, SweepConfig(decades=0.5, points_per_decade=1, select_seeds=(0,)))
    assert {(s.impl, s.device) for s in specs} == {("torch", "cpu")}


@pytest.mark.parametrize(
    ("datasets", "claims", "wanted"),
    [
        (("crops15", "diabetes"), None, True),  # the notebooks' problem is in the sweep
        (("diabetes",), None, False),  # a user's own data: no crops15 claims
        (("diabetes",), True, True),  # on request
        (("crops15",), False, False),
    ],
)
def test_the_notebooks_claims_run_only_with_their_problem_or_on_request(datasets, claims, wanted):
    suite = Suite(problems=tuple(Problem(d) for d in datasets), methods=("gd",))
    assert claims_wanted(suite, SweepConfig(claims=claims)) is wanted


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
