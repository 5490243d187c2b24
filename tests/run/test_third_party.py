"""Optimizers nobody here wrote, run through the CLI as their authors intend, against
independent hand-written loops that follow each author's documented protocol.

The loops share only what makes the comparison fair: the split (`problem_data`), the initial
weights and the batch order (optbench's seeds). Modes, closures, steps and evaluation are
written here from the libraries' own documentation:
- pytorch-optimizer's Lion, AdaBelief, SOAP, Lookahead: `zero_grad(); loss.backward(); step()`;
- schedulefree: `optimizer.train()` before training, `optimizer.eval()` before evaluating
  (schedulefree's README);
- torch.optim.LBFGS: `step(closure)`, the closure re-evaluating the loss (torch's docs);
- pytorch-optimizer's SAM: gradients computed first, then `step(closure)` (its docstring).
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import schedulefree
import torch
import torch.nn.functional as F
from pytorch_optimizer import SAM, SOAP, AdaBelief, Lion, Lookahead

from bench import cli
from bench.run.data import problem_data
from bench.run.device import DEFAULT_THREADS, torch_threads
from bench.run.models import ModelSpec
from bench.run.runner import shuffle_seed
from bench.run.seeding import derive_seed
from bench.run.tasks.base import initial_weights

EPOCHS, LR, BATCH = 4, 0.01, 4
COMMON = ["--datasets", "crops15", "--standardize", "--seeds", "0", "--epochs", str(EPOCHS),
          "--no-parity"]  # fmt: skip

# name in the tables -> (CLI entry, --hp keys, optimizer factory of the hand loop, protocol)
THIRD_PARTY = {
    "lion": ("pytorch_optimizer:Lion", [], lambda p: Lion(p, lr=LR), "plain"),
    "adabelief": ("pytorch_optimizer:AdaBelief", [], lambda p: AdaBelief(p, lr=LR), "plain"),
    "soap": ("pytorch_optimizer:SOAP", [], lambda p: SOAP(p, lr=LR), "plain"),
    "adamwschedulefree": (
        "schedulefree:AdamWScheduleFree", [],
        lambda p: schedulefree.AdamWScheduleFree(p, lr=LR), "schedule-free",
    ),
    "sgdschedulefree": (
        "schedulefree:SGDScheduleFree", [],
        lambda p: schedulefree.SGDScheduleFree(p, lr=LR), "schedule-free",
    ),
    "lbfgs": ("torch.optim:LBFGS", ["lbfgs.batch=full", "lbfgs.lr=1"],
              lambda p: torch.optim.LBFGS(p, lr=1), "closure"),
    "sam": ("sam=pytorch_optimizer:SAM", ["sam.base_optimizer=torch.optim:SGD"],
            lambda p: SAM(p, torch.optim.SGD, lr=LR), "sam"),
    "la": ("la=pytorch_optimizer:Lookahead", ["la.optimizer=adam"],
           lambda p: Lookahead(torch.optim.Adam(p, lr=LR, foreach=False)), "plain"),
}  # fmt: skip


def hand_loop(
    make_opt, protocol: str, *, dataset="crops15", model="linear", standardize=True,
    holdout=0.2, seed=0, batch=BATCH, epochs=EPOCHS, task="regression",
) -> list[float]:  # fmt: skip
    """Training losses at epochs 0..epochs, evaluated where the optimizer's authors evaluate."""
    data = problem_data(dataset, None, None, holdout, seed, standardize, task)
    X = torch.tensor(data.X_train, dtype=torch.float32)
    label = torch.int64 if task == "classification" else torch.float32
    Y = torch.tensor(data.Y_train, dtype=label)
    loss_fn = F.cross_entropy if task == "classification" else F.mse_loss
    net = ModelSpec.parse(model).build(data.d, data.k)
    net.load_state_dict(initial_weights(data.name, model, data.d, data.k, seed))
    opt = make_opt(net.parameters())
    n = X.shape[0]
    batch = n if protocol == "closure" else batch
    gen = torch.Generator().manual_seed(shuffle_seed(data.name, seed, batch))
    sf = protocol == "schedule-free"

    def evaluate() -> float:
        net.eval()
        if sf:
            opt.eval()
        with torch.no_grad():
            return loss_fn(net(X), Y).item()

    # The runs' own thread count: a reduction over more threads sums in another order.
    with torch.random.fork_rng(devices=[]), torch_threads(DEFAULT_THREADS):
        torch.manual_seed(derive_seed("torch-rng", data.name, model, seed))
        losses = [evaluate()]
        for _ in range(epochs):
            net.train()
            if sf:
                opt.train()
            order = torch.randperm(n, generator=gen) if batch < n else torch.arange(n)
            for i in range(0, n, batch):
                xb, yb = X[order[i : i + batch]], Y[order[i : i + batch]]

                def closure(xb=xb, yb=yb):
                    opt.zero_grad()
                    loss = loss_fn(net(xb), yb)
                    loss.backward()
                    return loss

                if protocol == "closure":
                    opt.step(closure)
                elif protocol == "sam":
                    closure()
                    opt.step(closure)
                else:
                    closure()
                    opt.step()
            losses.append(evaluate())
    return losses


@pytest.fixture(scope="module")
def third_party_run(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("third") / "out"
    entries = ",".join(entry for entry, *_ in THIRD_PARTY.values())
    hp = [f"lr={LR}"] + [k for _, keys, *_ in THIRD_PARTY.values() for k in keys]
    argv = ["run", *COMMON, "--methods", entries, "--hp", ",".join(hp), "--out", str(out)]
    assert cli.main(argv) == 0
    return _epochs(out)


def _epochs(out: Path) -> pd.DataFrame:
    """The folder's epoch rows with every float exact (epochs.csv rounds to 9 digits)."""
    with sqlite3.connect(out / "store.sqlite") as db:
        return pd.read_sql("SELECT * FROM epochs", db)


@pytest.mark.parametrize("name", list(THIRD_PARTY))
def test_third_party_optimizer_equals_its_authors_loop(third_party_run, name):
    _, _, make_opt, protocol = THIRD_PARTY[name]
    rows = third_party_run[third_party_run["method"] == name].sort_values("epoch")
    assert list(rows["status"]) == ["ok"] * (EPOCHS + 1)
    expected = hand_loop(make_opt, protocol)
    assert list(rows["train_loss"]) == expected  # bitwise: same arithmetic, same order


def test_closure_optimizers_count_their_evaluations(third_party_run):
    evals = third_party_run[third_party_run["epoch"] > 0].groupby("method")["evals"]
    steps = math.ceil(12 / BATCH)  # crops15's 12 training rows
    assert set(evals.max()[["lion", "adabelief", "la"]]) == {steps}  # one per step
    assert set(evals.max()[["sam"]]) == {2 * steps}  # SAM: a second pass at the perturbed point
    assert evals.max()["lbfgs"] > 1  # LBFGS: a line search per (full-batch) step


def test_lbfgs_reaches_the_least_squares_optimum_of_diabetes(tmp_path):
    out = tmp_path / "o"
    argv = ["run", "--datasets", "diabetes", "--standardize", "--methods", "torch.optim:LBFGS",
            "--hp", "lbfgs.batch=full,lbfgs.lr=1", "--epochs", "20", "--seeds", "0",
            "--no-parity", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    runs = pd.read_csv(out / "runs.csv")
    (final, star) = runs[["final_train_loss", "loss_star"]].iloc[0]
    assert abs(final - star) / star <= 1e-3


def test_report_rebuilds_a_folder_of_plugins_in_a_fresh_process(tmp_path):
    """`report DIR` needs no registry state: the specs name their plug-ins."""
    out = tmp_path / "o"
    argv = ["run", *COMMON, "--methods", "gd,pytorch_optimizer:Lion,la=pytorch_optimizer:Lookahead",
            "--hp", "lr=0.01,la.optimizer=adam", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    before = (out / "runs.csv").read_text()
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "report", str(out)], cwd=root, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "runs.csv").read_text() == before


# ----------------------------------------------------------------------------------------------
# A model with BatchNorm and Dropout: eval mode for every evaluation, seeded dropout

NET = textwrap.dedent(
    """
    import torch


    def make_model(d, k):
        return torch.nn.Sequential(
            torch.nn.Linear(d, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
            torch.nn.Dropout(0.3), torch.nn.Linear(16, k),
        )
    """
)
DIGITS = ["--datasets", "digits", "--standardize", "--seeds", "0", "--epochs", "3",
          "--batch-size", "64", "--impl", "scratch", "--lr", "0.01", "--no-parity"]  # fmt: skip


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("net") / "net.py"
    path.write_text(NET)
    return path


def _losses(out: Path, method: str) -> list[float]:
    epochs = _epochs(out)
    return list(epochs[epochs["method"] == method].sort_values("epoch")["train_loss"])


def test_dropout_and_batchnorm_give_the_same_numbers_in_any_order(net, tmp_path):
    model = ["--model", f"{net}:make_model"]
    both = tmp_path / "both"
    assert (
        cli.main(["run", *DIGITS, *model, "--methods", "minibatch,adam", "--out", str(both)]) == 0
    )
    alone = tmp_path / "alone"
    assert cli.main(["run", *DIGITS, *model, "--methods", "adam", "--out", str(alone)]) == 0
    epochs = _epochs(both)
    start = epochs[epochs["epoch"] == 0]["train_loss"]
    assert start.nunique() == 1  # eval mode at the shared start: one epoch-0 loss
    assert _losses(both, "adam") == _losses(alone, "adam")
    resumed = tmp_path / "resumed"  # the same folder grown run by run: reused, then computed
    for methods in ("minibatch", "minibatch,adam"):
        argv = ["run", *DIGITS, *model, "--methods", methods, "--out", str(resumed)]
        assert cli.main(argv) == 0
    assert _losses(resumed, "adam") == _losses(alone, "adam")
    expected = hand_loop(
        lambda p: torch.optim.Adam(p, lr=0.01, foreach=False), "plain", dataset="digits",
        model=f"{net}:make_model", batch=64, epochs=3, task="classification",
        holdout=0.2,
    )  # fmt: skip
    assert _losses(alone, "adam") == expected


@pytest.mark.slow
def test_dropout_numbers_are_the_same_on_dask_workers(net, tmp_path):
    model = ["--model", f"{net}:make_model"]
    serial, dask = tmp_path / "serial", tmp_path / "dask"
    assert cli.main(["run", *DIGITS, *model, "--methods", "adam", "--out", str(serial)]) == 0
    argv = ["run", *DIGITS, *model, "--methods", "adam", "--executor", "dask", "--workers", "2",
            "--out", str(dask)]  # fmt: skip
    assert cli.main(argv) == 0
    assert _losses(dask, "adam") == _losses(serial, "adam")
