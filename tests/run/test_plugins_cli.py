"""Your own optimizer and model through `python -m bench`: benchmarked next to the built-ins
from the same initial weights and batches, in `run` and `sweep`; every bad plug-in is one
`error:` line, exit 2 and nothing written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import cli
from bench.errors import ConfigError
from bench.run.config import parse_hp, parse_value

SIGNSGD = textwrap.dedent(
    """
    import torch


    class SignSGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01, momentum=0.0):
            if lr <= 0:
                raise ValueError(f"lr must be > 0, got {lr}")
            super().__init__(params, {"lr": lr, "momentum": momentum})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(torch.sign(p.grad), alpha=-group["lr"])
    """
)
FAST = ["--epochs", "2", "--out"]


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "signsgd.py"
    path.parent.mkdir()
    path.write_text(SIGNSGD)
    return path


def one_hash_per_problem_seed(frame: pd.DataFrame) -> None:
    assert (frame.groupby(["problem", "seed"])["init_hash"].nunique() == 1).all()


def test_run_benchmarks_a_plugin_next_to_the_builtins(plugin, tmp_path):
    out = tmp_path / "out"
    argv = ["run", "--datasets", "crops15,linnerud", "--standardize", "--methods",
            f"gd,adam,{plugin}:SignSGD", "--hp", "signsgd.lr=0.001", "--seeds", "0,1",
            "--no-parity", *FAST, str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    runs = pd.read_csv(out / "runs.csv")
    sign = runs[runs["method"] == "signsgd"]
    assert set(sign["impl"]) == {"plugin"}  # once, as itself, not per --impl
    assert len(sign) == 2 * 2
    assert set(sign["lr"]) == {0.001}
    assert set(runs[runs["method"] == "gd"]["impl"]) == {"scratch", "torch"}
    one_hash_per_problem_seed(runs)
    epochs = pd.read_csv(out / "epochs.csv")
    one_hash_per_problem_seed(epochs)
    batches = runs[runs["method"].isin(["adam", "signsgd"])].groupby("problem")["batch_size"]
    assert (batches.nunique() == 1).all()  # the minibatch size of the problem, as adam's
    report = (out / "report.md").read_text()
    assert "`signsgd`" in report
    assert runs["final_holdout_accuracy"].isna().all()  # regression: no accuracy


def test_sweep_tunes_a_plugins_learning_rate_like_the_others(plugin, tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", "--datasets", "diabetes", "--standardize", "--methods",
            f"minibatch,{plugin}:SignSGD", "--hp", "signsgd.lr=0.01", "--seeds", "0",
            "--select-seeds", "0", "--decades", "1", "--points-per-decade", "1", "--no-claims",
            *FAST, str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    sweep = pd.read_csv(out / "sweep.csv")
    grid = sweep[(sweep["phase"] == "grid") & (sweep["method"] == "signsgd")]
    # lr 0.01 x 10^[-1, 1], plus the points the sweep adds where a selection sits at an edge
    lrs = sorted(grid["lr"])
    assert {0.001, 0.01, 0.1} <= {round(v, 12) for v in lrs}
    assert np.allclose(np.log10(lrs), np.round(np.log10(lrs)))  # every point on the lr grid
    assert set(sweep[sweep["method"] == "signsgd"]["phase"]) == {"grid", "tuned", "default"}
    epochs = pd.read_csv(out / "epochs.csv")
    one_hash_per_problem_seed(epochs)


def test_torch_optim_class_and_suite_table(plugin, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        textwrap.dedent(
            """
            name = "mine"
            seeds = [0]
            [methods.gd]
            [methods.signsgd]
            class = "elsewhere/signsgd.py:SignSGD"
            batch = "full"
            lr = 0.002
            [[problems]]
            dataset = "crops15"
            [problems.hparams]
            lr = 1e-5
            """
        )
    )
    out = tmp_path / "out"
    argv = ["run", "--config", str(suite), "--no-parity", *FAST, str(out)]
    assert cli.main(argv) == 0
    runs = pd.read_csv(out / "runs.csv")
    sign = runs[runs["method"] == "signsgd"]
    assert set(sign["lr"]) == {0.002}  # the method's own table beats the problem's lr
    assert set(sign["steps_per_epoch"]) == {1}  # full batch
    out2 = tmp_path / "out2"
    argv = ["run", "--datasets", "crops15", "--methods", "gd,torch.optim:RMSprop", "--impl",
            "torch", "--hp", "lr=0.01,rmsprop.alpha=0.9", "--seeds", "0", "--no-parity",
            *FAST, str(out2)]  # fmt: skip
    assert cli.main(argv) == 0
    runs = pd.read_csv(out2 / "runs.csv")
    assert sorted(zip(runs["method"], runs["impl"], strict=True)) == [
        ("gd", "torch"),
        ("rmsprop", "plugin"),
    ]
    assert '"alpha": 0.9' in runs[runs["method"] == "rmsprop"]["hparams"].iloc[0]


def test_plugin_model_starts_every_method_from_the_same_weights(tmp_path):
    net = tmp_path / "net.py"
    net.write_text(
        "import torch\n\ndef make_model(d, k):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(d, 5), torch.nn.Tanh(),"
        " torch.nn.Linear(5, k))\n"
    )
    out = tmp_path / "out"
    argv = ["run", "--datasets", "linnerud", "--standardize", "--model",
            f"{net}:make_model", "--methods", "minibatch,adam", "--seeds", "0,1", "--no-parity",
            *FAST, str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["problem"]) == {"linnerud-net.make_model"}
    one_hash_per_problem_seed(runs)
    assert runs.groupby("seed")["init_hash"].first().nunique() == 2  # seeded per seed


BAD = {
    "syntax error": ("import torch\nclass SignSGD(:\n", "SignSGD", [], "syntax error"),
    "import raises": ("raise RuntimeError('boom')\n", "SignSGD", [], "boom"),
    "missing class": (SIGNSGD, "Nope", [], "no attribute 'Nope'"),
    "not an optimizer": ("class SignSGD:\n    pass\n", "SignSGD", [], "not a torch.optim"),
    "rejected value": (SIGNSGD, "SignSGD", ["--hp", "signsgd.lr=-1"], "lr must be > 0"),
    "unknown key": (SIGNSGD, "SignSGD", ["--hp", "signsgd.beta=1"], "no hyperparameter 'beta'"),
    "bad batch": (SIGNSGD, "SignSGD", ["--hp", "signsgd.batch=huge"], "batch must be one of"),
    "bad value": (SIGNSGD, "SignSGD", ["--hp", "signsgd.lr=fast"], "cannot read 'fast'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_plugin_is_one_error_line_and_nothing_written(case, tmp_path, capsys):
    source, cls, extra, message = BAD[case]
    path = tmp_path / "signsgd.py"
    path.write_text(source)
    out = tmp_path / "out"
    argv = ["run", "--datasets", "crops15", "--methods", f"gd,{path}:{cls}", *extra,
            "--seeds", "0", "--no-parity", *FAST, str(out)]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert message in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        ("gd,nowhere.py:SignSGD", "no such file"),
        ("gd,torch.optim:SGD", "built-in method's name"),
        ("gd,no_such_module_xyz:Opt", "cannot import"),
    ],
)
def test_bad_plugin_spec(methods, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--datasets", "crops15", "--methods", methods, "--no-parity", *FAST, "out"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_bad_model_plugin(tmp_path, capsys):
    net = tmp_path / "net.py"
    net.write_text("def make_model(d, k):\n    return 42\n")
    argv = ["run", "--datasets", "crops15", "--model", f"{net}:make_model", "--no-parity",
            *FAST, str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "not a torch.nn.Module" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_hp_values_are_parsed_strictly():
    assert parse_value("3", "x") == 3
    assert isinstance(parse_value("3", "x"), int)
    assert parse_value("1e-3", "x") == 1e-3
    assert parse_value("true", "x") is True
    assert parse_value("0.9:0.99", "x") == (0.9, 0.99)
    assert parse_value("[0.9, 0.99]", "x") == (0.9, 0.99)
    for bad in ("True", "nan", "0.9,", "yes", "1e", ""):
        with pytest.raises(ConfigError):
            parse_value(bad, "x")
    generic, per = parse_hp(["lr=0.1,adam.betas=[0.8, 0.9]", "my.method.lr=2"])
    assert generic == {"lr": 0.1}
    assert per == {"adam": {"betas": (0.8, 0.9)}, "my.method": {"lr": 2}}
    for bad in (["lr"], ["lr=1,lr=2"], ["batch_size=3"], [".lr=1"]):
        with pytest.raises(ConfigError):
            parse_hp(bad)
