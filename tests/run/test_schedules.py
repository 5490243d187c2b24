"""Learning-rate schedules: the built-ins agree with torch.optim.lr_scheduler step for step,
imported schedulers run as given, and `--schedule` works in `run`, `sweep` and suite files with
the per-epoch `lr` column."""

from __future__ import annotations

import math
import sqlite3
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.optim import lr_scheduler as L

from bench import cli
from bench.errors import ConfigError
from bench.run import schedules

T = 50


def rates(make, total: int = T) -> list[float]:
    """The rate before each of `total` steps, and after the last one."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make(opt)
    out = []
    for t in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        if t < total:
            opt.step()
            sched.step()
    return out


def _warm(opt, w, then):
    return L.SequentialLR(opt, [L.LinearLR(opt, 1 / w, 1.0, total_iters=w - 1), then], [w])


TORCH = {
    "cosine": lambda o: L.CosineAnnealingLR(o, T_max=T),
    "cosine:final=0.1": lambda o: L.CosineAnnealingLR(o, T_max=T, eta_min=0.01),
    "linear": lambda o: L.LinearLR(o, 1.0, 0.0, total_iters=T),
    "linear:final=0.25": lambda o: L.LinearLR(o, 1.0, 0.25, total_iters=T),
    "step:step_size=7,gamma=0.5": lambda o: L.StepLR(o, 7, 0.5),
    "cosine:warmup=5": lambda o: _warm(o, 5, L.CosineAnnealingLR(o, T_max=T - 5)),
    "linear:warmup=0.1,final=0.2": lambda o: _warm(o, 5, L.LinearLR(o, 1, 0.2, total_iters=T - 5)),
    "constant:warmup=10": lambda o: _warm(o, 10, L.ConstantLR(o, 1.0, total_iters=0)),
}  # fmt: skip


@pytest.mark.parametrize("text", list(TORCH))
def test_builtin_schedules_agree_with_torch_step_for_step(text):
    ours = rates(lambda o: schedules.parse(text).build(o, T))
    ref = rates(TORCH[text])
    # torch's schedulers update the rate recursively (chainable form); ours is the closed form:
    # equal up to the rounding of the recursion.
    assert ours == pytest.approx(ref, rel=1e-13, abs=1e-17)
    assert len(set(ours)) > 1 or text.startswith("constant")


def test_constant_is_no_scheduler_and_canonical_text_is_stable():
    assert schedules.parse("constant").build(torch.optim.SGD([torch.zeros(1)], lr=1), 10) is None
    assert schedules.canonical("cosine: final=0.1 : warmup=3") == "cosine:final=0.1,warmup=3"
    path = "torch.optim.lr_scheduler:StepLR:step_size=3,gamma=0.5"
    assert schedules.canonical(path) == "torch.optim.lr_scheduler:StepLR:gamma=0.5,step_size=3"


def test_an_imported_scheduler_takes_its_keywords_and_total():
    text = "torch.optim.lr_scheduler:OneCycleLR:max_lr=0.1,total_steps=total"
    ours = rates(lambda o: schedules.parse(text).build(o, T))
    ref = rates(lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=T))
    assert ours == ref


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cosin", "unknown schedule 'cosin'; known: constant, cosine, linear, step"),
        ("cosine:warmup=1.5", "warmup is steps (an integer) or a fraction in (0, 1)"),
        ("cosine:eta=1", "takes final, warmup; not 'eta'"),
        ("cosine:final=2", "final must be in [0, 1]"),
        ("step:gamma=0", "gamma must be in (0, 1]"),
        ("cosine:final", "expected key=value"),
        ("torch.optim.lr_scheduler:ReduceLROnPlateau", "steps on a metric"),
        ("torch.optim.lr_scheduler:StepLR", "missing 1 required positional argument"),
        ("torch.optim.lr_scheduler:StepLR:step=3", "StepLR does not take step"),
        ("torch.optim:SGD", "is not a torch.optim.lr_scheduler.LRScheduler"),
        ("no_such_module_xyz:Sched", "cannot import"),
    ],
)
def test_bad_schedules_are_one_line_errors(text, message):
    with pytest.raises(ConfigError) as info:
        schedules.parse(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------
# Through the CLI

BASE = ["--datasets", "crops15", "--standardize", "--seeds", "0", "--epochs", "4", "--impl",
        "scratch", "--no-parity"]  # fmt: skip


def _epochs(out: Path) -> pd.DataFrame:
    with sqlite3.connect(out / "store.sqlite") as db:
        return pd.read_sql("SELECT * FROM epochs", db)


def test_run_schedules_per_step_and_reports_the_rate_of_each_epoch(tmp_path):
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", "gd,minibatch,adam", "--lr", "0.1", "--schedule", "cosine",
            "--hp", "adam.schedule=torch.optim.lr_scheduler:StepLR:step_size=3:gamma=0.5",
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    epochs = _epochs(out)
    steps = {"gd": 1, "minibatch": 3, "adam": 3}  # 12 training rows, batches of 4
    for method, per_epoch in steps.items():
        rows = epochs[epochs["method"] == method].sort_values("epoch")
        done = rows["epoch"] * per_epoch
        if method == "adam":
            expected = 0.1 * 0.5 ** (done // 3)
        else:
            expected = 0.5 * 0.1 * (1 + (math.pi * done / (4 * per_epoch)).map(math.cos))
        assert list(rows["lr"]) == pytest.approx(list(expected), rel=1e-12, abs=1e-15), method
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["lr"]) == {0.1}  # the peak rate: what the spec and a sweep set
    assert set(runs.loc[runs["method"] == "gd", "schedule"]) == {"cosine"}


def test_a_schedule_changes_the_run_key_and_the_numbers(tmp_path):
    out = tmp_path / "o"
    for schedule in ("constant", "linear"):
        argv = ["run", *BASE, "--methods", "gd", "--lr", "0.1", "--schedule", schedule,
                "--out", str(out)]  # fmt: skip
        assert cli.main(argv) == 0
    with sqlite3.connect(out / "store.sqlite") as db:
        finals = dict(db.execute("SELECT schedule, final_train_loss FROM runs"))
    assert set(finals) == {"constant", "linear"}
    assert finals["constant"] != finals["linear"]


def test_suite_files_set_schedules_per_suite_problem_and_method(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(
        textwrap.dedent(
            """
            methods = ["gd", "minibatch", "adam"]
            seeds = [0]
            impl = "scratch"
            epochs = 2
            schedule = "linear"
            [hparams]
            lr = 0.05
            adam = { schedule = "step:step_size=2" }
            [[problems]]
            dataset = "crops15"
            schedule = "cosine:warmup=1"
            [[problems]]
            dataset = "sales15"
            """
        )
    )
    out = tmp_path / "o"
    assert cli.main(["run", "--config", str(suite), "--no-parity", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "runs.csv")
    got = {(r.problem, r.method): r.schedule for r in runs.itertuples()}
    assert got[("crops15", "gd")] == "cosine:warmup=1"  # the problem's beats the suite's
    assert got[("sales15", "gd")] == "linear"
    assert got[("crops15", "adam")] == got[("sales15", "adam")] == "step:step_size=2"


def test_sweep_scales_the_peak_of_a_schedule(tmp_path):
    out = tmp_path / "s"
    argv = ["sweep", "--datasets", "crops15", "--standardize", "--methods", "minibatch",
            "--schedule", "cosine", "--lr", "0.01", "--epochs", "2", "--seeds", "0",
            "--select-seeds", "0", "--decades", "1", "--points-per-decade", "1", "--no-claims",
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    epochs = _epochs(out)
    grid = epochs[epochs["phase"] == "grid"] if "phase" in epochs else epochs
    first = grid[grid["epoch"] == 0].groupby("run_id")["lr"].first()
    assert {round(v, 12) for v in first} >= {0.001, 0.01, 0.1}  # peaks on the grid
    last = grid[grid["epoch"] == 2]["lr"]
    assert (last.abs() < 1e-15).all()  # each run's cosine ends at 0


def test_abbreviated_flags_are_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:  # argparse's exit, with optbench's one line
        cli.main(["run", *BASE, "--sched", "cosine", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: unrecognized arguments: --sched cosine")
    assert not (tmp_path / "o").exists()
