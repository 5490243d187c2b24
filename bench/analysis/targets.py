"""The optimum of each run, targets on the relative gap, time to target, performance profiles.

**Relative gap** of a training loss L: (L - L*) / (L0 - L*), with L0 the run's initial loss
(epoch 0, the shared initial weights) and L* its optimum: 1 at the start, 0 at the optimum,
whatever the loss's scale, and meaningful when L* = 0 (a 2-D function), where "within 1% of
L*" would mean L <= 0. A run reaches the target gap `tol` at the first epoch with gap <= tol;
two targets are computed: `tol` (default 1e-2: 99% of the way from the start to the optimum)
and a stricter `strict_tol` (default 1e-3).

**L*** by task: least squares on each seed's own training rows (linear regression, float64),
θ* = the mean of the training points (DeepOBS's quadratic), the function's minimum (2-D test
functions). Where no optimum is known (an MLP, a classifier), L* is the lowest training loss
any run of that problem and seed reached (`NONE_KNOWN`): the target then means "as close as
the best method got", which the reports say.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.run.data import dataset_task
from bench.schema import Status

TOL, STRICT_TOL = 1e-2, 1e-3
OPTIMUM_OF_TASK = {
    "regression": "least squares",
    "quadratic_deep": "θ* = mean of the training points",
    "function2d": "the function's minimum",
}
NONE_KNOWN = "none known: lowest loss any run of the seed reached"


def optimum_kind(dataset: str, known: bool) -> str:
    """What a problem's L* is, in words."""
    if not known:
        return NONE_KNOWN
    try:
        task = dataset_task(str(dataset))
    except Exception:  # a dataset spec this checkout no longer knows: say what is certain
        task = ""
    return OPTIMUM_OF_TASK.get(task, "the task's known optimum")


def reference_optimum(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per problem: loss* for display (median over seeds), what it is, and whether it is known."""
    star = run_optimum(runs, epochs)
    rows = []
    for problem, g in runs.groupby("problem", sort=False):
        known = bool(np.isfinite(g["loss_star"].astype(float)).all())
        per_seed = g.assign(_s=g["run_id"].map(star)).groupby("seed")["_s"].first()
        rows.append(
            {
                "problem": problem,
                "optimum": float(per_seed.median()),
                "optimum_kind": optimum_kind(g["dataset"].iloc[0], known),
                "known": known,
            }
        )
    return pd.DataFrame(rows, columns=["problem", "optimum", "optimum_kind", "known"])


def run_optimum(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """loss* per run_id: the run's own known optimum, else the lowest finite training loss any
    run of its (problem, seed) reached (in these tables)."""
    by_run = runs.set_index("run_id")
    e = epochs[["run_id", "train_loss"]].copy()
    e["train_loss"] = e["train_loss"].astype(float)
    e = e[np.isfinite(e["train_loss"])]
    keys = by_run[["problem", "seed"]]
    e = e.join(keys, on="run_id")
    best = e.groupby(["problem", "seed"])["train_loss"].min()
    fallback = pd.Series(
        [best.get((p, s), math.nan) for p, s in keys.itertuples(index=False)], index=by_run.index
    )
    star = by_run["loss_star"].astype(float)
    return star.where(np.isfinite(star), fallback)


def initial_loss(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """L0 per run_id: the training loss at epoch 0 (the shared initial weights)."""
    e0 = epochs[epochs["epoch"] == 0].groupby("run_id")["train_loss"].first().astype(float)
    out = runs["run_id"].map(e0)
    if "initial_loss" in runs:
        out = out.fillna(runs["initial_loss"].astype(float))
    return pd.Series(out.to_numpy(), index=runs["run_id"].to_numpy())


def gap_goal(star: pd.Series, start: pd.Series, tol: float) -> pd.Series:
    """The loss at relative gap `tol`: L* + tol x (L0 - L*) (L* itself if L0 <= L*)."""
    return star + tol * (start - star).clip(lower=0.0)


def _first_hit(epochs: pd.DataFrame, goal: pd.Series, runs: pd.DataFrame) -> pd.DataFrame:
    e = epochs[["run_id", "epoch", "train_loss", "elapsed_s"]].copy()
    e["goal"] = e["run_id"].map(goal)
    hit = e[e["train_loss"] <= e["goal"]].groupby("run_id", sort=False).first()
    ids = runs["run_id"]
    return pd.DataFrame(
        {
            "epochs": ids.map(hit["epoch"]).astype(float).fillna(math.inf).to_numpy(),
            "seconds": ids.map(hit["elapsed_s"]).astype(float).fillna(math.inf).to_numpy(),
        }
    )


def time_to_target(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    rel_tol: float = TOL,
    target: float | None = None,
    strict_tol: float | None = STRICT_TOL,
) -> pd.DataFrame:
    """Per run: the first epoch (and training seconds) at the target, and at the strict one.

    The target is the training loss at relative gap `rel_tol`, or the absolute loss `target`
    if given (then there is no strict target). A run that never gets there (or diverges
    first) gets inf. `final_gap` is the relative gap at the run's last epoch (inf if it
    diverged)."""
    star = run_optimum(runs, epochs)
    start = initial_loss(runs, epochs)
    out = pd.DataFrame({"run_id": runs["run_id"].to_numpy()})
    goal = (
        pd.Series(float(target), index=star.index)
        if target is not None
        else gap_goal(star, start, rel_tol)
    )
    hit = _first_hit(epochs, goal, runs)
    out["target_loss"] = out["run_id"].map(goal)
    out["epochs_to_target"], out["seconds_to_target"] = hit["epochs"], hit["seconds"]
    if target is None and strict_tol is not None:
        strict = gap_goal(star, start, strict_tol)
        hit = _first_hit(epochs, strict, runs)
        out["strict_target_loss"] = out["run_id"].map(strict)
        out["epochs_to_strict"], out["seconds_to_strict"] = hit["epochs"], hit["seconds"]
    else:
        out["strict_target_loss"] = math.nan
        out["epochs_to_strict"] = out["seconds_to_strict"] = math.nan
    final = runs.set_index("run_id")["final_train_loss"].astype(float)
    if "status" in runs:
        final = final.where(runs.set_index("run_id")["status"] != Status.DIVERGED, math.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = (final - star) / (start - star)
    gap = gap.where(np.isfinite(final), math.inf).clip(lower=0.0)
    out["final_gap"] = out["run_id"].map(gap)
    return out


def performance_profile(
    times: pd.DataFrame, taus: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Dolan-Moré / AlgoPerf performance profile.

    `times`: one row per (problem, method) with column `time` (inf = never reached the target).
    rho_m(tau) = fraction of problems on which method m's time is within tau x the best method's
    time on that problem. Problems no method solved count against every method.
    """
    taus = np.logspace(0, 2, 200) if taus is None else np.asarray(taus, dtype=float)
    best = times.groupby("problem")["time"].transform("min")
    ratio = (times["time"] / best).where(np.isfinite(best), math.inf)
    n_problems = times["problem"].nunique()
    curves = {}
    for method, r in ratio.groupby(times["method"], sort=False):
        r = r.to_numpy()
        curves[method] = np.array([(r <= tau).sum() / n_problems for tau in taus])
    return taus, curves
