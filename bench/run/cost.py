"""Cost per epoch, measured apart from the runs: interleaved rounds and a measured noise floor.

A run's losses are a pure function of its spec; what one of its epochs *costs* depends on the
machine at the moment it is timed. On a shared machine, contention that lasts a whole run
shifts every epoch of that run alike, and no filter on the run's own epochs can see it: twins
doing the same arithmetic came out 0.22x to 4.5x apart when each was timed during its own run.
So cost is a measurement of its own, made for every run of a problem together:

1. Each run's workload is rebuilt from its spec (model at the run's initial weights, its
   optimizer, schedule, batch order and closure), in train mode, exactly as `runner.run` trains,
   and warmed up (one untimed epoch each).
   A training run does its epochs back to back, with its data and code hot in the caches;
   between two turns of a workload here, the others run. So a workload whose epoch is short
   (under `MIN_SAMPLE_S`, where that matters: a crops15 epoch cost 0.16 ms back to back and
   0.27 ms cold, measured) does one untimed epoch right before its timed ones, and times as
   many epochs back to back as make a sample of `MIN_SAMPLE_S` (a sample's cost per epoch is
   its time / epochs: the clocks' and the scheduler's granularity stay small beside it).
2. Rounds: every workload of the problem times one epoch (`runner.Epochs.timed`: shuffle and
   steps, after a device barrier, CUDA events on a GPU), in an order shuffled afresh each round
   (the alternation pyperf and hyperfine use), so that contention at any moment falls on every
   workload alike instead of on one run. A workload whose state became non-finite starts again
   from its initial weights (a diverged run's epochs still have a cost).
3. What an epoch costs is its CPU time (the process's, with torch's threads pinned: one by
   default, so the epoch's compute); on CUDA, where the host's CPU time measures launches and
   waiting, its wall time by CUDA events. CPU time leaves out the time the process waited for a
   core: measured here on 2 cores shared with other work (load average 3.3-4), the
   scratch/torch.optim cost ratio of a (problem, method) varied across 5 seeds by 1.03-1.17x
   (max/min) with the median CPU time, and by 1.08-5.1x with the median wall time. Both are
   recorded (`cpu_s`, `seconds`); `cost_s` is the one used.
   Rounds continue until every workload's median cost has a 95% interval (order statistics)
   within `rel_width` of it, or the problem's share of the time budget is spent (at least
   `min_rounds`, at most `max_rounds`).
4. The noise floor: one workload of each problem is timed twice per round, as itself and as an
   identical copy (`copy` rows). How far two identical workloads drift apart today, together with
   the scratch/torch.optim twins (same arithmetic), is the floor under which no difference in
   cost is a difference (`bench.analysis.cost`).

The result is a tidy table, one row per (workload, round): `run_id, problem, device, method,
impl, seed, batch_size, copy, round, position, seconds, cpu_s, cost_s`. Runs that failed or
timed out are not measured. Everything runs serially in this process with torch's threads
pinned, the same count as the runs, after the runs (and any Dask cluster) are done.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from bench.run import schedules, tasks
from bench.run.data import DTYPE, device_tensors
from bench.run.device import Backend, get_backend
from bench.run.runner import Epochs, build_optimizer, finite_state, set_mode, shuffle_seed
from bench.run.seeding import derive_seed
from bench.run.spec import RunSpec
from bench.schema import Status, problem_name

MIN_SAMPLE_S = 2e-3
COLUMNS = [
    "run_id", "problem", "device", "method", "impl", "seed", "batch_size", "copy", "round",
    "position", "seconds", "cpu_s", "cost_s",
]  # fmt: skip


@dataclass(frozen=True)
class CostConfig:
    """How long to measure: `budget_s` seconds in all (shared by the problems), at least
    `min_rounds` and at most `max_rounds` rounds per problem, stopping early once every median's
    95% interval is within `rel_width` of it."""

    budget_s: float = 20.0
    min_rounds: int = 5
    max_rounds: int = 60
    rel_width: float = 0.03
    seed: int = 0


def median_interval(samples: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(median, lo, hi): the distribution-free interval of the median from order statistics
    (the j-th and k-th smallest samples with Binomial(n, 1/2) mass >= level between them);
    with fewer than 6 samples no such interval exists and it is (min, max)."""
    x = sorted(v for v in samples if math.isfinite(v))
    n = len(x)
    if not n:
        return math.nan, math.nan, math.nan
    med = statistics.median(x)
    cdf, j = 0.0, 0
    while j < n and cdf + math.comb(n, j) / 2**n <= (1 - level) / 2:
        cdf += math.comb(n, j) / 2**n
        j += 1
    if j == 0:
        return med, x[0], x[-1]
    return med, x[j - 1], x[n - j]


class Workload:
    """One run's epochs, rebuilt from its spec and advanced one timed epoch at a time."""

    def __init__(self, spec: RunSpec, backend: Backend, buffers: dict[Any, Any]) -> None:
        self.spec, self.backend, self._buffers = spec, backend, buffers
        self.reset()

    def reset(self) -> None:
        spec = self.spec
        task = tasks.get(spec.task)
        data = task.data(spec)
        X, Y = device_tensors(spec.problem_key, spec.device, spec.dtype)[:2]
        model = task.model(spec, data).to(device=self.backend.torch_device, dtype=DTYPE[spec.dtype])
        opt = build_optimizer(spec, model)
        n = X.shape[0]
        steps = n // spec.batch_size if task.drop_last else math.ceil(n / spec.batch_size)
        schedule = schedules.parse(spec.schedule).build(opt, spec.epochs * steps)
        gen = torch.Generator().manual_seed(shuffle_seed(data.name, spec.seed, spec.batch_size))
        key = (spec.problem_key, spec.device, spec.dtype)
        self.epochs = Epochs(
            model, opt, X, Y, spec.batch_size, gen, self.backend, task.loss_for(spec, data),
            task.drop_last, schedule, exact=bool(spec.optimizer),
            buffers=self._buffers.setdefault(key, (torch.zeros_like(X), torch.zeros_like(Y))),
        )  # fmt: skip
        self.problem = spec.problem or problem_name(data.name, spec.model)
        self.name = data.name
        set_mode(model, opt, "train")
        torch.manual_seed(derive_seed("torch-rng", data.name, spec.model, spec.seed))

    def timed(self) -> tuple[float, float]:
        """One epoch: (wall seconds, CPU seconds)."""
        seconds = self.epochs.timed()
        return seconds, self.epochs.cpu_s

    def finite(self) -> bool:
        return finite_state(self.epochs.model, self.epochs.opt)


def measure(
    specs: Sequence[RunSpec],
    config: CostConfig = CostConfig(),
    backend_for: Callable[[str], Backend] = get_backend,
    say: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The cost table of `specs` (one row per workload and round), problem by problem."""
    groups: dict[tuple[str, str], list[RunSpec]] = {}
    for spec in dict.fromkeys(specs):
        groups.setdefault((spec.problem or spec.dataset, spec.device), []).append(spec)
    rows: list[dict[str, Any]] = []
    share = config.budget_s / max(1, len(groups))
    with torch.random.fork_rng(devices=[]):
        for i, ((label, device), group) in enumerate(groups.items()):
            if say is not None:
                say(f"timing: {label} ({len(group)} runs, problem {i + 1} of {len(groups)})")
            rows += _measure_problem(group, backend_for(device), config, share)
    return rows


def _measure_problem(
    specs: Sequence[RunSpec], backend: Backend, config: CostConfig, budget: float
) -> list[dict[str, Any]]:
    buffers: dict[Any, Any] = {}
    workloads: list[tuple[Workload, bool]] = []
    for spec in specs:
        try:
            workloads.append((Workload(spec, backend, buffers), False))
        except Exception:  # a plug-in that cannot be rebuilt: no cost, as its run said
            continue
    if not workloads:
        return []
    first = workloads[0][0]
    workloads.append((Workload(first.spec, backend, buffers), True))  # the identical copy
    alive, reps = [], {}
    for w, copy in workloads:  # warm-up: first-call costs stay out of the rounds
        try:
            w.timed()
            once = w.timed()[0]
            reps[id(w)] = max(1, min(100, math.ceil(MIN_SAMPLE_S / max(once, 1e-9))))
            alive.append((w, copy))
        except Exception:
            continue
    rng = random.Random(derive_seed("cost", config.seed, first.problem))
    rows: list[dict[str, Any]] = []
    samples: dict[int, list[float]] = {id(w): [] for w, _ in alive}
    start = time.monotonic()
    for r in range(config.max_rounds):
        order = list(alive)
        rng.shuffle(order)
        for position, (w, copy) in enumerate(order):
            try:
                k = reps[id(w)]
                if k > 1:
                    w.timed()  # untimed: caches as a run's previous epoch leaves them
                seconds = cpu = 0.0
                for _ in range(k):
                    wall, own = w.timed()
                    seconds, cpu = seconds + wall / k, cpu + own / k
            except Exception:  # e.g. torch's overflow of a diverged run's update: start again
                w.reset()
                continue
            cost = cpu if backend.cpu_time_meaningful else seconds
            samples[id(w)].append(cost)
            rows.append({**_row(w, copy, r, position, seconds, cpu), "cost_s": cost})
            if not w.finite():
                w.reset()
        done = r + 1 >= config.min_rounds and (
            time.monotonic() - start >= budget
            or all(_tight(s, config.rel_width) for s in samples.values())
        )
        if done:
            break
    return rows


def _tight(samples: Sequence[float], rel_width: float) -> bool:
    med, lo, hi = median_interval(samples)
    return math.isfinite(med) and med > 0 and (hi - lo) / 2 <= rel_width * med


def _row(w: Workload, copy: bool, r: int, position: int, seconds: float, cpu: float) -> dict:
    spec = w.spec
    return {
        "run_id": spec.run_id,
        "problem": w.problem,
        "device": spec.device,
        "method": spec.method,
        "impl": spec.impl,
        "seed": spec.seed,
        "batch_size": spec.batch_size,
        "copy": copy,
        "round": r,
        "position": position,
        "seconds": seconds,
        "cpu_s": cpu,
    }


def measurable(summaries: Sequence[dict[str, Any]]) -> set[str]:
    """run_ids whose cost can be measured: runs that did not fail or time out."""
    return {s["run_id"] for s in summaries if s.get("status") in (Status.OK, Status.DIVERGED)}
