"""The cases of `nox -s perf`: what is timed against what, at which sizes, with which target.

1. `step_case`: one optimizer step, scratch vs torch.optim's for-loop (and foreach, fused).
2. `harness_case`: an epoch through the runner (`runner.Epochs`) vs a hand-written loop.
3. `dataloader_case`: an epoch through the runner vs the seeds' TensorDataset + DataLoader loop.
4. `gd_limit_case`: a full-batch GD epoch vs its two matrix products X W^T and G^T X.
5. `scaling_case`: epoch time against n, with the log-log slope above the overhead floor.
6. `memory_case`: peak RSS of a full-batch run in a fresh process vs the dataset's bytes.

A case is built (data, models, optimizers: untimed), then `Case.round` is called once per round
(by pytest-benchmark's `pedantic` in tests/perf), then `Case.rows()` gives its perf.csv rows.
Candidate and baseline always run the same optimizer class, model and data. One file per case;
this module holds what they share: sizes (`Scale`), the `Case` record and the trainers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import optimizers
from bench.perf.timing import Interleaved, Row
from bench.run import runner
from bench.run.data import device_tensors, load_dataset, problem_data, split_sizes
from bench.run.device import Backend, get_backend
from bench.run.models import ModelSpec
from bench.run.spec import RunSpec
from bench.run.tasks.base import initial_weights

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Scale:
    """Sizes and round counts: FULL for `nox -s perf`, SMALL to check the code runs (tests)."""

    name: str
    rounds: int  # measured rounds of the fast cases
    slow_rounds: int  # measured rounds of cases whose epoch takes seconds
    warmup: int  # rounds timed but dropped (fast cases; slow ones warm up in `calibrate`)
    min_sample_s: float  # one sample lasts at least this (calls per sample are calibrated)
    harness_n: int
    big_n: int
    scaling_ns: tuple[int, ...]
    memory_n: int


FULL = Scale(
    "full",
    rounds=31,
    slow_rounds=5,
    warmup=1,
    min_sample_s=0.004,
    harness_n=50_000,
    big_n=500_000,
    scaling_ns=(1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000),
    memory_n=1_000_000,
)
SMALL = Scale(
    "small",
    rounds=1,
    slow_rounds=1,
    warmup=0,
    min_sample_s=0.0,
    harness_n=2_000,
    big_n=4_000,
    scaling_ns=(300, 1_000, 3_000),
    memory_n=20_000,
)
SCALES = {s.name: s for s in (FULL, SMALL)}


@dataclass
class Case:
    """One benchmark: `round()` per round, then `rows()`; `info` goes to pytest-benchmark."""

    group: str
    round: Callable[[], object]
    rows: Callable[[], list[Row]]
    rounds: int
    warmup: int = 0
    calibrate: Callable[[], None] = lambda: None
    info: dict[str, Any] = field(default_factory=dict)


def interleaved_case(
    group: str,
    timing: Interleaved,
    rows: Callable[[], list[Row]],
    rounds: int,
    **info: Any,
) -> Case:
    return Case(
        group=group,
        round=timing.round,
        rows=rows,
        rounds=rounds,
        warmup=timing.warmup,
        calibrate=timing.calibrate,
        info=info,
    )


# ----------------------------------------------------------------------------------------------
# Shared set-up of the epoch cases: the runner's data path, model and optimizer


@dataclass
class Trainer:
    """Data (the runner's device tensors), a model at the run's initial weights, an optimizer."""

    X: torch.Tensor
    Y: torch.Tensor
    model: nn.Module
    opt: torch.optim.Optimizer
    batch_size: int
    backend: Backend

    @property
    def n(self) -> int:
        return self.X.shape[0]


def trainers(
    dataset: str,
    method: str,
    device: str,
    *,
    lr: float,
    batch_size: int | None = None,
    copies: int = 2,
    model: str = "linear",
) -> list[Trainer]:
    """`copies` trainers on the same data from the same start (one per variant of a case).

    The data come from `bench.run.data.device_tensors`, as in `runner.run`; `batch_size=None`
    means full batch.
    """
    holdout = load_dataset(dataset, None, None).default_holdout
    n_train = split_sizes(dataset, None, None, holdout)[0]
    spec = RunSpec(
        dataset=dataset,
        method=method,
        model=model,
        hparams=(("lr", lr),),
        batch_size=batch_size or n_train,
        device=device,
        holdout=holdout,
    )
    data = problem_data(*spec.problem_key)
    X, Y = device_tensors(spec.problem_key, device, spec.dtype)[:2]
    init = initial_weights(data.name, model, data.d, data.k, spec.seed)
    out = []
    for _ in range(copies):
        net = ModelSpec.parse(model).build(data.d, data.k)
        net.load_state_dict(init)
        net.to(device=device)
        opt = optimizers.build(method, net.parameters(), impl=spec.impl, lr=lr)
        out.append(Trainer(X, Y, net, opt, spec.batch_size, get_backend(device)))
    return out


def runner_epoch(t: Trainer, seed: int = 0) -> Callable[[], float]:
    """An epoch through the runner: `runner.Epochs.timed`, exactly as `runner.run` calls it."""
    gen = torch.Generator().manual_seed(seed)
    return runner.Epochs(t.model, t.opt, t.X, t.Y, t.batch_size, gen, t.backend).timed


def check_finite(*ts: Trainer) -> None:
    """Timings on NaN/inf weights would not be representative: check they stayed finite."""
    for t in ts:
        for p in t.model.parameters():
            if not torch.isfinite(p).all():
                raise FloatingPointError("weights became non-finite during a perf case")


def dataset_label(t: Trainer, dataset: str) -> str:
    """A named dataset by its name, a synthetic one by its training shape (rows x features)."""
    if dataset.startswith("synthetic"):
        return f"{t.n}x{t.X.shape[1]}"
    return dataset.split(":", 1)[0]


def big_dataset(scale: Scale) -> str:
    return f"synthetic:n={scale.big_n}:d=100:k=1:dtype=float32"
