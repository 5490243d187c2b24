"""Runs: `run(spec)` trains one model with one optimizer and returns per-epoch records.

What is timed is the training work of an epoch only: the shuffle and the optimizer steps.
Losses are evaluated on the whole training set and the hold-out set between epochs, outside
the timed region, so evaluation never inflates an epoch's time and never perturbs training.
Before timing, a warm-up runs the same code on a throwaway copy of the model and optimizer
(first-call allocations, lazy kernel loading), so the recorded trajectory is unaffected.

Disturbed epochs: each epoch records its wall time (`epoch_time_s`) and the process's CPU time
over the same region (`epoch_cpu_s`). On a shared machine whole stretches of epochs can run
10-300x slower than the rest because the process was descheduled; `disturbed_epochs` flags those
(thresholds below), the run's time statistics are taken over the undisturbed epochs, and
`elapsed_s` counts a disturbed epoch at the run's median epoch time, so a loss-vs-time curve
shows no stall that the optimizer did not cause. The raw `epoch_time_s` is kept.
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
from bench.run.device import Backend, cpu_clock, get_backend
from bench.run.seeding import derive_seed, tensor_hash
from bench.run.spec import RunSpec
from bench.run.tasks.base import Loss, Task
from bench.schema import METRIC_COLUMNS, Status, problem_name

WARMUP_STEPS = 8

# An epoch repeats the same work (same shapes, same number of steps, same code), so on a quiet
# machine its wall time stays close to the run's median; 3x is far beyond that jitter yet well
# below the 10-300x stalls seen when other work takes the core.
DISTURBED_OVER_MEDIAN = 3.0
# A CPU epoch keeps its thread busy throughout, so its wall time is about its CPU time; wall more
# than twice the CPU time means the process spent longer off the CPU than on it (descheduled,
# paging). The slack keeps microsecond epochs from being flagged for one timer interrupt or
# context switch, which costs tens of microseconds.
DISTURBED_OVER_CPU = 2.0
DISTURBED_SLACK_S = 0.5e-3


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
    drop_last: bool = False,
) -> None:
    """One pass over the data in contiguous minibatches of a (once-)shuffled copy.

    Gathering the shuffled copy once per epoch and slicing views is ~10x cheaper than a
    DataLoader, which indexes and collates row by row; the last batch is kept even when smaller,
    unless `drop_last` (the task's choice, as DeepOBS's `DataLoader(drop_last=True)`).
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
    if drop_last:
        whole = X.shape[0] - X.shape[0] % batch_size
        X, Y = X[:whole], Y[:whole]
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
        drop_last: bool = False,
    ) -> None:
        self.model, self.opt, self.X, self.Y = model, opt, X, Y
        self.loss_fn = loss_fn
        self.drop_last = drop_last
        self.batch_size = batch_size
        self.gen = gen
        self.backend = backend
        self.stopwatch = backend.stopwatch()
        self.shuffle = batch_size < X.shape[0]
        self.buffers = (torch.zeros_like(X), torch.zeros_like(Y)) if self.shuffle else None
        self.cpu_s = math.nan  # CPU time of the last timed epoch

    def timed(self) -> float:
        """One epoch; returns its wall seconds and leaves its CPU seconds in `cpu_s`."""
        perm = None
        if self.shuffle:
            perm = torch.randperm(self.X.shape[0], generator=self.gen).to(self.X.device)
        self.backend.synchronize()
        cpu0 = cpu_clock()  # outside the wall clock's region: the wall time never pays for it
        self.stopwatch.start()
        train_epoch(
            self.model,
            self.opt,
            self.X,
            self.Y,
            self.batch_size,
            perm,
            self.buffers,
            self.loss_fn,
            self.drop_last,
        )
        wall = self.stopwatch.stop()
        self.cpu_s = cpu_clock() - cpu0
        return wall


def disturbed_epochs(
    walls: Sequence[float], cpus: Sequence[float], cpu_meaningful: bool = True
) -> list[bool]:
    """Which epochs were disturbed: wall > DISTURBED_OVER_MEDIAN x the run's median wall time,
    or (where CPU time measures the work) wall > DISTURBED_OVER_CPU x CPU + DISTURBED_SLACK_S.
    An epoch without a time (an overflow) is not judged."""
    finite = [w for w in walls if math.isfinite(w)]
    median = statistics.median(finite) if finite else math.nan
    out = []
    for wall, cpu in zip(walls, cpus, strict=True):
        slow = wall > DISTURBED_OVER_MEDIAN * median
        off_cpu = cpu_meaningful and wall > DISTURBED_OVER_CPU * cpu + DISTURBED_SLACK_S
        out.append(bool(math.isfinite(wall) and (slow or off_cpu)))
    return out


def _evaluate(
    task: Task, model: nn.Module, data: Sequence[torch.Tensor], loss: Loss | None = None
) -> dict[str, float]:
    """The loss (`loss`, default the task's), and the task's metrics, on the whole training and
    hold-out sets: `train_loss`, `holdout_loss`, `train_<metric>`, ... (NaN for an empty
    hold-out)."""
    loss = loss or task.loss
    X_train, Y_train, X_hold, Y_hold = data
    names, values = [], []
    with torch.no_grad():
        for split, X, Y in (("train", X_train, Y_train), ("holdout", X_hold, Y_hold)):
            if not X.shape[0]:
                continue
            out = model(X)
            names.append(f"{split}_loss")
            values.append(loss(out, Y))
            for metric, value in task.extra_metrics(out, Y).items():
                names.append(f"{split}_{metric}")
                values.append(value)
        # One device->host transfer; float64 holds every float32 loss exactly.
        read = torch.stack([v.to(torch.float64) for v in values]).tolist()
    found = dict(zip(names, read, strict=True))
    return {c: found.get(c, math.nan) for c in METRIC_COLUMNS}


def _overflowed(exc: RuntimeError) -> bool:
    """torch's "value cannot be converted to type float without overflow" (an lr or weight
    decay beyond the dtype's range) is an overflow of the update, i.e. divergence."""
    return "overflow" in str(exc)


def _finite_state(model: nn.Module, opt: torch.optim.Optimizer) -> bool:
    """Parameters and every optimizer state tensor finite (an overflowed Adam second moment
    freezes the parameters at finite values: the loss alone would call that run ok)."""
    tensors = [*model.parameters()]
    tensors += [v for state in opt.state.values() for v in state.values() if torch.is_tensor(v)]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def _warm_up(
    spec: RunSpec, task: Task, loss: Loss, model: nn.Module, X: torch.Tensor, Y: torch.Tensor
) -> None:
    """A few steps on throwaway copies, through the same code path as the timed epochs."""
    model = copy.deepcopy(model)
    opt = optimizers.build(spec.method, model.parameters(), impl=spec.impl, **spec.hparams_dict)
    n = min(X.shape[0], WARMUP_STEPS * spec.batch_size)
    perm = torch.arange(n, device=X.device) if spec.batch_size < X.shape[0] else None
    try:
        for _ in range(2):
            train_epoch(model, opt, X[:n], Y[:n], spec.batch_size, perm, None, loss, task.drop_last)
    except RuntimeError as exc:  # the timed epochs will meet (and record) the same overflow
        if not _overflowed(exc):
            raise


def run(spec: RunSpec, backend: Backend | None = None) -> RunResult:
    """Train per the spec. A non-finite loss, parameter or optimizer state, or an update that
    overflows the dtype, ends the run with status 'diverged', its rows kept."""
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
    loss = task.loss_for(spec, data)
    _warm_up(spec, task, loss, model, X_train, Y_train)

    gen = torch.Generator().manual_seed(shuffle_seed(data.name, spec.seed, spec.batch_size))
    epochs = Epochs(
        model, opt, X_train, Y_train, spec.batch_size, gen, backend, loss, task.drop_last
    )
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
    rows = [_row(base, 0, _evaluate(task, model, tensors, loss), 0.0, 0.0, Status.OK)]
    if task.records:  # per-epoch values read from the model (the 2-D tasks' path)
        rows[0].update(task.record(model))
    status = Status.OK
    for epoch in range(1, spec.epochs + 1):
        overflow = False
        try:
            seconds, cpu = epochs.timed(), epochs.cpu_s
        except RuntimeError as exc:
            if not _overflowed(exc):
                raise
            overflow, seconds, cpu = True, math.nan, math.nan
        metrics = _evaluate(task, model, tensors, loss)
        if (
            overflow
            or not math.isfinite(metrics["train_loss"])
            or not _finite_state(model, epochs.opt)
        ):
            status = Status.DIVERGED
        rows.append(_row(base, epoch, metrics, seconds, cpu, status))
        if task.records:
            rows[-1].update(task.record(model))
        if status == Status.DIVERGED:
            break
    timing = _judge_epochs(rows, backend.cpu_time_meaningful)
    loss_star = task.optimum(spec, data)
    steps = n // spec.batch_size if task.drop_last else math.ceil(n / spec.batch_size)
    summary = _summary(base, rows, timing, status, data, spec, steps, loss_star)
    return RunResult(spec, rows, summary)


def _row(
    base: dict[str, Any],
    epoch: int,
    metrics: dict[str, float],
    seconds: float,
    cpu: float,
    status: str,
) -> dict[str, Any]:
    return {
        **base,
        "epoch": epoch,
        **metrics,
        "epoch_time_s": seconds,
        "epoch_cpu_s": cpu,
        "elapsed_s": 0.0,  # set by _judge_epochs once the run's median is known
        "disturbed": False,
        "status": status,
    }


def _judge_epochs(rows: list[dict[str, Any]], cpu_meaningful: bool) -> dict[str, Any]:
    """Flag the disturbed epochs in `rows`, fill `elapsed_s` (a disturbed epoch counted at the
    median undisturbed epoch time) and return the run's time statistics."""
    timed = [r for r in rows[1:] if math.isfinite(r["epoch_time_s"])]
    walls = [r["epoch_time_s"] for r in timed]
    flags = disturbed_epochs(walls, [r["epoch_cpu_s"] for r in timed], cpu_meaningful)
    clean = [w for w, bad in zip(walls, flags, strict=True) if not bad]
    # Every epoch disturbed (the whole run descheduled): statistics over all of them, said so.
    over = clean or walls
    median = statistics.median(over) if over else math.nan
    if len(over) > 1:
        q1, _, q3 = statistics.quantiles(over, n=4, method="inclusive")
    else:
        q1 = q3 = median
    for r, bad in zip(timed, flags, strict=True):
        r["disturbed"] = bad
    elapsed = 0.0
    for r in rows[1:]:
        if math.isfinite(r["epoch_time_s"]):
            elapsed += median if r["disturbed"] else r["epoch_time_s"]
        r["elapsed_s"] = elapsed
    return {
        "median_epoch_time_s": median,
        "iqr_epoch_time_s": q3 - q1,
        "total_time_s": sum(walls),
        "total_cpu_s": sum(r["epoch_cpu_s"] for r in timed),
        "disturbed_epochs": sum(flags),
        "time_stats_exclude_disturbed": bool(clean),
    }


def _summary(
    base: dict[str, Any],
    rows: list[dict[str, Any]],
    timing: dict[str, Any],
    status: str,
    data: Any,
    spec: RunSpec,
    steps: int,
    loss_star: float,
) -> dict[str, Any]:
    last = rows[-1]
    return {
        **base,
        "epochs": spec.epochs,
        "epochs_run": last["epoch"],
        "steps_per_epoch": steps,
        "n_train": data.X_train.shape[0],
        "n_holdout": data.X_hold.shape[0],
        "status": status,
        "diverged_epoch": last["epoch"] if status == Status.DIVERGED else None,
        "initial_loss": rows[0]["train_loss"],
        "final_train_loss": last["train_loss"],
        "final_holdout_loss": last["holdout_loss"],
        "final_train_accuracy": last["train_accuracy"],
        "final_holdout_accuracy": last["holdout_accuracy"],
        "loss_star": loss_star,
        "gap_to_optimum": last["train_loss"] - loss_star,
        **timing,  # median and IQR over undisturbed epochs; totals over all (raw)
        "torch_threads": torch.get_num_threads(),
    }
