"""Runs: `run(spec)` trains one model with one optimizer and returns per-epoch records.

What is timed is the training work of an epoch only: the shuffle and the optimizer steps.
Losses are evaluated on the whole training set and the hold-out set between epochs, outside
the timed region, so evaluation never inflates an epoch's time and never perturbs training.
Before timing, a warm-up runs the same code on a throwaway copy of the model and optimizer
(first-call allocations, lazy kernel loading), so the recorded trajectory is unaffected.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import optimizers
from bench.run import tasks
from bench.run.data import DTYPE, device_tensors
from bench.run.device import Backend, get_backend
from bench.run.seeding import derive_seed, tensor_hash
from bench.run.spec import RunSpec
from bench.run.tasks.base import Loss, Task
from bench.schema import Status, problem_name

WARMUP_STEPS = 8


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    rows: list[dict[str, Any]]  # one per epoch, epoch 0 = the initial weights
    summary: dict[str, Any] = field(default_factory=dict)


def shuffle_seed(dataset: str, seed: int, batch_size: int) -> int:
    """Same (dataset, seed, batch size) -> same batch order for every method and impl."""
    return derive_seed("shuffle", dataset, seed, batch_size)


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    X: torch.Tensor,
    Y: torch.Tensor,
    batch_size: int,
    perm: torch.Tensor | None,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss_fn: Loss = tasks.Regression.loss,
) -> None:
    """One pass over the data in contiguous minibatches of a (once-)shuffled copy.

    Gathering the shuffled copy once per epoch and slicing views is ~10x cheaper than a
    DataLoader, which indexes and collates row by row; the last batch is kept even when smaller.
    The gather is `index_select` (half the time of `X[perm]`'s advanced indexing), into `out`
    when given: a buffer reused across epochs spares each epoch the page faults of a fresh
    allocation, which on a 400k x 100 set cost more than the gather itself.
    """
    if perm is not None:
        if out is None:
            X, Y = X.index_select(0, perm), Y.index_select(0, perm)
        else:
            X = torch.index_select(X, 0, perm, out=out[0])
            Y = torch.index_select(Y, 0, perm, out=out[1])
    for xb, yb in zip(X.split(batch_size), Y.split(batch_size), strict=True):
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()


class Epochs:
    """The epochs of one run, as `run` performs them: `timed()` does one and returns its seconds.

    It holds what a run's epochs share: the shuffle generator, the stopwatch and the buffer the
    shuffled copy is gathered into (allocated and touched once, up front). Each epoch draws its
    permutation on the CPU, so every device sees the same order, before the clock starts; the
    clock covers `train_epoch` only, after a device barrier. `bench.perf` times `timed()` from
    the outside to measure what the harness adds to an epoch.
    """

    def __init__(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        X: torch.Tensor,
        Y: torch.Tensor,
        batch_size: int,
        gen: torch.Generator,
        backend: Backend,
        loss_fn: Loss = tasks.Regression.loss,
    ) -> None:
        self.model, self.opt, self.X, self.Y = model, opt, X, Y
        self.loss_fn = loss_fn
        self.batch_size = batch_size
        self.gen = gen
        self.backend = backend
        self.stopwatch = backend.stopwatch()
        self.shuffle = batch_size < X.shape[0]
        self.buffers = (torch.zeros_like(X), torch.zeros_like(Y)) if self.shuffle else None

    def timed(self) -> float:
        perm = None
        if self.shuffle:
            perm = torch.randperm(self.X.shape[0], generator=self.gen).to(self.X.device)
        self.backend.synchronize()
        self.stopwatch.start()
        train_epoch(
            self.model, self.opt, self.X, self.Y, self.batch_size, perm, self.buffers, self.loss_fn
        )
        return self.stopwatch.stop()


def _evaluate(task: Task, model: nn.Module, data: Sequence[torch.Tensor]) -> tuple[float, float]:
    X_train, Y_train, X_hold, Y_hold = data
    with torch.no_grad():
        losses = [task.loss(model(X_train), Y_train)]
        if X_hold.shape[0]:
            losses.append(task.loss(model(X_hold), Y_hold))
        values = torch.stack(losses).tolist()  # one device->host transfer
    return values[0], (values[1] if len(values) > 1 else math.nan)


def _warm_up(spec: RunSpec, task: Task, model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> None:
    """A few steps on throwaway copies, through the same code path as the timed epochs."""
    model = copy.deepcopy(model)
    opt = optimizers.build(spec.method, model.parameters(), impl=spec.impl, **spec.hparams_dict)
    n = min(X.shape[0], WARMUP_STEPS * spec.batch_size)
    perm = torch.arange(n, device=X.device) if spec.batch_size < X.shape[0] else None
    for _ in range(2):
        train_epoch(model, opt, X[:n], Y[:n], spec.batch_size, perm, loss_fn=task.loss)


def run(spec: RunSpec, backend: Backend | None = None) -> RunResult:
    """Train per the spec; a non-finite loss ends the run with status 'diverged'."""
    backend = backend or get_backend(spec.device)
    device = backend.torch_device
    task = tasks.get(spec.task)
    data = task.data(spec)
    tensors = device_tensors(spec.problem_key, spec.device, spec.dtype)
    X_train, Y_train = tensors[0], tensors[1]
    n = X_train.shape[0]

    model = task.model(spec, data)
    model.to(device=device, dtype=DTYPE[spec.dtype])
    init_hash = tensor_hash(model.state_dict())  # of the run's own starting tensors
    opt = optimizers.build(spec.method, model.parameters(), impl=spec.impl, **spec.hparams_dict)
    _warm_up(spec, task, model, X_train, Y_train)

    gen = torch.Generator().manual_seed(shuffle_seed(data.name, spec.seed, spec.batch_size))
    epochs = Epochs(model, opt, X_train, Y_train, spec.batch_size, gen, backend, task.loss)
    base = {
        "run_id": spec.run_id,
        "problem": spec.problem or problem_name(data.name, spec.model),
        "dataset": data.name,
        "model": spec.model,
        "method": spec.method,
        "impl": spec.impl,
        "device": spec.device,
        "dtype": spec.dtype,
        "seed": spec.seed,
        "batch_size": spec.batch_size,
        "lr": spec.lr,
        "hparams": spec.hparams_json,
        "init_hash": init_hash,
    }
    train_loss, hold_loss = _evaluate(task, model, tensors)
    rows = [_row(base, 0, train_loss, hold_loss, 0.0, 0.0, Status.OK)]
    status, elapsed, times = Status.OK, 0.0, []
    for epoch in range(1, spec.epochs + 1):
        seconds = epochs.timed()
        times.append(seconds)
        elapsed += seconds
        train_loss, hold_loss = _evaluate(task, model, tensors)
        if not math.isfinite(train_loss):
            status = Status.DIVERGED
        rows.append(_row(base, epoch, train_loss, hold_loss, seconds, elapsed, status))
        if status == Status.DIVERGED:
            break
    loss_star = task.optimum(spec, data)
    return RunResult(spec, rows, _summary(base, rows, times, status, data, spec, n, loss_star))


def _row(
    base: dict[str, Any],
    epoch: int,
    train_loss: float,
    hold_loss: float,
    seconds: float,
    elapsed: float,
    status: str,
) -> dict[str, Any]:
    return {
        **base,
        "epoch": epoch,
        "train_loss": train_loss,
        "holdout_loss": hold_loss,
        "epoch_time_s": seconds,
        "elapsed_s": elapsed,
        "status": status,
    }


def _summary(
    base: dict[str, Any],
    rows: list[dict[str, Any]],
    times: list[float],
    status: str,
    data: Any,
    spec: RunSpec,
    n: int,
    loss_star: float,
) -> dict[str, Any]:
    q1, _, q3 = (
        statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
    )
    last = rows[-1]
    return {
        **base,
        "epochs": spec.epochs,
        "epochs_run": last["epoch"],
        "steps_per_epoch": math.ceil(n / spec.batch_size),
        "n_train": n,
        "n_holdout": data.X_hold.shape[0],
        "status": status,
        "diverged_epoch": last["epoch"] if status == Status.DIVERGED else None,
        "initial_loss": rows[0]["train_loss"],
        "final_train_loss": last["train_loss"],
        "final_holdout_loss": last["holdout_loss"],
        "loss_star": loss_star,
        "gap_to_optimum": last["train_loss"] - loss_star,
        "median_epoch_time_s": statistics.median(times),
        "iqr_epoch_time_s": q3 - q1,
        "total_time_s": sum(times),
    }
