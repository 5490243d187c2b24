"""Statistics over seeds: medians with 95% bootstrap intervals, optima, time to target.

Interval: the bootstrap percentile interval of the median (resample the seeds with replacement,
take the median of each resample, report the 2.5% and 97.5% quantiles), with a fixed RNG so the
report is reproducible. For 5 or fewer seeds this interval is exactly [min, max] of the seeds
(a bootstrap median lands on the smallest value with probability > 2.5%), which is why the loss
curves' shaded band, the seeds' range, is the same 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVEL = 0.95
RESAMPLES = 10_000
INTERVAL_NAME = "95% bootstrap percentile interval of the median over seeds"


@dataclass(frozen=True)
class Estimate:
    median: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        from bench.report import fmt

        if self.n == 0:
            return "–"
        if self.n == 1 or self.lo == self.hi:
            return fmt(self.median)
        return f"{fmt(self.median)} [{fmt(self.lo, 3)}, {fmt(self.hi, 3)}]"


def median_ci(
    values: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Median and bootstrap percentile interval; NaN values are dropped, inf is kept (a run
    that never reached a target took infinitely long)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    med = float(np.median(x))
    if n == 1:
        return Estimate(med, med, med, 1)
    rng = np.random.default_rng(seed)
    boot = np.median(x[rng.integers(0, n, size=(resamples, n))], axis=1)
    alpha = (1 - level) / 2
    # "inverted_cdf" keeps the interval's ends on values a bootstrap median can take (and
    # makes inf ends possible without inf - inf = nan interpolation).
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], method="inverted_cdf")
    return Estimate(med, float(lo), float(hi), n)


def summarize(df: pd.DataFrame, by: Sequence[str], column: str) -> pd.DataFrame:
    """One row per group: median, lo, hi and n of `column` over the group's rows (seeds)."""
    rows = []
    for key, g in df.groupby(list(by), sort=False):
        est = median_ci(g[column].to_numpy())
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "median": est.median,
                "lo": est.lo,
                "hi": est.hi,
                "n": est.n,
            }
        )
    return pd.DataFrame(rows, columns=[*by, "median", "lo", "hi", "n"])


# ----------------------------------------------------------------------------------------------
# Optimum and time to target


def reference_optimum(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): the loss* used for suboptimality and targets, and what it is.

    Linear models: the least-squares optimum on the training rows (float64, `loss_star`).
    Others: the lowest training loss any run of the problem reached (no closed form).
    """
    rows = []
    for (dataset, model), g in runs.groupby(["dataset", "model"], sort=False):
        star = g["loss_star"].dropna()
        if len(star) and np.isfinite(star).all():
            # Each seed's split has its own optimum (used per run below); this is for display.
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "optimum": float(star.median()),
                    "optimum_kind": "least squares",
                }
            )
        else:
            e = epochs[(epochs["dataset"] == dataset) & (epochs["model"] == model)]
            best = e["train_loss"][np.isfinite(e["train_loss"])].min()
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "optimum": float(best),
                    "optimum_kind": "best loss any run reached",
                }
            )
    return pd.DataFrame(rows, columns=["dataset", "model", "optimum", "optimum_kind"])


def run_optimum(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """loss* per run_id: the run's own least-squares optimum (its split) or the problem's best."""
    ref = reference_optimum(runs, epochs).set_index(["dataset", "model"])
    own = runs.set_index("run_id")["loss_star"]
    problem = (
        runs.set_index("run_id")[["dataset", "model"]].apply(tuple, axis=1).map(ref["optimum"])
    )
    return own.where(np.isfinite(own), problem)


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
