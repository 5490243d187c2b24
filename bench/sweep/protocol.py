"""Fair comparisons: tune each method on the hold-out split, rerun the best over fresh seeds.

The protocol (DeepOBS, AlgoPerf, "Descending through a Crowded Valley"):
1. Grid: per problem and method, a log grid of learning rates centred on the suite's learning
   rate (optionally x momentum or beta1 values), every point from the same initial weights.
2. Selection: the point with the lowest final **hold-out** loss (median over the selection
   seeds). Training loss is never used; a diverged point scores +inf, so it never wins.
   Problems without a hold-out split cannot be tuned this way and are skipped (said so).
   Edges: where the selected learning rate is the smallest or largest of its grid, the grid is
   extended one point beyond it (same spacing, same initial weights, all other axes) and the
   selection repeated, up to `SweepConfig.max_extensions` points per side. A selection still
   at an edge afterwards (bound reached, or the points beyond it diverged) is flagged in
   `selection.csv` (`at_edge`: "low" or "high", with "(beyond: diverged)" where that is why).
3. Reruns: the selected setting over fresh seeds (a new batch order; new initial weights and
   a new split where the problem draws them), next to the method's registered defaults over
   the same seeds.
Every phase runs one implementation on one device: the first of the suite's `impls` and
`devices` (`--impl`, `--devices`), so a sweep on a GPU is `--devices cuda`; `where(suite)` says
which, and the report says so. The notebooks' claims run when the suite has their problem
(crops15), or when `[sweep] claims = true` asks for them.
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
from bench.run.config import Problem, Suite
from bench.run.executors import Executor
from bench.run.runner import RunResult
from bench.run.spec import RunSpec
from bench.schema import Status, freeze_hparams
from bench.store import CachedRuns, Store
from bench.sweep.config import SweepConfig
from optimizers import Method

Entry = tuple[RunSpec, str, str]  # (spec, phase, label): one run of the sweep


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
    entries: list[Entry] = field(default_factory=list)  # every run, in order (the manifest)


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


def _extra_axes(method: Method, config: SweepConfig) -> list[dict[str, Any]]:
    if config.momentum and "momentum" in method.hparams:
        return [{"momentum": m} for m in config.momentum]
    if config.beta1 and "betas" in method.hparam_names:
        beta2 = method.resolve()["betas"][1]
        return [{"betas": (b, beta2)} for b in config.beta1]
    return [{}]


def where(suite: Suite) -> tuple[str, str]:
    """(implementation, device) every run of a sweep uses: the suite's first of each."""
    return suite.impls[0], suite.devices[0]


def _spec(suite: Suite, problem: Problem, method: str, seed: int) -> RunSpec:
    return suite.spec_for(problem, method, *where(suite), seed)


def claims_wanted(suite: Suite, config: SweepConfig) -> bool:
    """Run the notebooks' claims: on request, or by default when the suite has crops15."""
    if config.claims is not None:
        return bool(config.claims)
    return claims.applies([p.dataset for p in suite.problems])


def point_specs(
    suite: Suite, config: SweepConfig, problem: str, method: str, steps: Sequence[int]
) -> list[RunSpec]:
    """Grid points lr x 10^(step / points_per_decade) (x the other axes), selection seeds."""
    p = suite.problem(problem)
    specs = []
    for seed in config.select_seeds:
        base = _spec(suite, p, method, seed)
        for k in steps:
            factor = 10.0 ** (k / config.points_per_decade)
            for e in _extra_axes(suite.method(method), config):
                specs.append(_with_hparams(base, lr=float(base.lr * factor), **e))
    return specs


def grid_specs(suite: Suite, config: SweepConfig) -> tuple[list[RunSpec], list[str]]:
    """Every grid point of every tunable problem x method, for the selection seeds."""
    specs, skipped = [], []
    for problem in suite.problems:
        methods = problem.methods or suite.methods
        probe = _spec(suite, problem, methods[0], config.select_seeds[0])
        if probe.holdout == 0:
            skipped.append(problem.label)
            continue
        k = config.half_width()
        for name in methods:
            specs += point_specs(suite, config, problem.label, name, range(-k, k + 1))
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
    """What selection minimises: the final hold-out loss, +inf where diverged, failed, timed
    out or non-finite."""
    score = runs["final_holdout_loss"].astype(float)
    return score.where(np.isfinite(score) & ~runs["status"].isin(Status.STOPPED), math.inf)


def rerun_specs(
    suite: Suite, config: SweepConfig, selection: pd.DataFrame
) -> tuple[list[RunSpec], list[RunSpec]]:
    """(tuned, default) specs: the selected setting and the registered defaults (the method's
    own settings over its update rule's defaults: `optimizers` registry), fresh seeds."""
    tuned, default = [], []
    for row in selection.itertuples():
        problem = suite.problem(row.problem)
        library = library_defaults(suite.method(row.method))
        for seed in config.seeds:
            base = _spec(suite, problem, row.method, seed)
            if row.hparams is not None:
                tuned.append(replace(base, hparams=freeze_hparams(json.loads(row.hparams))))
            if library is not None:
                default.append(replace(base, hparams=freeze_hparams(library)))
    return tuned, default


def library_defaults(method: Method) -> dict[str, Any] | None:
    """A method's library defaults: a built-in's registered hyperparameters at the rule's
    default lr; a plug-in's constructor defaults (its signature), or None when its constructor
    has no default lr (it then has no defaults to rerun)."""
    if method.plugin is None:
        return {**method.hparams, "lr": method.resolve()["lr"]}
    if "lr" not in method.defaults:
        return None
    return {k: v for k, v in method.defaults.items() if k in dict(method.hparams) or k == "lr"}


def _step_of(runs: pd.DataFrame, suite: Suite, config: SweepConfig) -> pd.Series:
    """Each grid run's lr as an integer grid step relative to the suite's lr."""
    base = {
        (p.label, m): _spec(suite, p, m, config.select_seeds[0]).lr
        for p in suite.problems
        for m in (p.methods or suite.methods)
    }
    ref = runs.apply(lambda r: base[(r["problem"], r["method"])], axis=1).astype(float)
    return (np.log10(runs["lr"].astype(float) / ref) * config.points_per_decade).round()


def mark_edges(selection: pd.DataFrame, grid: pd.DataFrame, steps: pd.Series) -> pd.DataFrame:
    """Add `lr_step`, `low`/`high` (grid ends) and `at_edge` ("low"/"high"/"") to a selection."""
    g = grid.assign(step=steps, score=selection_score(grid))
    out = selection.copy()
    cols: dict[str, list] = {"lr_step": [], "low": [], "high": [], "at_edge": []}
    for row in out.itertuples():
        h = g[(g["problem"] == row.problem) & (g["method"] == row.method)]
        low, high = int(h["step"].min()), int(h["step"].max())
        step = (
            None if row.hparams is None else int(h.loc[h["hparams"] == row.hparams, "step"].iloc[0])
        )
        edge = "" if step is None else "low" if step == low else "high" if step == high else ""
        for key, v in zip(cols, (step, low, high, edge), strict=True):
            cols[key].append(v)
    return out.assign(**cols)


def _beyond_diverged(grid: pd.DataFrame, steps: pd.Series, row: Any) -> bool:
    """Did every run one step beyond the selected edge diverge (or score +inf)?"""
    nxt = row.lr_step + (1 if row.at_edge == "high" else -1)
    g = grid[(grid["problem"] == row.problem) & (grid["method"] == row.method) & (steps == nxt)]
    return len(g) > 0 and not np.isfinite(selection_score(g)).any()


def select_with_edges(
    suite: Suite, config: SweepConfig, results: list[RunResult], runs: CachedRuns
) -> tuple[pd.DataFrame, list[RunResult], list[RunSpec]]:
    """Select; while a selection sits at an edge of its grid, extend that edge by one point
    (at most `config.max_extensions` per side) and select again. Returns the selection (with
    `at_edge` and `extensions`), every grid result (extensions included) and the extension
    specs."""
    added: dict[tuple[str, str, str], int] = {}
    extended: list[RunSpec] = []
    while True:
        grid = tables(results)[1]
        steps = _step_of(grid, suite, config)
        selection = mark_edges(select(grid), grid, steps)
        specs = []
        for row in selection[selection["at_edge"] != ""].itertuples():
            key = (row.problem, row.method, row.at_edge)
            if added.get(key, 0) >= config.max_extensions:
                continue
            added[key] = added.get(key, 0) + 1
            step = row.high + 1 if row.at_edge == "high" else row.low - 1
            specs += point_specs(suite, config, row.problem, row.method, [step])
        if not specs:
            break
        extended += specs
        results = results + _tag(
            runs.results(specs, "grid edge runs"), "grid", [s.method for s in specs]
        )
    flags = []
    for row in selection.itertuples():
        flag = row.at_edge
        if flag and _beyond_diverged(grid, steps, row):
            flag += " (beyond: diverged)"
        flags.append(flag)
    extensions = [
        added.get((r.problem, r.method, "low"), 0) + added.get((r.problem, r.method, "high"), 0)
        for r in selection.itertuples()
    ]
    selection = selection.assign(at_edge=flags, extensions=extensions)
    return selection.drop(columns=["lr_step", "low", "high"]), results, extended


def run_sweep(
    suite: Suite,
    config: SweepConfig,
    executor: Executor | None = None,
    runs: CachedRuns | None = None,
) -> SweepResult:
    """Grid (extended at the edges) -> selection -> tuned and default reruns (+ the notebooks'
    claims experiment).

    Every phase goes through `runs` (a result store: what is stored is reused, so an
    interrupted sweep resumes where it stopped); by default a throwaway in-memory store.
    """
    runs = runs or CachedRuns(Store(":memory:"), executor)
    grid, skipped = grid_specs(suite, config)
    if not grid:
        raise ConfigError("nothing to sweep: no problem has a hold-out split (set holdout > 0)")
    entries: list[Entry] = [(s, "grid", s.method) for s in grid]
    results = _tag(runs.results(grid, "sweep grid runs"), "grid", [s.method for s in grid])
    selection, results, extended = select_with_edges(suite, config, results, runs)
    entries += [(s, "grid", s.method) for s in extended]
    tuned, default = rerun_specs(suite, config, selection)
    phases = [("tuned", tuned, [s.method for s in tuned])]
    phases.append(("default", default, [s.method for s in default]))
    if claims_wanted(suite, config):
        labelled = claims.claim_specs(config.seeds, *where(suite))
        phases.append(("claims", [s for _, s in labelled], [lab for lab, _ in labelled]))
    # The reruns do not depend on each other: one batch, so a parallel executor waits for its
    # slowest run once, not once per phase.
    rerun = runs.results([s for _, specs, _ in phases for s in specs], "reruns")
    for phase, specs, labels in phases:
        entries += zip(specs, [phase] * len(specs), labels, strict=True)
        results += _tag(rerun[: len(specs)], phase, labels)
        rerun = rerun[len(specs) :]
    return assemble(results, skipped, entries, selection)


def assemble(
    results: Sequence[RunResult],
    skipped: list[str],
    entries: list[Entry],
    selection: pd.DataFrame | None = None,
) -> SweepResult:
    """The sweep's tables from its tagged results; without a selection (with its grid-edge
    flags), the selection is recomputed from the grid rows."""
    epochs, runs = tables(results)
    if selection is None:
        selection = select(runs[runs["phase"] == "grid"])
    return SweepResult(epochs, runs, selection, skipped, entries)


def selection_records(selection: pd.DataFrame) -> list[dict[str, Any]]:
    """The selection as JSON-ready records (kept in the store's meta for `bench report`)."""
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
        for r in selection.to_dict("records")
    ]


def from_store(store: Store, skipped: list[str]) -> SweepResult:
    """The sweep recorded in a store's manifest, rebuilt from its rows (`bench report`)."""
    manifest = store.manifest()
    stored = store.load_keys([key for key, _, _ in manifest])
    results: list[RunResult] = []
    for r, (_, phase, label) in zip(stored, manifest, strict=True):
        results += _tag([r], phase, [label])
    recorded = store.meta().get("selection")
    return assemble(
        results,
        skipped,
        [(r.spec, p, lab) for r, (_, p, lab) in zip(stored, manifest, strict=True)],
        pd.DataFrame(recorded) if recorded else None,
    )
