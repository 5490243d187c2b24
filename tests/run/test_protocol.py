"""The training protocol around any optimizer and model: closures, failures as outcomes, run
isolation, wrappers, factories and parameter groups, each checked against a hand computation."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench import cli
from bench.run.data import problem_data
from bench.run.runner import shuffle_seed
from bench.run.tasks.base import initial_weights

BASE = ["--datasets", "crops15", "--standardize", "--seeds", "0", "--epochs", "3", "--no-parity"]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _runs(out: Path) -> pd.DataFrame:
    with sqlite3.connect(out / "store.sqlite") as db:
        return pd.read_sql("SELECT * FROM runs", db)


def _epochs(out: Path) -> pd.DataFrame:
    with sqlite3.connect(out / "store.sqlite") as db:
        return pd.read_sql("SELECT * FROM epochs ORDER BY key, epoch", db)


def _one_error(capsys, argv: list[str], out: Path, message: str) -> None:
    assert cli.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# Closures

PROBE = """
import torch


class Probe(torch.optim.Optimizer):
    '''Moves p through `.data` (no version bump) and asks the closure again there: the second
    evaluation must be at the moved point, or the step uses the first point's gradient.'''

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure):
        closure()
        for group in self.param_groups:
            for p in group["params"]:
                p.data.add_(p.grad, alpha=-group["lr"])
        closure()  # the gradient at the moved point
        for group in self.param_groups:
            for p in group["params"]:
                p.data.add_(p.grad, alpha=-group["lr"])
"""


def test_a_closure_evaluates_again_wherever_the_optimizer_moved_the_parameters(tmp_path):
    path = _write(tmp_path, "probe.py", PROBE)
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", f"{path}:Probe", "--hp", "probe.lr=0.01,probe.batch=full"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    rows = _epochs(out)
    assert list(rows["evals"]) == [0, 2, 2, 2]  # two evaluations per (full-batch) step
    data = problem_data("crops15", None, None, 0.2, 0, True, "regression")
    X = torch.tensor(data.X_train, dtype=torch.float32)
    Y = torch.tensor(data.Y_train, dtype=torch.float32)
    model = torch.nn.Linear(3, 2)
    model.load_state_dict(initial_weights("crops15", "linear", 3, 2, 0))
    expected = [F.mse_loss(model(X), Y).item()]
    for _ in range(3):  # two plain gradient steps per epoch, each at its own point
        for _ in range(2):
            model.zero_grad()
            F.mse_loss(model(X), Y).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-0.01)
        expected.append(F.mse_loss(model(X), Y).item())
    assert list(rows["train_loss"]) == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# Failures are outcomes: named from numbers, never from an exception's text

FAILING = """
import sys
import torch


class Fails(torch.optim.SGD):
    def step(self, closure=None):
        if self.state.get("calls", 0) == 4:
            raise RuntimeError("value cannot be converted to type float without overflow")
        self.state["calls"] = self.state.get("calls", 0) + 1
        return super().step(closure)


class Exits(torch.optim.SGD):
    def step(self, closure=None):
        sys.exit(0)
"""


def test_a_plugin_exception_is_failed_not_diverged_and_the_others_go_on(tmp_path):
    path = _write(tmp_path, "failing.py", FAILING)
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", f"gd,{path}:Fails,{path}:Exits", "--impl", "scratch",
            "--hp", "lr=0.01", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0  # SystemExit(0) inside a plug-in ends its run, not optbench
    runs = _runs(out).set_index("method")
    assert runs.loc["gd", "status"] == "ok"
    assert runs.loc["fails", "status"] == "failed"  # the text says overflow; numbers do not
    assert "RuntimeError: value cannot be converted" in runs.loc["fails", "error"]
    assert runs.loc["exits", "status"] == "failed"
    assert runs.loc["exits", "error"].startswith("SystemExit")
    epochs = _epochs(out)
    fails = epochs[epochs["method"] == "fails"]
    assert list(fails["epoch"]) == [0, 1]  # epochs 0-1 finished; the 5th step raised in epoch 2
    assert list(fails["status"]) == ["ok", "failed"]  # the last row carries how the run ended
    report = " ".join((out / "report.md").read_text().split())
    assert "Failed runs: fails on crops15 (1 of 1: RuntimeError: value cannot be" in report
    assert "exits on crops15 (1 of 1: SystemExit: 0)" in report


def test_torch_overflow_of_a_hyperparameter_is_diverged(tmp_path):
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", "gd", "--impl", "scratch", "--lr", "1e39"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert set(_runs(out)["status"]) == {"diverged"}


# ----------------------------------------------------------------------------------------------
# Runs are isolated; model shapes are checked before anything is written

MODELS = """
import torch


class Scales(torch.nn.Linear):
    def forward(self, x):
        x.mul_(2.0)  # writes into the data it is given
        return super().forward(x)


def writes_input(d, k):
    return Scales(d, k)


def flat(d, k):
    return torch.nn.Sequential(torch.nn.Linear(d, 1), torch.nn.Flatten(0))


def raises(d, k):
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise ValueError("no forward here")
    return Broken()
"""


def test_a_model_writing_into_its_data_fails_alone_and_the_next_run_sees_clean_data(tmp_path):
    path = _write(tmp_path, "models.py", MODELS)
    out, alone = tmp_path / "o", tmp_path / "alone"
    argv = ["run", *BASE, "--impl", "scratch", "--hp", "lr=0.001"]
    model = ["--model", f"{path}:writes_input"]
    assert cli.main([*argv, *model, "--methods", "gd,adam", "--out", str(out)]) == 0
    runs = _runs(out).set_index("method")
    assert set(runs["status"]) == {"failed"}
    assert "wrote into its input data" in runs.loc["gd", "error"]
    assert cli.main([*argv, "--methods", "adam", "--out", str(alone)]) == 0
    clean = tmp_path / "clean"
    assert cli.main([*argv, "--methods", "gd,adam", "--out", str(clean)]) == 0  # same process
    adam = _epochs(clean)[lambda e: e["method"] == "adam"]["train_loss"]
    assert list(adam) == list(_epochs(alone)["train_loss"])


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("flat", "output has shape (2,) for targets of shape (2, 2)"),
        ("raises", "it raised ValueError: no forward here"),
    ],
)
def test_model_shape_and_forward_errors_are_one_line_before_the_folder(
    factory, message, tmp_path, capsys
):
    path = _write(tmp_path, "models.py", MODELS)
    argv = ["run", *BASE, "--model", f"{path}:{factory}", "--methods", "gd"]
    _one_error(capsys, argv, tmp_path / "o", message)


# ----------------------------------------------------------------------------------------------
# Wrappers, factories, parameter groups, plug-in defaults

FACTORY = """
import torch


def plain_sgd(params, lr=0.01):
    return torch.optim.SGD(params, lr=lr, foreach=False)


def not_an_optimizer(params, lr=0.01):
    return 42
"""


def test_a_factory_function_is_a_method(tmp_path):
    path = _write(tmp_path, "factory.py", FACTORY)
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", f"minibatch,mine={path}:plain_sgd", "--impl", "torch",
            "--hp", "lr=0.01", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    epochs = _epochs(out)
    mine = list(epochs[epochs["method"] == "mine"]["train_loss"])
    assert mine == list(epochs[epochs["method"] == "minibatch"]["train_loss"])  # torch's SGD


@pytest.mark.parametrize(
    ("methods", "hp", "message"),
    [
        ("la=pytorch_optimizer:Lookahead", "lr=0.01", "wraps an optimizer; name the inner method"),
        ("la=pytorch_optimizer:Lookahead", "la.optimizer=nope", "unknown method 'nope'"),
        ("gd", "gd.optimizer=adam", "does not take optimizer"),
        ("gd", "gd.schedule=cosin", "unknown schedule 'cosin'"),
        ("adamw", "adamw.groups=everything", "unknown preset 'everything'"),
        ("adamw", 'adamw.groups={"bias":{"momentum":0.9}}', "has no hyperparameter 'momentum'"),
        ("factory:not_an_optimizer", "lr=0.01", "returned a int, not a torch.optim.Optimizer"),
    ],
)
def test_bad_wrappers_schedules_groups_are_one_error_line(methods, hp, message, tmp_path, capsys):
    _write(tmp_path, "factory.py", FACTORY)
    methods = methods.replace("factory:", f"{tmp_path}/factory.py:")
    argv = ["run", *BASE, "--methods", methods, "--hp", hp]
    _one_error(capsys, argv, tmp_path / "o", message)


def test_no_weight_decay_on_biases_and_a_group_learning_rate(tmp_path):
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", "adamw", "--impl", "scratch", "--hp",
            'lr=0.01,adamw.weight_decay=0.5,adamw.groups={"bias":{"weight_decay":0,"lr_scale":2}}',
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    data = problem_data("crops15", None, None, 0.2, 0, True, "regression")
    X = torch.tensor(data.X_train, dtype=torch.float32)
    Y = torch.tensor(data.Y_train, dtype=torch.float32)
    model = torch.nn.Linear(3, 2)
    model.load_state_dict(initial_weights("crops15", "linear", 3, 2, 0))
    opt = torch.optim.AdamW(
        [{"params": [model.weight]}, {"params": [model.bias], "weight_decay": 0.0, "lr": 0.02}],
        lr=0.01, weight_decay=0.5, foreach=False,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(shuffle_seed("crops15", 0, 4))
    expected = [F.mse_loss(model(X), Y).item()]
    for _ in range(3):
        order = torch.randperm(12, generator=gen)
        for i in range(0, 12, 4):
            opt.zero_grad()
            F.mse_loss(model(X[order[i : i + 4]]), Y[order[i : i + 4]]).backward()
            opt.step()
        with torch.no_grad():
            expected.append(F.mse_loss(model(X), Y).item())
    assert list(_epochs(out)["train_loss"]) == expected
    assert set(_epochs(out)["lr"]) == {0.01}  # the default group's rate


def test_a_sweep_reruns_a_plugins_own_defaults(tmp_path):
    out = tmp_path / "s"
    argv = ["sweep", "--datasets", "crops15", "--standardize", "--methods",
            "pytorch_optimizer:Lion,sam=pytorch_optimizer:SAM", "--hp",
            "lr=0.001,sam.base_optimizer=torch.optim:SGD", "--epochs", "2", "--seeds", "0",
            "--select-seeds", "0", "--decades", "1", "--points-per-decade", "1", "--no-claims",
            "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    sweep = pd.read_csv(out / "sweep.csv")
    defaults = sweep[sweep["phase"] == "default"]
    assert set(defaults["method"]) == {"lion"}  # SAM's constructor has no default lr
    assert set(defaults["lr"]) == {1e-4}  # Lion's own default, not the suite's 0.001


# ----------------------------------------------------------------------------------------------
# Timeouts

SLEEPER = """
import time
import torch


class Sleeper(torch.optim.SGD):
    def step(self, closure=None):
        time.sleep(3600)
"""


def test_a_hung_plugin_is_stopped_by_the_timeout_and_computed_again_later(tmp_path, capsys):
    path = _write(tmp_path, "sleeper.py", SLEEPER)
    out = tmp_path / "o"
    argv = ["run", *BASE, "--methods", f"gd,{path}:Sleeper", "--impl", "scratch", "--hp",
            "lr=0.01", "--timeout", "1", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    runs = _runs(out).set_index("method")
    assert runs.loc["gd", "status"] == "ok"
    assert runs.loc["sleeper", "status"] == "timeout"
    assert runs.loc["sleeper", "error"] == "stopped after 1 s (--timeout)"
    report = " ".join((out / "report.md").read_text().split())
    assert "Timed-out runs: sleeper on crops15 (1 of 1: stopped after 1 s (--timeout))" in report
    capsys.readouterr()
    assert cli.main(argv) == 0  # again: the finished run is reused, the stopped one is not
    assert "1 of 2 runs reused" in capsys.readouterr().err


def test_a_suite_file_sets_the_timeout(tmp_path):
    path = _write(tmp_path, "sleeper.py", SLEEPER)
    suite = _write(tmp_path, "s.toml", f"""
        timeout = 0.5
        seeds = [0]
        epochs = 2
        [methods.sleeper]
        class = "{path}:Sleeper"
        lr = 0.01
        [[problems]]
        dataset = "crops15"
        """)  # fmt: skip
    out = tmp_path / "o"
    assert cli.main(["run", "--config", str(suite), "--no-parity", "--out", str(out)]) == 0
    assert set(_runs(out)["status"]) == {"timeout"}
