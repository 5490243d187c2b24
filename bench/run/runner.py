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

The training protocol (what every run does, whatever its optimizer):
- torch's global RNG (CPU, and the run's CUDA device) is seeded from (dataset, model, seed) before
  the first forward, inside a forked RNG state, so dropout draws the same masks in any order,
  process or executor; the caller's RNG state is restored afterwards.
- The model is in `train()` mode for the steps and in `eval()` mode for every evaluation, epoch 0
  included; an optimizer with its own `train()`/`eval()` (schedule-free methods) is switched with
  it, so losses are evaluated where its authors evaluate them. Mode switches are outside the
  timed region, like the evaluation they exist for.
- Every step evaluates the loss and gradients on its batch, then calls `opt.step(closure)`
  (`Closure`): the closure hands back that evaluation while the parameters are where it was made,
  and evaluates again wherever the optimizer has moved them (LBFGS's line search, SAM's second
  pass), so closure optimizers and optimizers that ignore the closure both see the right
  gradients. `evals` counts the evaluations of each epoch (an LBFGS step makes up to 25).
- A schedule (`bench.run.schedules`) is stepped after every optimizer step; the `lr` column is
  the first parameter group's rate at the end of the epoch.
- Outcomes (`bench.schema.Status`): `diverged` is decided from numbers (a non-finite loss,
  parameter or optimizer state, or torch's own overflow converting a hyperparameter); an
  exception raised inside a plug-in (optimizer, model factory, scheduler) ends the run as
  `failed`, its message kept; a model that writes into its input data fails its run too (the
  data tensors are shared between runs, and are reloaded afterwards).
"""

from __future__ import annotations

import contextlib
import copy
import dis
import functools
import math
import re
import signal
import statistics
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench.run import data as run_data
from bench.run import optim, schedules, tasks
from bench.run.data import DTYPE, device_tensors
from bench.run.device import Backend, cpu_clock, get_backend
from bench.run.models import is_plugin
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


class Closure:
    """The loss and gradients of the current batch, for `opt.step(closure)`.

    `evaluate(xb, yb)` computes them before the step (zero_grad, forward, backward). Called by
    the optimizer, the closure returns that evaluation while the parameters are still where it
    was made, and evaluates again (with grad enabled) once the optimizer has moved them. "Where
    it was made" is judged by the parameters' version counters, which every in-place update
    bumps; a plug-in may write through `.data`, which does not, so for plug-ins the values are
    compared too (`exact=True`: a copy of the parameters per evaluation).
    """

    def __init__(
        self, model: nn.Module, opt: torch.optim.Optimizer, loss_fn: Loss, exact: bool = False
    ) -> None:
        self.model, self.opt, self.loss_fn = model, opt, loss_fn
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.snapshot = [torch.empty_like(p) for p in self.params] if exact else None
        self.evals = 0
        self.xb = self.yb = self.loss = None
        self.versions: list[int] = []
        self.step: Callable[[], Any] = (
            functools.partial(opt.step, self) if optim.takes_closure(opt) else opt.step
        )

    def evaluate(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        self.xb, self.yb = xb, yb
        self._compute()

    def _compute(self) -> None:
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(self.xb), self.yb)
        loss.backward()
        self.loss = loss
        self.evals += 1
        self.versions = [p._version for p in self.params]
        if self.snapshot is not None:
            with torch.no_grad():
                torch._foreach_copy_(self.snapshot, self.params)

    def __call__(self) -> torch.Tensor:
        if [p._version for p in self.params] == self.versions and (
            self.snapshot is None
            or all(torch.equal(a, b) for a, b in zip(self.params, self.snapshot, strict=True))
        ):
            return self.loss  # type: ignore[return-value]
        with torch.enable_grad():
            self._compute()
        return self.loss  # type: ignore[return-value]


def train_epoch(
    closure: Closure,
    X: torch.Tensor,
    Y: torch.Tensor,
    batch_size: int,
    perm: torch.Tensor | None,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
    drop_last: bool = False,
    scheduler: Any = None,
) -> None:
    """One pass over the data in contiguous minibatches of a (once-)shuffled copy: per batch,
    evaluate, `opt.step(closure)`, then the schedule's step.

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
    evaluate, step = closure.evaluate, closure.step
    for xb, yb in zip(X.split(batch_size), Y.split(batch_size), strict=True):
        evaluate(xb, yb)
        step()
        if scheduler is not None:
            scheduler.step()


class Epochs:
    """The epochs of one run, as `run` performs them: `timed()` does one and returns its seconds.

    It holds what a run's epochs share: the closure, the schedule, the shuffle generator, the
    stopwatch and the buffer the shuffled copy is gathered into (allocated and touched once, up
    front). Each epoch draws its permutation on the CPU, so every device sees the same order,
    before the clock starts; the clock covers `train_epoch` only, after a device barrier.
    `bench.perf` times `timed()` from the outside to measure what the harness adds to an epoch.
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
        scheduler: Any = None,
        exact: bool = False,
        buffers: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.model, self.opt, self.X, self.Y = model, opt, X, Y
        self.closure = Closure(model, opt, loss_fn, exact)
        self.scheduler = scheduler
        self.drop_last = drop_last
        self.batch_size = batch_size
        self.gen = gen
        self.backend = backend
        self.stopwatch = backend.stopwatch()
        self.shuffle = batch_size < X.shape[0]
        if self.shuffle and buffers is None:
            buffers = (torch.zeros_like(X), torch.zeros_like(Y))
        self.buffers = buffers if self.shuffle else None  # shared by `bench.run.cost`
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
            self.closure,
            self.X,
            self.Y,
            self.batch_size,
            perm,
            self.buffers,
            self.drop_last,
            self.scheduler,
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
    task: Task,
    model: nn.Module,
    data: Sequence[torch.Tensor],
    loss: Loss | None = None,
    check: bool = False,
) -> dict[str, float]:
    """The loss (`loss`, default the task's), and the task's metrics, on the whole training and
    hold-out sets: `train_loss`, `holdout_loss`, `train_<metric>`, ... (NaN for an empty
    hold-out). `check`: the model's output shape is checked against the targets first."""
    loss = loss or task.loss
    X_train, Y_train, X_hold, Y_hold = data
    names, values = [], []
    with torch.no_grad():
        for split, X, Y in (("train", X_train, Y_train), ("holdout", X_hold, Y_hold)):
            if not X.shape[0]:
                continue
            out = model(X)
            if check:
                task.check_output(out, Y)
            names.append(f"{split}_loss")
            values.append(loss(out, Y))
            for metric, value in task.extra_metrics(out, Y).items():
                names.append(f"{split}_{metric}")
                values.append(value)
        # One device->host transfer; float64 holds every float32 loss exactly.
        read = torch.stack([v.to(torch.float64) for v in values]).tolist()
    found = dict(zip(names, read, strict=True))
    return {c: found.get(c, math.nan) for c in METRIC_COLUMNS}


_TORCH_OVERFLOW = re.compile(r"value cannot be converted to type \S+ without overflow")


def torch_overflow(exc: BaseException) -> bool:
    """torch's own "value cannot be converted to type float without overflow" (an lr or weight
    decay beyond the dtype's range): an overflow of the update, i.e. divergence. Judged by the
    message *and* by where it was raised: inside a C++ call, not by a Python `raise` (a plug-in
    raising that text is a failure, not a divergence)."""
    if not isinstance(exc, RuntimeError) or not _TORCH_OVERFLOW.fullmatch(str(exc)):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    code = tb.tb_frame.f_code.co_code
    return dis.opname[code[tb.tb_lasti]] != "RAISE_VARARGS"


def finite_state(model: nn.Module, opt: torch.optim.Optimizer) -> bool:
    """Parameters and every optimizer state tensor finite (an overflowed Adam second moment
    freezes the parameters at finite values: the loss alone would call that run ok)."""
    tensors = [*model.parameters()]
    tensors += [
        v
        for state in opt.state.values()
        if isinstance(state, dict)
        for v in state.values()
        if torch.is_tensor(v) and v.is_floating_point()
    ]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def set_mode(model: nn.Module, opt: torch.optim.Optimizer, mode: str) -> None:
    """`model.train()`/`.eval()`, and the optimizer's own when it has them (schedule-free
    methods; or the optimizer a wrapper holds, e.g. Lookahead around a schedule-free one)."""
    getattr(model, mode)()
    for holder in (opt, getattr(opt, "optimizer", None), getattr(opt, "base_optimizer", None)):
        switch = getattr(holder, mode, None)
        if holder is not None and callable(switch):
            switch()
            return


def build_optimizer(spec: RunSpec, model: nn.Module) -> torch.optim.Optimizer:
    """The spec's optimizer over the model's parameters (groups, a wrapper's inner method)."""
    params = optim.param_groups(model, spec.groups, spec.lr)
    return optim.build(
        spec.method_def, params, spec.impl, spec.hparams_dict, spec.inner,
        dict(spec.inner_hparams),
    )  # fmt: skip


def _has_plugin(spec: RunSpec) -> bool:
    """Code that is not optbench's runs in this spec: its exceptions are the run's outcome."""
    return bool(
        spec.optimizer
        or ":" in spec.inner
        or is_plugin(spec.model)
        or schedules.parse(spec.schedule).target
    )


def _warm_up(
    spec: RunSpec, task: Task, loss: Loss, model: nn.Module, X: torch.Tensor, Y: torch.Tensor
) -> None:
    """A few steps on throwaway copies, through the same code path as the timed epochs. An
    error here is left for the timed epochs to meet and record."""
    model = copy.deepcopy(model)
    n = min(X.shape[0], WARMUP_STEPS * spec.batch_size)
    perm = torch.arange(n, device=X.device) if spec.batch_size < X.shape[0] else None
    try:
        opt = build_optimizer(spec, model)
        set_mode(model, opt, "train")
        closure = Closure(model, opt, loss)
        for _ in range(2):
            train_epoch(closure, X[:n], Y[:n], spec.batch_size, perm, None, task.drop_last)
    except Exception:
        return


def _lr(opt: torch.optim.Optimizer, default: float) -> float:
    """The first parameter group's rate (what the next step would use)."""
    groups = getattr(opt, "param_groups", None)
    value = groups[0].get("lr", default) if groups else default
    return float(value)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


class RunTimeout(BaseException):
    """The run's time is up (a BaseException: a plug-in's `except Exception` cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise RunTimeout in this thread after `seconds` (a real-time interval timer, so a plug-in
    blocked in `time.sleep` or looping in Python is interrupted too). Only the main thread gets
    signals: elsewhere (a Dask worker's task thread) the executor enforces the timeout."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise RunTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class ModelWroteData(RuntimeError):
    """The model changed its input tensors (shared by every run of the problem)."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"the model ({model}) wrote into its input data; a model must not change its "
            "inputs (they are shared by every run of the problem)"
        )


def run(spec: RunSpec, backend: Backend | None = None, timeout: float | None = None) -> RunResult:
    """Train per the spec under the training protocol of the module docstring. A non-finite
    loss, parameter or optimizer state, or an update that overflows the dtype, ends the run with
    status 'diverged', its rows kept; a plug-in's exception ends it as 'failed'; a run still
    going after `timeout` seconds (warm-up included) ends as 'timeout'."""
    backend = backend or get_backend(spec.device)
    device = backend.torch_device
    task, data, model, base, steps = _start(spec, backend)
    tensors = device_tensors(spec.problem_key, spec.device, spec.dtype)
    loss = task.loss_for(spec, data)
    versions = [t._version for t in tensors]
    rows: list[dict[str, Any]] = []
    status, error = Status.OK, ""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            with deadline(timeout):
                _train(spec, task, data, model, loss, tensors, backend, steps, base, rows)
        except _Diverged:
            status = Status.DIVERGED
        except RunTimeout:
            status, error = Status.TIMEOUT, f"stopped after {timeout:g} s (--timeout)"
        except (Exception, SystemExit) as exc:
            if not (_has_plugin(spec) or isinstance(exc, ModelWroteData)):
                raise  # optbench's own code failed: a bug, not an outcome
            status, error = Status.FAILED, _one_line(exc)
        finally:
            if [t._version for t in tensors] != versions:
                run_data.forget()  # the shared tensors were written into: reload them
    return _result(spec, task, data, base, rows, steps, status, error, backend)


def stopped(spec: RunSpec, status: str, error: str) -> RunResult:
    """The result of a run stopped from outside before it could report (a Dask worker that
    hung past the timeout and was restarted): its start only, `status`, `error`."""
    backend = get_backend(spec.device)
    task, data, _, base, steps = _start(spec, backend)
    return _result(spec, task, data, base, [], steps, status, error, backend)


def base_columns(spec: RunSpec, data: Any, init_hash: str) -> dict[str, Any]:
    """The columns every row and the summary of a run start with (every engine's)."""
    return {
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
        "schedule": spec.schedule,
        "init_hash": init_hash,
    }


def _start(spec: RunSpec, backend: Backend) -> tuple[Task, Any, nn.Module, dict, int]:
    """(task, data, model at its initial weights, the rows' common columns, steps per epoch)."""
    task = tasks.get(spec.task)
    data = task.data(spec)
    n = device_tensors(spec.problem_key, spec.device, spec.dtype)[0].shape[0]
    steps = n // spec.batch_size if task.drop_last else math.ceil(n / spec.batch_size)
    model = task.model(spec, data)
    model.to(device=backend.torch_device, dtype=DTYPE[spec.dtype])
    init_hash = tensor_hash(model.state_dict())  # of the run's own starting tensors
    base = base_columns(spec, data, init_hash)
    return task, data, model, base, steps


def _result(
    spec: RunSpec,
    task: Task,
    data: Any,
    base: dict[str, Any],
    rows: list[dict[str, Any]],
    steps: int,
    status: str,
    error: str,
    backend: Backend,
) -> RunResult:
    """The run's result from its rows so far and how it ended."""
    if not rows:  # failed before its first evaluation
        rows.append(_row(base, 0, dict.fromkeys(METRIC_COLUMNS, math.nan), 0.0, 0.0, status))
        rows[0].update(lr=spec.lr, evals=0)
    rows[-1]["status"] = status  # a run's last row carries how it ended
    timing = _judge_epochs(rows, backend.cpu_time_meaningful)
    loss_star = task.optimum(spec, data)
    summary = _summary(base, rows, timing, status, data, spec, steps, loss_star)
    summary["error"] = error
    return RunResult(spec, rows, summary)


class _Diverged(Exception):
    """Raised inside `_train` once a diverged epoch's row is recorded."""


def _train(
    spec: RunSpec,
    task: Task,
    data: Any,
    model: nn.Module,
    loss: Loss,
    tensors: Sequence[torch.Tensor],
    backend: Backend,
    steps: int,
    base: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """The epochs of `run`, appending one row per epoch to `rows` (epoch 0 = the start)."""
    X_train, Y_train = tensors[0], tensors[1]
    versions = [t._version for t in tensors]
    opt = build_optimizer(spec, model)
    _warm_up(spec, task, loss, model, X_train, Y_train)
    schedule = schedules.parse(spec.schedule).build(opt, spec.epochs * steps)
    torch.manual_seed(derive_seed("torch-rng", data.name, spec.model, spec.seed))
    gen = torch.Generator().manual_seed(shuffle_seed(data.name, spec.seed, spec.batch_size))
    epochs = Epochs(
        model, opt, X_train, Y_train, spec.batch_size, gen, backend, loss, task.drop_last,
        schedule, exact=_has_plugin(spec),
    )  # fmt: skip

    def record(epoch: int, seconds: float, cpu: float, evals: int, status: str) -> None:
        set_mode(model, opt, "eval")
        metrics = _evaluate(task, model, tensors, loss, check=epoch == 0)
        if [t._version for t in tensors] != versions:
            raise ModelWroteData(spec.model)
        row = _row(base, epoch, metrics, seconds, cpu, status)
        row["lr"], row["evals"] = _lr(opt, spec.lr), evals
        if task.records:  # per-epoch values read from the model (the 2-D tasks' path)
            row.update(task.record(model))
        rows.append(row)

    record(0, 0.0, 0.0, 0, Status.OK)
    for epoch in range(1, spec.epochs + 1):
        set_mode(model, opt, "train")
        before = epochs.closure.evals
        try:
            seconds, cpu = epochs.timed(), epochs.cpu_s
        except RuntimeError as exc:
            if not torch_overflow(exc):
                raise
            record(epoch, math.nan, math.nan, epochs.closure.evals - before, Status.DIVERGED)
            raise _Diverged() from None
        record(epoch, seconds, cpu, epochs.closure.evals - before, Status.OK)
        if not math.isfinite(rows[-1]["train_loss"]) or not finite_state(model, opt):
            rows[-1]["status"] = Status.DIVERGED
            raise _Diverged()


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
