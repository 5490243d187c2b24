"""The README's examples, executed: every command line in its ```bash blocks and every ```python
block runs (at a few epochs and one seed, so this stays fast), and each command is checked for
what the README promises it does. A command with no promise below fails, so the README cannot
grow an example that nobody checks, nor keep one the code no longer honours.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from distributed import LocalCluster

from bench import cli

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
# A few epochs, one seed and a short cost measurement: the examples run as written otherwise.
SMALL = ["--epochs", "2", "--seeds", "0", "--timing-budget", "2"]
FAST = {
    "run": SMALL,
    "sweep": [*SMALL, "--select-seeds", "0", "--decades", "0.5", "--points-per-decade", "1"],
}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def commands() -> list[str]:
    """`nox -s bench -- ...`, `nox -s sweep -- ...` and `python -m bench ...` lines (the two
    set-up lines `pip install nox && nox -s X` are what CI itself runs)."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith(("nox -s bench --", "nox -s sweep --", "python -m bench ")):
                out.append(line)
    return out


def argv_of(command: str) -> list[str]:
    words = shlex.split(command)
    if words[:2] == ["nox", "-s"]:
        return ["run" if words[2] == "bench" else words[2], *words[4:]]
    return words[3:]


def runs_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "runs.csv")


def crops15_linear(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    assert set(runs["problem"]) == {"crops15"}
    assert set(runs["model"]) == {"linear"}  # not the suite's MLP problem on crops15
    assert set(runs["method"]) == {"gd", "sgd", "minibatch"}
    assert set(runs["lr"]) == {1e-5}  # the linear crops15 problem's learning rate


def csv_table(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    assert set(runs["dataset"]) == {"table"}
    assert set(runs["lr"]) == {0.01}
    assert len(runs) == 2 * len(set(runs["method"]))  # scratch and torch, one seed


def my_suite(out: Path) -> None:
    runs = runs_of(out / "results/mine")
    assert (out / "results/mine/report.md").is_file()
    assert set(runs["method"]) == {"gd", "sgd", "momentum", "adam"}
    assert set(runs[runs["method"] == "adam"]["lr"]) == {0.1}
    assert set(runs[runs["method"] == "gd"]["lr"]) == {1e-5}
    momentum = runs[runs["method"] == "momentum"]["hparams"].iloc[0]
    assert '"momentum": 0.1' in momentum


def signsgd_run(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    sign = runs[runs["method"] == "signsgd"]
    assert set(sign["impl"]) == {"plugin"}
    assert set(sign["lr"]) == {0.01}
    assert set(sign["problem"]) == set(runs["problem"]) == {"diabetes", "breast_cancer"}
    assert (runs.groupby(["problem", "seed"])["init_hash"].nunique() == 1).all()
    cancer = runs[runs["problem"] == "breast_cancer"]
    assert cancer["final_holdout_accuracy"].between(0, 1).all()


def signsgd_sweep(out: Path) -> None:
    sweep = pd.read_csv(out / "results/sweep/sweep.csv")
    assert {"minibatch", "adam", "signsgd"} <= set(sweep[sweep["phase"] == "tuned"]["method"])
    sign = sweep[sweep["method"] == "signsgd"]
    assert set(sign["phase"]) == {"grid", "tuned", "default"}  # tuned and rerun like the others
    assert 0.01 in set(sign[sign["phase"] == "grid"]["lr"])  # the grid is centred on its lr


def deepobs_sweep(out: Path) -> None:
    sweep = pd.read_csv(out / "results/sweep/sweep.csv")
    assert set(sweep["problem"]) == {"quadratic_deep_tf", "quadratic_deep"}
    report = (out / "results/sweep/report.md").read_text()
    assert "## DeepOBS quadratic_deep" in report
    assert "| initial hold-out loss (θ0 = ones) | 353.4468 | 353.4468 |" in report


def help_text(out: Path, captured: str) -> None:
    assert "--datasets" in captured
    assert "--problems" in captured


def on_dask(out: Path) -> None:
    env = json.loads((out / "results/sweep/env.json").read_text())
    assert (env["executor"], env["workers"], env["torch_threads"]) == ("dask", 2, 1)
    sweep = pd.read_csv(out / "results/sweep/sweep.csv")
    assert set(sweep["status"]) <= {"ok", "diverged"}
    assert len(sweep) > 0


def on_scheduler(out: Path) -> None:
    env = json.loads((out / "results/latest/env.json").read_text())
    assert env["executor"] == "dask"
    assert env["scheduler"] == "tcp://127.0.0.1:8786"
    assert len(runs_of(out / "results/latest")) > 0


def epochs_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "epochs.csv")


def authors_protocol(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    assert set(runs["status"]) == {"ok"}
    assert {"adamwschedulefree", "lbfgs"} <= set(runs["method"])
    epochs = epochs_of(out / "results/latest")
    lbfgs = epochs[(epochs["method"] == "lbfgs") & (epochs["epoch"] > 0)]
    assert (lbfgs["evals"] > 1).all()  # closures: a line search per full-batch step
    lbfgs_run = runs[runs["method"] == "lbfgs"].iloc[0]
    assert lbfgs_run["final_train_loss"] <= lbfgs_run["loss_star"] * (1 + 1e-3)


def schedules_run(out: Path) -> None:
    epochs = epochs_of(out / "results/latest")
    mini = epochs[epochs["method"] == "minibatch"].groupby("epoch")["lr"].first()
    assert mini.max() == pytest.approx(0.05)
    assert mini.iloc[-1] < 0.01
    assert set(epochs.loc[epochs["method"] == "adam", "schedule"]) == {
        "torch.optim.lr_scheduler:StepLR:gamma=0.5,step_size=30"
    }


def wrappers_run(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    assert set(runs["method"]) == {"adam", "la", "sam"}
    assert set(runs["status"]) == {"ok"}
    epochs = epochs_of(out / "results/latest")
    sam, adam = (epochs[(epochs["method"] == m) & (epochs["epoch"] > 0)] for m in ("sam", "adam"))
    assert (sam["evals"].to_numpy() == 2 * adam["evals"].to_numpy()[: len(sam)]).all()


def factory_run(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    assert set(runs["method"]) == {"minibatch", "nag"}
    assert set(runs[runs["method"] == "nag"]["impl"]) == {"plugin"}


def groups_run(out: Path) -> None:
    runs = runs_of(out / "results/latest")
    assert set(runs["problem"]) == {"digits-net.make_model"}
    assert set(runs["status"]) == {"ok"}
    epochs = epochs_of(out / "results/latest")
    start = epochs[epochs["epoch"] == 0]
    assert start["train_loss"].nunique() == 1  # eval mode: one loss at the shared start


PROMISES: dict[str, Callable[..., None]] = {
    "python -m bench run --datasets diabetes --standardize --methods "
    "adam,schedulefree:AdamWScheduleFree,torch.optim:LBFGS --hp "
    "lr=0.01,lbfgs.batch=full,lbfgs.lr=1 --epochs 20": authors_protocol,
    "python -m bench run --datasets crops15 --standardize --methods minibatch,adam --lr 0.05 "
    "--schedule cosine:warmup=0.1 --hp "
    "adam.schedule=torch.optim.lr_scheduler:StepLR:step_size=30:gamma=0.5": schedules_run,
    "python -m bench run --datasets crops15 --standardize --methods "
    "adam,la=pytorch_optimizer:Lookahead,sam=pytorch_optimizer:SAM --hp "
    "lr=0.01,la.optimizer=adam,la.k=5,sam.base_optimizer=torch.optim:SGD,sam.rho=0.05": (
        wrappers_run
    ),
    "python -m bench run --datasets crops15 --standardize --methods "
    "minibatch,nag=path/to/factory.py:sgd_nesterov --hp lr=0.01": factory_run,
    "python -m bench run --datasets digits --standardize --model path/to/net.py:make_model "
    "--methods adam,adamw --batch-size 64 --hp "
    "lr=0.01,adamw.groups=no_decay,adamw.weight_decay=0.1": groups_run,
    "nox -s bench -- --datasets crops15 --methods gd,sgd,minibatch --epochs 200 "
    "--seeds 0,1,2,3,4": crops15_linear,
    "nox -s bench -- --datasets path/to/table.csv --targets y1,y2 --standardize --lr 0.01": (
        csv_table
    ),
    "nox -s bench -- --config my_suite.toml --out results/mine": my_suite,
    "nox -s bench -- --help": help_text,
    "python -m bench sweep --executor dask --workers 2": on_dask,
    "python -m bench run --scheduler tcp://127.0.0.1:8786": on_scheduler,
    "nox -s bench -- --datasets diabetes,breast_cancer --standardize --methods "
    "gd,adam,path/to/signsgd.py:SignSGD --hp signsgd.lr=0.01": signsgd_run,
    "python -m bench sweep --datasets diabetes --standardize --methods "
    "minibatch,adam,path/to/signsgd.py:SignSGD --hp signsgd.lr=0.01": signsgd_sweep,
    "python -m bench sweep --config bench/suites/deepobs.toml": deepobs_sweep,
}
# Python blocks that are files the commands name (first line `# path/to/file.py`).
FILE_BLOCK = re.compile(r"# (path/to/\S+\.py)\n")


@contextlib.contextmanager
def scheduler_for(argv: list[str]) -> Iterator[None]:
    """The README's `dask scheduler` + `dask worker` at the address a command names, on
    127.0.0.1, for as long as the command runs (stopped by this test)."""
    if "--scheduler" not in argv:
        yield
        return
    port = int(argv[argv.index("--scheduler") + 1].rsplit(":", 1)[1])
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        host="127.0.0.1",
        scheduler_port=port,
        dashboard_address=None,
        processes=True,
    ):
        yield


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding what the examples name: a CSV table and the README's own TOML suite."""
    (tmp_path / "path/to").mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20, 3, generator=gen)
    Y = X @ torch.tensor([[1.0, -2.0], [0.5, 0.0], [2.0, 1.0]])
    table = torch.cat([X, Y], dim=1).tolist()
    rows = ["a,b,c,y1,y2", *(",".join(f"{v:.4f}" for v in row) for row in table)]
    (tmp_path / "path/to/table.csv").write_text("\n".join(rows) + "\n")
    (suite,) = [b for b in blocks("toml") if b.startswith('name = "mine"')]
    (tmp_path / "my_suite.toml").write_text(suite)
    for block in blocks("python"):
        if match := FILE_BLOCK.match(block):
            (tmp_path / match.group(1)).write_text(block)
    (tmp_path / "bench").symlink_to(REPO / "bench")  # the suites the examples name
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("command", commands())
def test_readme_command_does_what_the_readme_says(command, workdir, capsys):
    assert command in PROMISES, (
        f"README example without a promise in tests/test_readme.py: {command}"
    )
    argv = argv_of(command)
    if "--help" in argv:
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 0
        PROMISES[command](workdir, capsys.readouterr().out)
        return
    extra = ["--no-parity"] if argv[0] == "run" else ["--no-claims"]
    with scheduler_for(argv):
        assert cli.main([*argv, *FAST.get(argv[0], []), *extra]) == 0
    PROMISES[command](workdir)


def test_every_promise_is_still_a_readme_example():
    assert sorted(PROMISES) == sorted(set(commands()))


def test_readme_python_examples_run():
    # The store's query example needs a real output folder: tests/store/test_store.py runs it.
    files = [b for b in blocks("python") if FILE_BLOCK.match(b)]
    assert files, "the README's plug-in optimizer file is gone"
    for block in files:  # a plug-in file: an optimizer, a factory or a model
        namespace = {}
        exec(compile(block, "README.md", "exec"), namespace)
        if "SignSGD" in namespace:
            assert issubclass(namespace["SignSGD"], torch.optim.Optimizer)
        elif "sgd_nesterov" in namespace:
            opt = namespace["sgd_nesterov"]([torch.zeros(1, requires_grad=True)])
            assert isinstance(opt, torch.optim.SGD)
            assert opt.defaults["nesterov"]
        else:
            assert isinstance(namespace["make_model"](3, 2), torch.nn.Module)
    examples = [b for b in blocks("python") if "import torch, optimizers" in b]
    assert examples, "the README's optimizer API example is gone"
    for block in examples:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)
        assert isinstance(namespace["ref"], torch.optim.SGD)
        assert type(namespace["opt"]).__module__.startswith("optimizers")
