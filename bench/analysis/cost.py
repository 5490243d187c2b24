"""What the cost measurement says (`bench.run.cost`): each run's cost per epoch, the noise floor
of the machine it was measured on, and cost ratios paired within rounds.

- A run's cost per epoch is the median over rounds of its epochs' cost (`cost_s`: CPU time, or
  wall time by CUDA events on a GPU), with the distribution-free 95% interval of that median.
- The noise floor of a problem: how far two identical workloads drift apart on this machine
  today. Two measures, the larger wins: an identical copy of one workload timed beside it
  (`copy` rows: the median per-round ratio), and the scratch/torch.optim twins, which do the same
  arithmetic (how far each seed's twin ratio lies from the method's median twin ratio: the
  implementations may differ in cost, their seeds should not). A cost ratio inside
  [1/floor, floor] is no difference.
- A cost ratio of two workloads (a batch regime against full batch: `cost_vs_gd`) is the
  median over rounds of their per-round ratio, so a slow stretch of the machine falls on both
  sides of each ratio; across seeds, the median and the seeds' range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.run.cost import median_interval

PER_RUN = ["cost_s", "cost_lo_s", "cost_hi_s", "cost_rounds", "cost_wall_s", "cost_floor",
           "cost_vs_gd"]  # fmt: skip


def per_run(costs: pd.DataFrame) -> pd.DataFrame:
    """One row per measured run: `run_id` and PER_RUN (the copy's rows left out)."""
    if costs.empty:
        return pd.DataFrame(columns=["run_id", *PER_RUN])
    rows = []
    for run_id, g in costs[~costs["copy"].astype(bool)].groupby("run_id", sort=False):
        med, lo, hi = median_interval(g["cost_s"].tolist())
        rows.append(
            {
                "run_id": run_id,
                "cost_s": med,
                "cost_lo_s": lo,
                "cost_hi_s": hi,
                "cost_rounds": len(g),
                "cost_wall_s": float(np.median(g["seconds"])),
            }
        )
    return pd.DataFrame(rows)


def with_costs(
    epochs: pd.DataFrame, runs: pd.DataFrame, costs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs table with each run's measured cost (PER_RUN columns), and the epochs table
    with `elapsed_s` = epoch x that cost (the loss-against-time axis); runs without a
    measurement keep the runner's own `elapsed_s`. `run_id`s may carry a sweep's phase prefix
    (`tuned:...`): matched on the part after it."""
    if costs.empty:
        return epochs, runs
    table = per_run(costs).set_index("run_id")
    base = runs["run_id"].str.rpartition(":")[2]
    runs = runs.drop(columns=[c for c in PER_RUN if c in runs]).copy()
    for column in PER_RUN[:-2]:
        runs[column] = base.map(table[column]).to_numpy()
    runs["epoch_cost_s"] = runs["cost_s"].where(runs["cost_s"].notna(), runs.get("epoch_cost_s"))
    cost = epochs["run_id"].str.rpartition(":")[2].map(table["cost_s"])
    epochs = epochs.copy()
    measured = cost.notna()
    epochs.loc[measured, "elapsed_s"] = epochs.loc[measured, "epoch"] * cost[measured]
    runs["cost_vs_gd"] = _paired_to_gd(costs, runs, base)
    floors = noise_floor(costs, runs).set_index(["problem", "device"])["floor"]
    runs["cost_floor"] = [
        floors.get((p, d), math.nan) for p, d in zip(runs["problem"], runs["device"], strict=True)
    ]
    return epochs, runs


def _paired_to_gd(costs: pd.DataFrame, runs: pd.DataFrame, base: pd.Series) -> list[float]:
    """Per run: its cost relative to full-batch GD's on the same problem, seed, device and
    implementation (and a sweep's phase), paired within rounds (NaN without such a GD run)."""
    phase = runs["phase"] if "phase" in runs else pd.Series("", index=runs.index)
    keys = list(
        zip(phase, runs["problem"], runs["seed"], runs["device"], runs["impl"], strict=True)
    )
    gd = {k: b for k, b, m in zip(keys, base, runs["method"], strict=True) if m == "gd"}
    return [
        paired(costs, b, gd[k]) if k in gd else math.nan for k, b in zip(keys, base, strict=True)
    ]


def cost_column(runs: pd.DataFrame) -> str:
    """The column a report reads an epoch's cost from: `epoch_cost_s` (the cost measurement's
    where there is one, else the run's own median epoch time: `--timing-budget 0`); a runs
    table built otherwise has only `median_epoch_time_s`."""
    return "epoch_cost_s" if "epoch_cost_s" in runs else "median_epoch_time_s"


def measured(runs: pd.DataFrame) -> bool:
    """Whether the runs' costs come from the cost measurement."""
    return "cost_s" in runs and bool(runs["cost_s"].notna().any())


def floor_of(runs: pd.DataFrame) -> float:
    """A problem's noise floor (1.0 when its costs were not measured)."""
    if "cost_floor" not in runs:
        return 1.0
    values = runs["cost_floor"].dropna()
    return float(values.iloc[0]) if len(values) else 1.0


def paired(costs: pd.DataFrame, a: str, b: str) -> float:
    """Median over the rounds both were timed in of cost(a) / cost(b) (run ids)."""
    own = costs[~costs["copy"].astype(bool)]
    x = own[own["run_id"] == a].set_index("round")["cost_s"]
    y = own[own["run_id"] == b].set_index("round")["cost_s"]
    both = x.index.intersection(y.index)
    if not len(both):
        return math.nan
    return float(np.median(x[both] / y[both]))


def _log_spread(ratios: Sequence[float]) -> float:
    """max |log r - log median(r)| over finite, positive ratios (0 for fewer than 2)."""
    r = np.asarray([v for v in ratios if math.isfinite(v) and v > 0])
    if r.size < 2:
        return 0.0
    logs = np.log(r)
    return float(np.max(np.abs(logs - np.median(logs))))


def noise_floor(costs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, device): `copy_ratio` (the identical copy against its original),
    `twin_spread` (the largest factor by which a seed's scratch/torch ratio lies from its
    method's median one), `twin_pairs`, and `floor` = the larger deviation, as a factor >= 1
    (a problem with one seed: its copy's, or the largest floor of the others if larger)."""
    out = []
    info = runs.assign(run_id=runs["run_id"].str.rpartition(":")[2])
    info = info.drop_duplicates("run_id").set_index("run_id")
    for (problem, device), g in costs.groupby(["problem", "device"], sort=False):
        copies = g[g["copy"].astype(bool)]
        copy_ratio = math.nan
        if len(copies):
            original = copies["run_id"].iloc[0]
            x = g[(g["run_id"] == original) & ~g["copy"].astype(bool)].set_index("round")
            y = copies.set_index("round")
            both = x.index.intersection(y.index)
            if len(both):
                copy_ratio = float(np.median(y.loc[both, "cost_s"] / x.loc[both, "cost_s"]))
        spreads, pairs = [], 0
        measured = [r for r in g["run_id"].unique() if r in info.index]
        own = info.loc[measured]
        keys = ["method", "hparams", "schedule", "batch_size", "dtype"]
        keys = [k for k in keys if k in own]
        for _, m in own.groupby(keys, dropna=False):
            ratios = []
            for _, seed in m.groupby("seed"):
                impls = dict(zip(seed["impl"], seed.index, strict=True))
                if "scratch" in impls and "torch" in impls:
                    ratios.append(paired(g, impls["scratch"], impls["torch"]))
            pairs += len(ratios)
            if len(ratios) > 1:
                spreads.append(_log_spread(ratios))
        twin = max(spreads, default=math.nan)  # nan: no method has two seeds of twins
        copy_dev = abs(math.log(copy_ratio)) if math.isfinite(copy_ratio) and copy_ratio > 0 else 0
        out.append(
            {
                "problem": problem,
                "device": device,
                "copy_ratio": copy_ratio,
                "twin_spread": math.exp(twin),
                "twin_pairs": pairs,
                "floor": math.exp(max(twin, copy_dev)) if math.isfinite(twin) else math.nan,
                "_copy": copy_dev,
            }
        )
    table = pd.DataFrame(out)
    if table.empty:
        return table
    # A problem without two seeds of twins (one seed: the deterministic 2-D functions) cannot
    # measure its drift across seeds: it takes the largest floor the other problems measured.
    machine = table["floor"].max()
    machine = machine if math.isfinite(machine) else 1.0
    fill = np.maximum(np.exp(table["_copy"]), machine)
    table["floor"] = table["floor"].where(table["floor"].notna(), fill)
    return table.drop(columns="_copy")


def beyond_floor(ratio: float, floor: float) -> bool:
    """Whether a cost ratio is a difference on this machine (outside [1/floor, floor])."""
    return math.isfinite(ratio) and (ratio > floor or ratio < 1 / floor)
