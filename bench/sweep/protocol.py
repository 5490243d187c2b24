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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis import claims
from bench.analysis.tables import tables
from bench.errors import ConfigError
from bench.run.config import Suite
from bench.run.executors import Executor, run_all
from bench.run.runner import RunResult
from bench.run.spec import RunSpec, get_method
from bench.schema import Status, freeze_hparams
from bench.sweep.config import SweepConfig


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
    return replace(spec, hparams=freeze_hparams({**spec.hparams_dict, **hp}))


def grid_specs(suite: Suite, config: SweepConfig) -> tuple[list[RunSpec], list[str]]:
    """Every grid point of every tunable problem x method, for the selection seeds."""
    specs, skipped = [], []
    for problem in suite.problems:
        methods = problem.methods or suite.methods
        probe = suite.spec_for(problem, methods[0], "scratch", "cpu", config.select_seeds[0])
        if probe.holdout == 0:
            skipped.append(problem.label)
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
    """Per (problem, method): the hparams with the lowest median final hold-out loss.

    `grid` is a runs table (one row per grid run). Diverged or non-finite hold-out losses
    count as +inf, so they never win; if every point diverged, `hparams` is None.
    """
    g = grid.assign(score=selection_score(grid))
    rows = []
    for (problem, method), h in g.groupby(["problem", "method"], sort=False):
        per_point = h.groupby("hparams", sort=False)["score"].median()
        best = per_point.idxmin() if np.isfinite(per_point).any() else None
        rows.append(
            {
                "problem": problem,
                "method": method,
                "hparams": best,
                "score": per_point.min(),
                "points": len(per_point),
                "diverged_points": int((~np.isfinite(per_point)).sum()),
            }
        )
    return pd.DataFrame(rows)


def selection_score(runs: pd.DataFrame) -> pd.Series:
    """What selection minimises: the final hold-out loss, +inf where diverged or non-finite."""
    score = runs["final_holdout_loss"].astype(float)
    return score.where(np.isfinite(score) & (runs["status"] != Status.DIVERGED), math.inf)


def rerun_specs(
    suite: Suite, config: SweepConfig, selection: pd.DataFrame
) -> tuple[list[RunSpec], list[RunSpec]]:
    """(tuned, default) specs: the selected setting and the library defaults, fresh seeds."""
    tuned, default = [], []
    for row in selection.itertuples():
        problem = suite.problem(row.problem)
        method = get_method(row.method)
        library = {**method.hparams, "lr": method.resolve()["lr"]}
        for seed in config.seeds:
            base = suite.spec_for(problem, row.method, "scratch", "cpu", seed)
            if row.hparams is not None:
                tuned.append(replace(base, hparams=freeze_hparams(json.loads(row.hparams))))
            default.append(replace(base, hparams=freeze_hparams(library)))
    return tuned, default


def run_sweep(suite: Suite, config: SweepConfig, executor: Executor | None = None) -> SweepResult:
    """Grid -> selection -> tuned and default reruns (+ the notebooks' claims experiment)."""
    grid, skipped = grid_specs(suite, config)
    if not grid:
        raise ConfigError("nothing to sweep: no problem has a hold-out split (set holdout > 0)")
    results = _tag(run_all(grid, executor, desc="sweep grid"), "grid", [s.method for s in grid])
    selection = select(tables(results)[1])
    tuned, default = rerun_specs(suite, config, selection)
    for phase, specs in (("tuned", tuned), ("default", default)):
        batch = run_all(specs, executor, desc=f"{phase} reruns")
        results += _tag(batch, phase, [s.method for s in specs])
    if config.claims:
        labelled = claims.claim_specs(config.seeds)
        batch = run_all([s for _, s in labelled], executor, desc="notebook claims")
        results += _tag(batch, "claims", [lab for lab, _ in labelled])
    epochs, runs = tables(results)
    return SweepResult(epochs, runs, selection, skipped)
