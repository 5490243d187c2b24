"""Fair comparisons: tune each method on the hold-out split, rerun the best over fresh seeds.

The protocol (DeepOBS, AlgoPerf, "Descending through a Crowded Valley"):
1. Grid: per problem and method, a log grid of learning rates centred on the suite's learning
   rate (optionally x momentum or beta1 values), every point from the same initial weights.
2. Selection: the point with the lowest final **hold-out** loss (median over the selection
   seeds). Training loss is never used; a diverged point scores +inf, so it never wins.
   Problems without a hold-out split cannot be tuned this way and are skipped (said so).
3. Reruns: the selected setting over fresh seeds (new initial weights, batch order and split),
   next to the method's library defaults over the same seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bench import claims
from bench.errors import ConfigError
from bench.runner import RunResult, run_all
from bench.spec import Problem, RunSpec, Suite, get_method

PHASES = ("grid", "tuned", "default", "claims")


@dataclass(frozen=True)
class SweepConfig:
    """The `[sweep]` table of a suite; validated on construction."""

    decades: float = 2.0  # grid spans lr x 10^[-decades, +decades]
    points_per_decade: int = 2
    momentum: tuple[float, ...] = ()  # extra axis for methods with momentum
    beta1: tuple[float, ...] = ()  # extra axis for the Adam family
    select_seeds: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (100, 101, 102, 103, 104)
    rel_tol: float = 0.01  # time-to-target: within 1% of the optimum ...
    target: float | None = None  # ... or this absolute training loss
    claims: bool = True  # rerun the notebooks' crops15 experiment and test its claims

    def __post_init__(self) -> None:
        if not (math.isfinite(self.decades) and self.decades > 0):
            raise ConfigError(f"sweep decades must be > 0, got {self.decades!r}")
        if self.points_per_decade < 1:
            raise ConfigError(f"sweep points_per_decade must be >= 1, got {self.points_per_decade}")
        for m in self.momentum:
            if not 0 <= m < 1:
                raise ConfigError(f"sweep momentum values must be in [0, 1), got {m!r}")
        for b in self.beta1:
            if not 0 <= b < 1:
                raise ConfigError(f"sweep beta1 values must be in [0, 1), got {b!r}")
        if not self.select_seeds or not self.seeds:
            raise ConfigError("sweep needs at least one selection seed and one rerun seed")
        if not (math.isfinite(self.rel_tol) and self.rel_tol >= 0):
            raise ConfigError(f"sweep rel_tol must be >= 0, got {self.rel_tol!r}")
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise ConfigError(f"sweep target must be a loss > 0, got {self.target!r}")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> SweepConfig:
        known = {f for f in cls.__dataclass_fields__}
        bad = sorted(set(table) - known)
        if bad:
            raise ConfigError(
                f"[sweep]: unknown key {', '.join(bad)}; allowed: {', '.join(sorted(known))}"
            )
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ConfigError(f"[sweep]: {exc}") from None

    def lr_factors(self) -> np.ndarray:
        k = round(self.decades * self.points_per_decade)
        return 10.0 ** (np.arange(-k, k + 1) / self.points_per_decade)


@dataclass(frozen=True)
class SweepResult:
    """Tidy tables of every run of the sweep, with `phase` and `label` columns.

    run_ids are prefixed with the phase: the tuned setting can coincide with the defaults, and
    the same spec then runs (deterministically, identically) once per phase.
    """

    epochs: pd.DataFrame
    runs: pd.DataFrame
    selection: pd.DataFrame  # per (problem, method): chosen hparams and its score
    skipped: list[str] = field(default_factory=list)  # problems that could not be tuned


def _tag(results: Sequence[RunResult], phase: str, labels: Sequence[str]) -> list[RunResult]:
    out = []
    for r, lab in zip(results, labels, strict=True):
        extra = {"phase": phase, "label": lab}
        rows = [{**row, **extra, "run_id": f"{phase}:{row['run_id']}"} for row in r.rows]
        summary = {**r.summary, **extra, "run_id": f"{phase}:{r.summary['run_id']}"}
        out.append(RunResult(r.spec, rows, summary))
    return out


def _with_hparams(spec: RunSpec, **hp: Any) -> RunSpec:
    return replace(spec, hparams=_frozen({**spec.hparams_dict, **hp}))


def grid_specs(suite: Suite, config: SweepConfig) -> tuple[list[RunSpec], list[str]]:
    """Every grid point of every tunable problem x method, for the selection seeds."""
    specs, skipped = [], []
    for problem in suite.problems:
        methods = problem.methods or suite.methods
        probe = suite.spec_for(problem, methods[0], "scratch", "cpu", config.select_seeds[0])
        if probe.holdout == 0:
            skipped.append(
                problem.dataset
                if problem.model == "linear"
                else f"{problem.dataset} · {problem.model}"
            )
            continue
        for name in methods:
            method = get_method(name)
            extra: list[dict[str, Any]] = [{}]
            if config.momentum and "momentum" in method.hparams:
                extra = [{"momentum": m} for m in config.momentum]
            elif config.beta1 and "betas" in method.hparam_names:
                beta2 = method.resolve()["betas"][1]
                extra = [{"betas": (b, beta2)} for b in config.beta1]
            for seed in config.select_seeds:
                base = suite.spec_for(problem, name, "scratch", "cpu", seed)
                for factor in config.lr_factors():
                    for e in extra:
                        specs.append(_with_hparams(base, lr=float(base.lr * factor), **e))
    return specs, skipped


def select(grid: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, method): the hparams with the lowest median final hold-out loss.

    `grid` is a runs table (one row per grid run). Diverged or non-finite hold-out losses
    count as +inf, so they never win; if every point diverged, `hparams` is None.
    """
    g = grid.copy()
    score = g["final_holdout_loss"].astype(float)
    g["score"] = score.where(np.isfinite(score) & (g["status"] != "diverged"), math.inf)
    rows = []
    for (dataset, model, method), h in g.groupby(["dataset", "model", "method"], sort=False):
        per_point = h.groupby("hparams", sort=False)["score"].median()
        best = per_point.idxmin() if np.isfinite(per_point).any() else None
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "method": method,
                "hparams": best,
                "score": per_point.min(),
                "points": len(per_point),
                "diverged_points": int((~np.isfinite(per_point)).sum()),
            }
        )
    return pd.DataFrame(rows)


def _frozen(hp: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in hp.items()))


def rerun_specs(
    suite: Suite, config: SweepConfig, selection: pd.DataFrame
) -> tuple[list[RunSpec], list[RunSpec]]:
    """(tuned, default) specs: the selected setting and the library defaults, fresh seeds."""
    problems = {_label(p): p for p in suite.problems}
    tuned, default = [], []
    for row in selection.itertuples():
        problem = problems[(row.dataset, row.model)]
        method = get_method(row.method)
        library = {**method.hparams, "lr": method.resolve()["lr"]}
        for seed in config.seeds:
            base = suite.spec_for(problem, row.method, "scratch", "cpu", seed)
            if row.hparams is not None:
                tuned.append(replace(base, hparams=_frozen(json.loads(row.hparams))))
            default.append(replace(base, hparams=_frozen(library)))
    return tuned, default


def _label(problem: Problem) -> tuple[str, str]:
    from bench.problem import load_dataset

    return load_dataset(problem.dataset, problem.targets, problem.features).name, problem.model


def run_sweep(suite: Suite, config: SweepConfig) -> SweepResult:
    """Grid -> selection -> tuned and default reruns (+ the notebooks' claims experiment)."""
    from bench.report import tables

    grid, skipped = grid_specs(suite, config)
    if not grid:
        raise ConfigError("nothing to sweep: no problem has a hold-out split (set holdout > 0)")
    results = _tag(run_all(grid, desc="sweep grid"), "grid", [s.method for s in grid])
    selection = select(tables(results)[1])
    tuned, default = rerun_specs(suite, config, selection)
    for phase, specs in (("tuned", tuned), ("default", default)):
        results += _tag(run_all(specs, desc=f"{phase} reruns"), phase, [s.method for s in specs])
    if config.claims:
        labelled = claims.claim_specs(config.seeds)
        batch = run_all([s for _, s in labelled], desc="notebook claims")
        results += _tag(batch, "claims", [lab for lab, _ in labelled])
    epochs, runs = tables(results)
    return SweepResult(epochs, runs, selection, skipped)
