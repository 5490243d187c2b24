"""trajectories.png: every method's path θ per epoch over the contours of each 2-D function.

Drawn from the epochs table's `theta_0`, `theta_1` columns (the `function2d` task records
them); one panel per 2-D problem, log-spaced contour levels of f − f_min, every method from
the function's one start point (o), the global minimiser(s) (*), one colour per method (the
other plots' colours). The axes are the function's bounds: a path that leaves them is drawn up
to its last point inside and marked x where it leaves, so a divergent method cannot stretch
the axes. One run per method: the first seed (the task is deterministic), the from-scratch or
plug-in implementation where there is one.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

import datasets
import optimizers
from bench.analysis.tables import PRIMARY_IMPLS
from bench.output.plots import DPI, color_of

COLUMNS = ("theta_0", "theta_1")
GRID = 240  # contour grid points per axis


def paths(epochs: pd.DataFrame) -> pd.DataFrame:
    """The rows with a recorded θ, one run per (problem, method), first device."""
    if not set(COLUMNS) <= set(epochs.columns):
        return epochs.iloc[0:0]
    df = epochs[epochs["theta_0"].notna()]
    if df.empty:
        return df
    df = df[df["device"] == df["device"].iloc[0]]
    rank = df["impl"].map({i: n for n, i in enumerate(PRIMARY_IMPLS)}).fillna(len(PRIMARY_IMPLS))
    first = (
        df.assign(_rank=rank)
        .sort_values(["problem", "method", "seed", "_rank", "epoch"], kind="stable")
        .groupby(["problem", "method"], sort=False)["run_id"]
        .first()
    )
    return df[df["run_id"].isin(set(first))].sort_values(["run_id", "epoch"], kind="stable")


def clip_path(xy: np.ndarray, bounds: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, bool]:
    """(the path up to where it leaves `bounds`, whether it left). A path that leaves ends on
    the boundary, where its step to the first point outside crosses it (or at its last point
    inside when that step is not finite), so the × drawn there sits on the path."""
    (x0, x1), (y0, y1) = bounds
    x, y = xy[:, 0], xy[:, 1]
    inside = np.isfinite(x) & np.isfinite(y) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    if inside.all():
        return xy, False
    stop = int(np.argmin(inside))  # the first point outside
    kept = xy[:stop]
    if stop == 0 or not np.isfinite(xy[stop]).all():
        return kept, True
    return np.vstack([kept, exit_point(xy[stop - 1], xy[stop], bounds)]), True


def exit_point(a: np.ndarray, b: np.ndarray, bounds: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Where the segment from `a` (inside the box) to `b` (outside) crosses the box's edge."""
    t = 1.0
    for k, (lo, hi) in enumerate(bounds):
        d = b[k] - a[k]
        if d > 0 and b[k] > hi:
            t = min(t, (hi - a[k]) / d)
        elif d < 0 and b[k] < lo:
            t = min(t, (lo - a[k]) / d)
    return a + t * (b - a)


def plot(epochs: pd.DataFrame, path: Path) -> Path | None:
    """Write the figure; None (nothing written) when no run recorded a 2-D path."""
    df = paths(epochs)
    if df.empty:
        return None
    problems = [p for p in dict.fromkeys(epochs["problem"]) if p in set(df["problem"])]
    present = set(df["method"])
    methods = [m for m in optimizers.names() if m in present] + sorted(
        present - set(optimizers.names())
    )
    cols = min(len(problems), 3)
    rows = math.ceil(len(problems) / cols)
    legend_rows = math.ceil(len(methods) / 6) + 1
    fig_w, fig_h = 4.6 * cols, 4.2 * rows + 0.6 + 0.3 * legend_rows
    fig, axes = plt.subplots(rows, cols, figsize=(fig_w, fig_h), squeeze=False)
    fig.subplots_adjust(
        left=0.7 / fig_w,
        right=1 - 0.2 / fig_w,
        top=1 - 0.65 / fig_h,
        bottom=(0.55 + 0.3 * legend_rows) / fig_h,
        wspace=0.28,
        hspace=0.35,
    )
    flat = list(axes.flat)
    for ax in flat[len(problems) :]:
        ax.set_visible(False)
    for ax, problem in zip(flat, problems, strict=False):
        sub = df[df["problem"] == problem]
        _panel(ax, problem, str(sub["dataset"].iloc[0]), sub, methods)
    handles = [Line2D([], [], color=color_of(m), lw=2.2, label=m) for m in methods]
    handles += [
        Line2D([], [], ls="", marker="o", color="black", ms=6, label="start"),
        Line2D([], [], ls="", marker="*", mfc="white", mec="black", ms=11, label="minimum"),
        Line2D([], [], ls="", marker="x", color="0.2", ms=7, label="path leaves the axes"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=min(len(handles), 6),
        frameon=False,
        fontsize=9,
    )
    n_epochs = int(df["epoch"].max())
    fig.suptitle(
        f"Paths on 2-D test functions ({n_epochs} steps, one start point, contours of "
        "f − f_min on a log scale)",
        fontsize=11,
    )
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _panel(ax: plt.Axes, problem: str, dataset: str, sub: pd.DataFrame, methods: list) -> None:
    fn = datasets.function_2d(dataset)
    (x0, x1), (y0, y1) = fn.bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, GRID), np.linspace(y0, y1, GRID))
    z = np.asarray(fn.f(np.stack([gx, gy])), dtype=float) - fn.minimum
    positive = z[z > 0]
    lo = max(float(np.percentile(positive, 0.5)), 1e-3)
    levels = np.geomspace(lo, float(positive.max()), 16)
    ax.contour(gx, gy, np.maximum(z, lo), levels=levels, cmap="Greys_r", norm=LogNorm(),
               linewidths=0.6, alpha=0.7)  # fmt: skip
    # Drawn thickest first, so methods with identical paths (gd, sgd, minibatch at full
    # batch) stay visible under one another.
    order = [m for m in methods if m in set(sub["method"])]
    for i, method in enumerate(order):
        run = sub[sub["method"] == method]
        xy = run[["theta_0", "theta_1"]].to_numpy(dtype=float)
        kept, left = clip_path(xy, fn.bounds)
        color = color_of(method)
        lw = max(3.2 - 0.25 * i, 0.9)
        ax.plot(kept[:, 0], kept[:, 1], color=color, lw=lw, alpha=0.9, solid_capstyle="round")
        if left:
            mark = kept[-1] if len(kept) else np.array(fn.start, dtype=float)
            ax.plot([mark[0]], [mark[1]], marker="x", color=color, ms=9, mew=2.2, clip_on=False)
    ax.plot(*fn.start, marker="o", color="black", ms=6, zorder=6)
    for mx, my in fn.minimizers:
        ax.plot(mx, my, marker="*", mfc="white", mec="black", ms=13, zorder=6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(f"{problem}: {fn.description.split(':')[0]}", fontsize=10)
    ax.set_xlabel("θ₀", fontsize=9)
    ax.set_ylabel("θ₁", fontsize=9)
