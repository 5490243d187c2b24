"""Results as tidy tables, and the analyses every report shares.

`tables` turns run results into the two tidy tables (epochs, runs) that feed every plot, CSV and
report; the rest pairs scratch runs with their torch.optim twins and aggregates over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bench.run.runner import RunResult
from bench.schema import EPOCH_COLUMNS, RUN_KEYS


def tables(results: Sequence[RunResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(epochs, runs): one row per run x epoch, and one row per run."""
    rows = [row for r in results for row in r.rows]
    # Extra keys (a sweep's phase, a task's records such as theta_0) from every run, in order.
    keys = dict.fromkeys(k for r in results if r.rows for k in r.rows[0])
    extra = [k for k in keys if k not in EPOCH_COLUMNS]
    epochs = pd.DataFrame(rows, columns=EPOCH_COLUMNS + extra)
    runs = pd.DataFrame([r.summary for r in results])
    if "median_epoch_time_s" in runs:
        # What an epoch costs, as every report reads it: the run's own median epoch time until
        # `bench.analysis.cost.with_costs` puts the cost measurement's in its place.
        runs["epoch_cost_s"] = runs["median_epoch_time_s"]
    return epochs, runs


# Which implementation of a method the summaries, tables and plots show: optbench's own from
# scratch where it ran, a plug-in's only one, then torch.optim's variants (`--impl torch`).
PRIMARY_IMPLS = ("scratch", "plugin", "torch", "torch-foreach", "torch-fused")


def primary(df: pd.DataFrame) -> pd.DataFrame:
    """The rows (runs or epochs) a report shows for each method: the first device of the table
    and, per method, its first implementation in `PRIMARY_IMPLS` order (the others are its
    twins, compared in the parity section). Every method of the table keeps its rows: with
    `--impl torch` and a plug-in, the built-ins show as torch.optim next to the plug-in."""
    if df.empty:
        return df
    on = df[df["device"] == df["device"].iloc[0]]
    rank = {impl: i for i, impl in enumerate(PRIMARY_IMPLS)}
    order = on["impl"].map(rank).fillna(len(rank))
    best = order.groupby(on["method"]).transform("min")
    return on[order == best]


def pair_scratch_torch(epochs: pd.DataFrame) -> pd.DataFrame:
    """Every epoch of every scratch run next to the same epoch of its torch.optim twin."""
    keys = [*RUN_KEYS, "epoch"]
    s = epochs[epochs["impl"] == "scratch"]
    t = epochs[epochs["impl"] == "torch"]
    both = s.merge(t, on=keys, suffixes=("_scratch", "_torch"))
    a, b = both["train_loss_scratch"], both["train_loss_torch"]
    both["abs_diff"] = (a - b).abs()
    both["rel_diff"] = both["abs_diff"] / b.abs().where(b != 0, 1.0)
    same = (a == b) | (a.isna() & b.isna())
    both["abs_diff"] = both["abs_diff"].where(~same, 0.0)
    both["rel_diff"] = both["rel_diff"].where(~same, 0.0)
    both["identical"] = same
    return both


def parity_by_method(epochs: pd.DataFrame) -> pd.DataFrame:
    both = pair_scratch_torch(epochs)
    if both.empty:
        return pd.DataFrame(columns=["method", "pairs", "identical_runs", "max_abs", "max_rel"])
    per_run = both.groupby([*RUN_KEYS], sort=False).agg(
        identical=("identical", "all"), max_abs=("abs_diff", "max"), max_rel=("rel_diff", "max")
    )
    out = per_run.groupby("method", sort=False).agg(
        pairs=("identical", "size"),
        identical_runs=("identical", "sum"),
        max_abs=("max_abs", "max"),
        max_rel=("max_rel", "max"),
    )
    return out.reset_index()


def time_ratio(runs: pd.DataFrame) -> pd.DataFrame:
    """scratch / torch cost per epoch, per paired run."""
    s = runs[runs["impl"] == "scratch"]
    t = runs[runs["impl"] == "torch"]
    both = s.merge(t, on=RUN_KEYS, suffixes=("_scratch", "_torch"))
    column = "epoch_cost_s" if "epoch_cost_s" in runs else "median_epoch_time_s"
    both["ratio"] = both[f"{column}_scratch"] / both[f"{column}_torch"]
    return both


def median_over_seeds(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    return (
        runs.groupby(["problem", "method", "impl", "device"], sort=False)[column]
        .median()
        .reset_index()
    )
