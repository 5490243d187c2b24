"""The cases of `nox -s perf`: what is timed against what, at which sizes, with which target.

1. `step_case`: one optimizer step, scratch vs torch.optim's for-loop (and foreach, fused).
2. `harness_case`: an epoch through the runner (`runner.Epochs`) vs a hand-written loop.
3. `dataloader_case`: an epoch through the runner vs the seeds' TensorDataset + DataLoader loop.
4. `gd_limit_case`: a full-batch GD epoch vs its two matrix products X W^T and G^T X.
5. `scaling_case`: epoch time against n, with the log-log slope above the overhead floor.
6. `memory_case`: peak RSS of a full-batch run in a fresh process vs the dataset's bytes.

A case is built (data, models, optimizers: untimed), then `Case.round` is called once per round
(by pytest-benchmark's `pedantic` in tests/perf, or by `measure`), then `Case.rows()` gives its
perf.csv rows. Candidate and baseline always run the same optimizer class, model and data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import optimizers
from bench import runner
from bench.device import Backend, get_backend
from bench.models import ModelSpec
from bench.perf import (
    AT_MOST_1,
    Interleaved,
    Row,
    Target,
    above_floor,
    compare,
    judged,
    loglog_slope,
)
from bench.problem import device_tensors, load_dataset, problem_data, split_sizes
from bench.spec import RunSpec

REPO = Path(__file__).resolve().parent.parent


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


def measure(case: Case) -> list[Row]:
    """Run a case without pytest-benchmark: calibrate, warm-up rounds, measured rounds."""
    case.calibrate()
    for _ in range(case.warmup + case.rounds):
        case.round()
    return case.rows()


def _interleaved_case(
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
# 1. Optimizer step

#: Parameter shapes: the seeds' nn.Linear(3, 2); an MLP 100 -> 30 -> 1 (3,061 parameters); five
#: 447 x 447 layers with biases (1,001,280 parameters in 10 tensors).
PARAM_SETS: dict[str, tuple[tuple[int, ...], ...]] = {
    "tiny": ((2, 3), (2,)),
    "small": ((30, 100), (30,), (1, 30), (1,)),
    "large": ((447, 447), (447,)) * 5,
}
STEP_TARGETS = {"tiny": AT_MOST_1, "small": AT_MOST_1, "large": Target("<=", 1.10)}
TORCH_IMPLS = ("torch", "torch-foreach", "torch-fused")


def _params(size: str, device: str) -> list[torch.Tensor]:
    """Seeded parameters with fixed gradients (every impl gets equal copies)."""
    gen = torch.Generator().manual_seed(0)
    params = []
    for shape in PARAM_SETS[size]:
        p = torch.randn(shape, generator=gen).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).mul_(1e-2).to(device)
        params.append(p)
    return params


def step_case(method: str, size: str, device: str, scale: Scale) -> Case:
    backend = get_backend(device)
    opts = {
        impl: optimizers.build(method, _params(size, device), impl=impl)
        for impl in ("scratch", *TORCH_IMPLS)
    }
    timing = Interleaved(
        {impl: opt.step for impl, opt in opts.items()},
        backend=backend,
        warmup=scale.warmup,
        min_sample_s=scale.min_sample_s,
    )
    n_params = sum(p.numel() for p in opts["scratch"].param_groups[0]["params"])
    detail = f"{n_params} params in {len(PARAM_SETS[size])} tensors"

    def rows() -> list[Row]:
        labels = dict(case="1-step", method=method, size=size, device=device, detail=detail)
        out = [
            compare(
                timing,
                "scratch",
                "torch",
                target=STEP_TARGETS[size],
                impl="scratch",
                candidate="scratch step",
                baseline="torch step (for-loop)",
                **labels,
            )
        ]
        for impl in TORCH_IMPLS[1:]:
            out.append(
                compare(
                    timing,
                    impl,
                    "torch",
                    target=None,
                    impl=impl,
                    candidate=f"{impl} step",
                    baseline="torch step (for-loop)",
                    **labels,
                )
            )
        fastest = min(TORCH_IMPLS, key=lambda impl: timing.stats(impl).median)
        out.append(
            compare(
                timing,
                "scratch",
                fastest,
                target=None,
                impl="scratch",
                candidate="scratch step",
                baseline=f"fastest torch: {fastest}",
                **labels,
            )
        )
        return out

    return _interleaved_case(
        "1-step", timing, rows, scale.rounds, method=method, size=size, device=device
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

    The data come from `bench.problem.device_tensors`, as in `runner.run`; `batch_size=None`
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
    init = runner.initial_weights(data.name, model, data.d, data.k, spec.seed)
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


def _finite(*ts: Trainer) -> None:
    """Timings on NaN/inf weights would not be representative: check they stayed finite."""
    for t in ts:
        for p in t.model.parameters():
            if not torch.isfinite(p).all():
                raise FloatingPointError("weights became non-finite during a perf case")


def _dataset_label(t: Trainer, dataset: str) -> str:
    """A named dataset by its name, a synthetic one by its training shape (rows x features)."""
    if dataset.startswith("synthetic"):
        return f"{t.n}x{t.X.shape[1]}"
    return dataset.split(":", 1)[0]


# ----------------------------------------------------------------------------------------------
# 2. Harness overhead

HARNESS_TARGET = Target("<=", 1.10)


def harness_case(which: str, device: str, scale: Scale) -> Case:
    """`crops15` with B = 1 (`sgd`), or a d = 100 synthetic with B = 128 (`minibatch`)."""
    if which == "crops15":
        dataset, method, batch_size, lr = "crops15", "sgd", 1, 1e-5
    else:
        dataset, method, batch_size, lr = (
            f"synthetic:n={scale.harness_n}:d=100:k=1",
            "minibatch",
            128,
            1e-3,
        )
    run_t, hand_t = trainers(dataset, method, device, lr=lr, batch_size=batch_size)
    gen = torch.Generator().manual_seed(1)

    def hand_loop() -> None:
        """The textbook loop: reshuffle, index each batch by a slice of the permutation."""
        model, opt, X, Y, bs, n = hand_t.model, hand_t.opt, hand_t.X, hand_t.Y, batch_size, hand_t.n
        perm = torch.randperm(n, generator=gen).to(X.device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad()
            F.mse_loss(model(X[idx]), Y[idx]).backward()
            opt.step()

    timing = Interleaved(
        {"runner": runner_epoch(run_t), "hand": hand_loop},
        backend=run_t.backend,
        warmup=scale.warmup,
        min_sample_s=10 * scale.min_sample_s,
    )
    size = f"{_dataset_label(run_t, dataset)} B={batch_size}"

    def rows() -> list[Row]:
        _finite(run_t, hand_t)
        return [
            compare(
                timing,
                "runner",
                "hand",
                target=HARNESS_TARGET,
                case="2-harness",
                method=method,
                impl="scratch",
                size=size,
                device=device,
                candidate="runner epoch",
                baseline="hand-written loop",
                detail=f"{run_t.n} training rows, {-(-run_t.n // batch_size)} steps per epoch",
            )
        ]

    return _interleaved_case("2-harness", timing, rows, scale.rounds, size=size, device=device)


# ----------------------------------------------------------------------------------------------
# 3. Batching: the runner vs the seeds' DataLoader loop

DATALOADER_TARGETS = {128: Target(">=", 2.0), 1024: Target(">=", 10.0)}


def big_dataset(scale: Scale) -> str:
    return f"synthetic:n={scale.big_n}:d=100:k=1:dtype=float32"


def dataloader_case(batch_size: int, device: str, scale: Scale) -> Case:
    from torch.utils.data import DataLoader, TensorDataset

    dataset = big_dataset(scale)
    run_t, seed_t = trainers(dataset, "minibatch", device, lr=1e-3, batch_size=batch_size)
    loader = DataLoader(
        TensorDataset(seed_t.X, seed_t.Y),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )

    def seeds_loop() -> None:
        """The notebooks' loop: DataLoader(TensorDataset(X, Y), batch_size, shuffle=True)."""
        model, opt = seed_t.model, seed_t.opt
        for xb, yb in loader:
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()

    timing = Interleaved(
        {"runner": runner_epoch(run_t), "dataloader": seeds_loop},
        backend=run_t.backend,
        warmup=0,
    )
    size = f"{_dataset_label(run_t, dataset)} B={batch_size}"

    def rows() -> list[Row]:
        _finite(run_t, seed_t)
        return [
            compare(
                timing,
                "runner",
                "dataloader",
                target=DATALOADER_TARGETS.get(batch_size),
                speedup=True,
                case="3-dataloader",
                method="minibatch",
                impl="scratch",
                size=size,
                device=device,
                candidate="runner epoch",
                baseline="DataLoader loop",
                detail=f"{run_t.n} training rows of a {scale.big_n}-row float32 synthetic",
            )
        ]

    return _interleaved_case(
        "3-dataloader", timing, rows, scale.slow_rounds, size=size, device=device
    )


# ----------------------------------------------------------------------------------------------
# 4. Full-batch GD vs its two matrix products

GD_TARGET = Target("<=", 1.30)


def gd_limit_case(device: str, scale: Scale) -> Case:
    dataset = big_dataset(scale)
    (t,) = trainers(dataset, "gd", device, lr=1e-3, copies=1)
    weight = t.model.weight.detach().clone()  # k x d
    grad_out = torch.randn(t.n, weight.shape[0], device=t.X.device)  # n x k

    def matmuls() -> None:
        """The epoch's unavoidable work: the forward X W^T and the weight gradient G^T X."""
        torch.mm(t.X, weight.t())
        torch.mm(grad_out.t(), t.X)

    timing = Interleaved(
        {"gd": runner_epoch(t), "matmuls": matmuls},
        backend=t.backend,
        warmup=scale.warmup,
        min_sample_s=10 * scale.min_sample_s,
    )
    size = f"{_dataset_label(t, dataset)} full batch"

    def rows() -> list[Row]:
        _finite(t)
        return [
            compare(
                timing,
                "gd",
                "matmuls",
                target=GD_TARGET,
                case="4-gd-limit",
                method="gd",
                impl="scratch",
                size=size,
                device=device,
                candidate="runner GD epoch",
                baseline="X W^T + G^T X",
                detail=f"float32, {t.n} training rows x {t.X.shape[1]}",
            )
        ]

    return _interleaved_case("4-gd-limit", timing, rows, scale.rounds, size=size, device=device)


# ----------------------------------------------------------------------------------------------
# 5. Scaling with n

SCALING_BATCH = 128
SLOPE_TARGET = Target("to", 0.9, 1.1)


def scaling_case(method: str, device: str, scale: Scale) -> Case:
    """Epoch time of `gd` (full batch) or `minibatch` (B = 128) for each n, interleaved."""
    batch = None if method == "gd" else SCALING_BATCH
    ts = {}
    for n in scale.scaling_ns:
        dataset = f"synthetic:n={n}:d=100:k=1:dtype=float32"
        (ts[n],) = trainers(dataset, method, device, lr=1e-3, batch_size=batch, copies=1)
    timing = Interleaved(
        {f"n={n}": runner_epoch(t) for n, t in ts.items()},
        backend=get_backend(device),
        warmup=0,
    )

    def rows() -> list[Row]:
        _finite(*ts.values())
        ns = list(ts)
        medians = [timing.stats(f"n={n}").median for n in ns]
        first = above_floor(ns, medians)
        slope, _ = loglog_slope(ns[first:], medians[first:])
        label = "full batch" if batch is None else f"B={batch}"
        out = []
        for n, t in ts.items():
            s = timing.stats(f"n={n}")
            out.append(
                Row(
                    case="5-scaling",
                    method=method,
                    impl="scratch",
                    size=f"n={n}",
                    device=device,
                    median=s.median,
                    iqr=s.iqr,
                    unit="s",
                    rounds=timing.rounds,
                    ratio=float("nan"),
                    ratio_iqr=float("nan"),
                    target="",
                    met="",
                    metric="epoch time (a point of the curve)",
                    candidate="runner epoch",
                    baseline="",
                    baseline_median=float("nan"),
                    baseline_iqr=float("nan"),
                    detail=f"{t.n} training rows, {label}",
                )
            )
        target, met = judged(SLOPE_TARGET, slope)
        out.append(
            Row(
                case="5-scaling",
                method=method,
                impl="scratch",
                size=f"n={ns[first]}..{ns[-1]}",
                device=device,
                median=medians[-1],
                iqr=timing.stats(f"n={ns[-1]}").iqr,
                unit="s",
                rounds=timing.rounds,
                ratio=slope,
                ratio_iqr=float("nan"),
                target=target,
                met=met,
                metric=f"log-log slope of epoch time vs n, fitted for n >= {ns[first]}",
                candidate="runner epoch",
                baseline="",
                baseline_median=medians[0],
                baseline_iqr=timing.stats(f"n={ns[0]}").iqr,
                detail=f"{label}; median at the largest n; baseline = the smallest n's (floor)",
            )
        )
        return out

    rounds = scale.rounds if batch is None else scale.slow_rounds  # gd epochs are cheap
    return _interleaved_case("5-scaling", timing, rows, rounds, method=method, device=device)


# ----------------------------------------------------------------------------------------------
# 6. Memory

MEMORY_TARGET = Target("<=", 2.5)


def memory_dataset(n: int) -> str:
    return f"synthetic:n={n}:d=100:k=1:dtype=float32"


def memory_case(scale: Scale) -> Case:
    """A full-batch `gd` run through `runner.run` in a fresh process (bench.perf_memory)."""
    result: dict[str, Any] = {}

    def child() -> None:
        result.update(run_memory_child(scale.memory_n))

    def rows() -> list[Row]:
        peak, size = result["peak_rss_bytes"], result["dataset_bytes"]
        target, met = judged(MEMORY_TARGET, peak / size)
        return [
            Row(
                case="6-memory",
                method="gd",
                impl="scratch",
                size=f"{scale.memory_n}x100 full batch",
                device="cpu",
                median=float(peak),
                iqr=0.0,
                unit="bytes",
                rounds=1,
                ratio=peak / size,
                ratio_iqr=float("nan"),
                target=target,
                met=met,
                metric="peak RSS / dataset bytes",
                candidate="peak RSS of the run",
                baseline="dataset bytes (X and Y)",
                baseline_median=float(size),
                baseline_iqr=0.0,
                detail=(
                    f"fresh process, no hold-out, {result['epochs']} epochs; python + torch "
                    f"alone {result['baseline_rss_bytes'] / 1e6:.0f} MB"
                ),
            )
        ]

    return Case(group="6-memory", round=child, rows=rows, rounds=1, info={"n": scale.memory_n})


def run_memory_child(n: int) -> dict[str, Any]:
    """Run `python -m bench.perf_memory n` and return its JSON line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.perf_memory", str(n)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.perf_memory failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
