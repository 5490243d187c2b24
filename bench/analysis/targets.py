"""The known optimum of each run, time to a target loss, and performance profiles (AlgoPerf)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def reference_optimum(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per problem: the loss* used for suboptimality and targets, and what it is.

    Linear models: the least-squares optimum on the training rows (float64, `loss_star`).
    Others: the lowest training loss any run of the problem reached (no closed form).
    """
    rows = []
    for problem, g in runs.groupby("problem", sort=False):
        star = g["loss_star"].dropna()
        if len(star) and np.isfinite(star).all():
            # Each seed's split has its own optimum (used per run below); this is for display.
            rows.append(
                {
                    "problem": problem,
                    "optimum": float(star.median()),
                    "optimum_kind": "least squares",
                }
            )
        else:
            e = epochs[epochs["problem"] == problem]
            best = e["train_loss"][np.isfinite(e["train_loss"])].min()
            rows.append(
                {
                    "problem": problem,
                    "optimum": float(best),
                    "optimum_kind": "best loss any run reached",
                }
            )
    return pd.DataFrame(rows, columns=["problem", "optimum", "optimum_kind"])


def run_optimum(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """loss* per run_id: the run's own least-squares optimum (its split) or the problem's best."""
    ref = reference_optimum(runs, epochs).set_index("problem")["optimum"]
    by_run = runs.set_index("run_id")
    return by_run["loss_star"].where(np.isfinite(by_run["loss_star"]), by_run["problem"].map(ref))


def time_to_target(
    runs: pd.DataFrame, epochs: pd.DataFrame, rel_tol: float = 0.01, target: float | None = None
) -> pd.DataFrame:
    """Per run: the first epoch (and training seconds) with training loss <= target.

    The target is `target` if given, else loss* x (1 + rel_tol) with the run's loss*. A run that
    never gets there (or diverges first) gets inf for both.
    """
    star = run_optimum(runs, epochs)
    goal = pd.Series(target, index=star.index) if target is not None else star * (1 + rel_tol)
    e = epochs[["run_id", "epoch", "train_loss", "elapsed_s"]].copy()
    e["goal"] = e["run_id"].map(goal)
    hit = e[e["train_loss"] <= e["goal"]].groupby("run_id", sort=False).first()
    out = pd.DataFrame({"run_id": runs["run_id"].to_numpy()})
    out["target_loss"] = out["run_id"].map(goal)
    out["epochs_to_target"] = out["run_id"].map(hit["epoch"]).astype(float).fillna(math.inf)
    out["seconds_to_target"] = out["run_id"].map(hit["elapsed_s"]).astype(float).fillna(math.inf)
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
