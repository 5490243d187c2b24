"""`vectorised`: a group of compatible runs as one program over stacked parameters.

Compatible: same problem (dataset, targets, features, hold-out, scaling, task), model, method
(its from-scratch implementation) with the same branches (momentum or not, weight decay or not,
Nesterov, AMSGrad, maximize), batch size, epochs and dtype, on the CPU; the runs may differ in
every hyperparameter value (lr, momentum, dampening, betas, eps, weight decay) and in the seed.

What each run sees is what `runner.run` gives it: its own split and initial weights (a group
mixing seeds gathers each run's rows from its own data), its own shuffle generator seeded with
`runner.shuffle_seed` and drawn once per epoch, the same batches, the per-run update of
`optimizers.transforms` with its own hyperparameters (`updates`), evaluation after every
epoch on the whole training and hold-out sets, and divergence at the same epoch (a non-finite
loss, parameter or optimizer state; an overflowing update scalar, at the step torch raises
it): a diverged run stops and the others go on. Rows and summaries have `runner.run`'s keys and
meaning, plus `engine`; epoch times are not measured here (NaN: a group's wall time says nothing
about one run's cost).

Same numbers: element-wise updates, reductions and the losses are bitwise those of the per-run
path; a matrix product is bitwise where torch's batched product takes the same kernel as the
per-run one, which it does from 400 multiply-adds up (`layout.product`). Below that torch sums
in its own loop, in order, where MKL's small-matrix kernels sometimes do not (measured: dot
products of 10 features at batch 32 or 1, some 2-5-term products with 16 or more outputs):
there the runs differ by float32 rounding (diabetes and synthetic:n=500 with mini-batches,
within 1.4e-6 relative over 100 epochs, see tests/run/test_engines.py). A run's numbers never
depend on its group: its size, its other runs or its place in it (`layout`). Because they can
differ from the per-run engine's, the result store keys a vectorised run apart
(`bench.store.keys.run_key`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

import optimizers
from bench.run import schedules, tasks
from bench.run.data import DTYPE, device_tensors
from bench.run.engines import VECTORISED, register, tag
from bench.run.engines.vectorised.layout import MIN_RUNS, Flat, padded_rows
from bench.run.engines.vectorised.losses import LOSSES
from bench.run.engines.vectorised.models import STACKED
from bench.run.engines.vectorised.updates import StackedAdam, StackedSGD
from bench.run.models import ModelSpec
from bench.run.runner import RunResult, _row, _summary, base_columns, shuffle_seed
from bench.run.seeding import tensor_hash
from bench.run.spec import RunSpec
from bench.schema import METRIC_COLUMNS, Status

#: The scratch optimizer classes this engine reproduces, and their stacked form.
RULES: dict[type, Any] = {
    optimizers.SGD: StackedSGD,
    optimizers.Adam: StackedAdam,
    optimizers.AdamW: partial(StackedAdam, decoupled=True),
}
MAX_RUNS = 1024  # per group (a task of an executor)
MEMORY_BUDGET_BYTES = 256 * 2**20  # per program: larger groups are computed in parts
_STRUCTURE = {optimizers.SGD: StackedSGD, optimizers.Adam: StackedAdam,
              optimizers.AdamW: StackedAdam}  # fmt: skip

NO_TIMING = {
    "median_epoch_time_s": math.nan,
    "iqr_epoch_time_s": math.nan,
    "total_time_s": math.nan,
    "total_cpu_s": math.nan,
    "disturbed_epochs": 0,
    "time_stats_exclude_disturbed": False,
}


@register
class Vectorised:
    name = VECTORISED

    def key(self, spec: RunSpec) -> Hashable | None:
        if spec.device != "cpu" or spec.impl != "scratch" or spec.task not in LOSSES:
            return None
        if spec.optimizer or spec.inner or spec.groups or schedules.parse(spec.schedule).target:
            return None  # plug-ins, wrappers, parameter groups, imported schedulers: per-run
        model = ModelSpec.parse(spec.model)
        if model.plugin is not None or model.kind not in STACKED:
            return None
        task = tasks.get(spec.task)
        if task.records and model.kind != "theta":
            return None
        method = optimizers.get(spec.method)
        if method.plugin is not None or method.scratch not in RULES:
            return None
        structure = _STRUCTURE[method.scratch].structure(method.resolve(**spec.hparams_dict))
        return (
            spec.dataset, spec.targets, spec.features, spec.holdout, spec.standardize,
            spec.task, spec.model, spec.method, spec.batch_size, spec.epochs, spec.dtype,
            spec.schedule, method.scratch.__name__, structure,
        )  # fmt: skip

    def capacity(self, spec: RunSpec) -> int:
        return MAX_RUNS

    def run(self, specs: Sequence[RunSpec], timeout: float | None = None) -> list[RunResult]:
        """The group's runs (built-in methods and models only: nothing that could hang, so
        `timeout` is not needed here)."""
        specs = list(specs)
        size = _runs_per_program(specs[0])
        out: list[RunResult] = []
        for i in range(0, len(specs), size):
            out += Program(specs[i : i + size]).run()
        return out


def _runs_per_program(spec: RunSpec) -> int:
    """Runs whose stacked data, buffers and parameters fit MEMORY_BUDGET_BYTES (>= 1)."""
    task = tasks.get(spec.task)
    data = task.data(spec)
    X, Y = data.X_train, data.Y_train
    item = DTYPE[spec.dtype].itemsize
    width = X.shape[1] + (1 if Y.ndim == 1 else Y.shape[1]) + data.k
    rows = 3 * X.shape[0] + 2 * data.X_hold.shape[0]
    per_run = item * width * rows * 4 + 4096
    return max(1, min(MAX_RUNS, MEMORY_BUDGET_BYTES // per_run))


class Program:
    """One group's runs, computed together (see the module docstring)."""

    def __init__(self, specs: Sequence[RunSpec]) -> None:
        self.specs = list(specs)
        spec = self.specs[0]
        self.task = tasks.get(spec.task)
        self.dtype = DTYPE[spec.dtype]
        self.batch_size, self.epochs = spec.batch_size, spec.epochs
        self.datas = [self.task.data(s) for s in self.specs]
        data = self.datas[0]
        self.loss = LOSSES[spec.task](spec, data)
        self.n = data.X_train.shape[0]
        self.n_hold = data.X_hold.shape[0]
        self.shuffle = self.batch_size < self.n
        used = self.n - self.n % self.batch_size if self.task.drop_last else self.n
        self.bounds = [(a, min(a + self.batch_size, used)) for a in range(0, used, self.batch_size)]
        self._sources()
        self._start()

    # -- set-up --------------------------------------------------------------------------------

    def _sources(self) -> None:
        """Each distinct data set of the group once, rows padded so that every run's rows start
        on a 64-byte boundary; `self.source[i]` is the data set of run i."""
        keys: dict[tuple, int] = {}
        self.source = [keys.setdefault(s.problem_key, len(keys)) for s in self.specs]
        first = {u: i for i, u in reversed(list(enumerate(self.source)))}
        tensors = [device_tensors(self.specs[first[u]].problem_key, "cpu", self.specs[0].dtype)
                   for u in range(len(keys))]  # fmt: skip

        def stack(part: int, n: int) -> Tensor:
            # Rows padded so that each run's features start on a 64-byte boundary; the targets
            # get as many rows (one index gathers both), they are never a matrix operand.
            padded = padded_rows(
                max(n, 1), max(1, tensors[0][part - part % 2].shape[1]), self.dtype
            )
            rows = [t[part] for t in tensors]
            out = rows[0].new_zeros(len(rows), padded, *rows[0].shape[1:])
            for u, r in enumerate(rows):
                out[u, :n] = r
            return out

        self.X, self.Y = stack(0, self.n), stack(1, self.n)
        self.Xh, self.Yh = stack(2, self.n_hold), stack(3, self.n_hold)

    def _start(self) -> None:
        """Initial weights (as `task.model` builds them), hashes, shuffle generators, optimizer."""
        spec = self.specs[0]
        method = optimizers.get(spec.method)
        starts: dict[tuple, tuple[dict[str, Tensor], str]] = {}
        states, self.bases, self.stars = [], [], []
        for s, data in zip(self.specs, self.datas, strict=True):
            key = (s.problem_key, s.model)
            if key not in starts:
                model = self.task.model(s, data).to(dtype=self.dtype)
                named = {n: p.detach().clone() for n, p in model.named_parameters()}
                starts[key] = (named, tensor_hash(model.state_dict()))
            named, init_hash = starts[key]
            states.append(named)
            self.bases.append(tag(base_columns(s, data, init_hash), VECTORISED))
            self.stars.append(self.task.optimum(s, data))
        names = list(states[0])
        self.layout = Flat(names, [states[0][n].shape for n in names], self.dtype)
        self.model = STACKED[ModelSpec.parse(spec.model).kind](names)
        hparams = [method.resolve(**s.hparams_dict) for s in self.specs]
        # Positions of the stack: run index, or None for a companion that keeps the stack at
        # MIN_RUNS (a copy of a run, with its own generator and state, never reported).
        ids: list[int | None] = list(range(len(self.specs)))
        while len(ids) < MIN_RUNS:
            ids.append(None)
        self.ids = ids
        runs = [i if i is not None else 0 for i in ids]
        self.flat = self.layout.zeros(len(ids))
        for view, name in zip(self.layout.views(self.flat), names, strict=True):
            view.copy_(torch.stack([states[i][name] for i in runs]))
        self.opt = RULES[method.scratch]([hparams[i] for i in runs], self.dtype)
        schedule = schedules.parse(spec.schedule)
        if not schedule.is_constant:
            total = self.epochs * len(self.bounds)
            self.opt.factor = lambda t: schedule.factor(t, total)
        self.gens = [
            torch.Generator().manual_seed(
                shuffle_seed(self.datas[i].name, self.specs[i].seed, self.batch_size)
            )
            for i in runs
        ]
        self.pos_source = torch.tensor([self.source[i] for i in runs])
        self._copies: dict[int, Tensor] = {}

    # -- the runs ------------------------------------------------------------------------------

    def run(self) -> list[RunResult]:
        K = len(self.specs)
        rows: list[list[dict[str, Any]]] = [[] for _ in range(K)]
        status = [Status.OK] * K
        self._rates()
        for pos, (metrics, record) in enumerate(self._evaluate()):
            i = self.ids[pos]
            if i is not None:
                rows[i].append(self._row(i, 0, metrics, Status.OK, record))
        steps = len(self.bounds)
        for epoch in range(1, self.epochs + 1):
            first = self.opt.t + 1
            rates = self.opt.rates(first, steps)
            overflow = self.opt.overflow_steps(first, rates).tolist()
            stops: dict[int, list[int]] = {}
            for pos, step in enumerate(overflow):
                if step:
                    stops.setdefault(step - first, []).append(pos)
            saved = self._train_epoch(self.opt.coefficients(first, rates), stops)
            for pos, row in saved.items():  # an overflow: the run stopped before that step
                self.flat[pos] = row
            finite = self._finite_state()
            self._rates()
            keep = []
            for pos, (metrics, record) in enumerate(self._evaluate()):
                i = self.ids[pos]
                if i is None:
                    continue
                bad = pos in saved or not math.isfinite(metrics["train_loss"]) or not finite[pos]
                if bad:
                    status[i] = Status.DIVERGED
                else:
                    keep.append(pos)
                rows[i].append(self._row(i, epoch, metrics, status[i], record))
                if pos in saved:  # stopped at its overflowing step, as runner.run stops there
                    step = next(s for s, where in stops.items() if pos in where)
                    rows[i][-1]["evals"] = step + 1  # that step's evaluation came first
                    rows[i][-1]["lr"] = self._rate_at(pos, first - 1 + step)
            if not keep:
                break
            if len(keep) < len(self.ids):
                self._select(keep)
        out = []
        for i, spec in enumerate(self.specs):
            data = self.datas[i]
            summary = _summary(
                self.bases[i], rows[i], dict(NO_TIMING), status[i], data, spec, len(self.bounds),
                self.stars[i],
            )  # fmt: skip
            summary["error"] = ""
            out.append(RunResult(spec, rows[i], summary))
        return out

    def _rates(self) -> None:
        """Each run's rate the next step would use (the `lr` column), by run index."""
        rates = self.opt.rate_after().tolist()
        self._rate_after = {i: rates[pos] for pos, i in enumerate(self.ids) if i is not None}

    def _rate_at(self, pos: int, steps_done: int) -> float:
        """The rate of stack position `pos` after `steps_done` steps (its schedule's)."""
        lr = float(self.opt.lr[pos])
        return lr if self.opt.factor is None else lr * self.opt.factor(steps_done)

    def _row(
        self, i: int, epoch: int, metrics: dict[str, float], status: str, record: list[float]
    ) -> dict[str, Any]:
        """`runner.run`'s row (the base carries `engine`); no epoch time: NaN after epoch 0."""
        seconds = 0.0 if epoch == 0 else math.nan
        row = _row(self.bases[i], epoch, metrics, seconds, seconds, status)
        row["elapsed_s"] = seconds
        row["lr"] = self._rate_after[i]
        row["evals"] = len(self.bounds) if epoch else 0  # one evaluation per step
        if record:
            row.update(zip(self.task.records, record, strict=True))
        return row

    def _select(self, keep: list[int]) -> None:
        """Keep the stack positions `keep` (a diverged run leaves), at least MIN_RUNS."""
        ids = [self.ids[p] for p in keep]
        gens = [self.gens[p] for p in keep]
        while len(keep) < MIN_RUNS:  # a companion: a copy of the last run, its own generator
            keep.append(keep[-1])
            ids.append(None)
            companion = torch.Generator()
            companion.set_state(gens[-1].get_state())
            gens.append(companion)
        index = torch.tensor(keep)
        self.ids, self.gens = ids, gens
        self.flat = self.flat.index_select(0, index)
        self.opt.select(index)
        self.pos_source = self.pos_source[index]
        self._copies = {}

    def _train_epoch(
        self, coefficients: list[dict[str, Tensor]], stops: dict[int, list[int]]
    ) -> dict[int, Tensor]:
        """One epoch of every run; returns the parameters of runs whose update overflowed, as
        they were before the step that overflowed."""
        X, Y = self._epoch_data()
        params = self.layout.views(self.flat)
        saved: dict[int, Tensor] = {}
        for s, (a, b) in enumerate(self.bounds):
            for pos in stops.get(s, ()):
                saved.setdefault(pos, self.flat[pos].clone())
            out, cache = self.model.forward(params, X[:, a:b])
            grads = self.model.backward(params, cache, self.loss.grad(out, Y[:, a:b]))
            self.opt.step(self.flat, self.layout.pack(grads), coefficients[s])
        return saved

    def _epoch_data(self) -> tuple[Tensor, Tensor]:
        """[K, rows, ...] training data of every run in this epoch's order (its own
        `randperm`, drawn as `runner.Epochs.timed` draws it), rows padded for alignment."""
        if not self.shuffle:
            return self._per_run(self.X), self._per_run(self.Y)
        runs, padded = len(self.ids), self.X.shape[1]
        perms = torch.stack([torch.randperm(self.n, generator=g) for g in self.gens])
        offsets = (self.pos_source * padded).unsqueeze(1)
        index = offsets.expand(runs, padded).clone()
        index[:, : self.n] += perms
        index = index.reshape(-1)
        X = self.X.reshape(-1, *self.X.shape[2:]).index_select(0, index)
        Y = self.Y.reshape(-1, *self.Y.shape[2:]).index_select(0, index)
        return X.view(runs, padded, *self.X.shape[2:]), Y.view(runs, padded, *self.Y.shape[2:])

    def _per_run(self, source: Tensor) -> Tensor:
        """[K, ...] each run's own copy of its data set (kept until the runs change). Never a
        stride-0 view of one shared copy: MKL's batched GEMM treats a repeated matrix apart
        (measured: 354 x 10 times 10 x 1 then sums in another order)."""
        key = id(source)
        if key not in self._copies:
            self._copies[key] = source.index_select(0, self.pos_source)
        return self._copies[key]

    def _finite_state(self) -> list[bool]:
        ok = self.layout.finite(self.flat)
        for state in self.opt.state.values():
            ok &= self.layout.finite(state)
        return ok.tolist()

    def _evaluate(self) -> list[tuple[dict[str, float], list[float]]]:
        """Loss and metrics of every stack position on the whole training and hold-out sets,
        and the task's records (θ of a 2-D function)."""
        params = self.layout.views(self.flat)
        names, values = [], []
        for split, X, Y, n in (("train", self.X, self.Y, self.n),
                               ("holdout", self.Xh, self.Yh, self.n_hold)):  # fmt: skip
            if not n:
                continue
            x, y = self._per_run(X)[:, :n], self._per_run(Y)[:, :n]
            out, _ = self.model.forward(params, x)
            for name, value in self.loss.evaluate(out, y).items():
                names.append(f"{split}_{name}")
                values.append(value.to(torch.float64))
        found = dict(zip(names, values, strict=True))
        missing = torch.full((len(self.ids),), math.nan, dtype=torch.float64)
        table = torch.stack([found.get(c, missing) for c in METRIC_COLUMNS], dim=1).tolist()
        records = params[0].tolist() if self.task.records else [[]] * len(table)
        return [
            (dict(zip(METRIC_COLUMNS, row, strict=True)), record)
            for row, record in zip(table, records, strict=True)
        ]
