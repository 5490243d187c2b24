"""Plots, all drawn from the tidy epochs/runs tables (never from live objects).

Conventions shared by every figure: one colour per method (stable across figures and runs),
scratch solid, torch.optim dashed; curves are the median over seeds with the seeds' range shaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

import optimizers
from bench.schema import RUN_KEYS, Status
from bench.sweep.protocol import selection_score

IMPL_STYLE = {"scratch": "-", "torch": "--", "torch-foreach": ":", "torch-fused": "-."}
DPI = 110


def method_colors() -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(optimizers.names())}


def color_of(method: str) -> tuple:
    return method_colors().get(method, (0.3, 0.3, 0.3, 1.0))


def _grid(n: int, width: float = 4.2, height: float = 3.2) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig_w, fig_h = width * cols, height * rows + 0.9
    fig, axes = plt.subplots(rows, cols, figsize=(fig_w, fig_h), squeeze=False)
    # Fixed margins (in inches): constrained layout measures every tick label and doubled the
    # drawing time.
    fig.subplots_adjust(
        left=0.85 / fig_w,
        right=1 - 0.15 / fig_w,
        top=1 - 0.7 / fig_h,
        bottom=0.75 / fig_h,
        wspace=0.3,
        hspace=0.42,
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _label_panel(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def _save_grid(
    fig: plt.Figure, path: Path, title: str, methods: list[str], impls: list[str]
) -> Path:
    """Title, the shared legend, write the PNG, free the figure."""
    fig.suptitle(title, fontsize=12)
    _legend(fig, methods, impls)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _legend(fig: plt.Figure, methods: list[str], impls: list[str]) -> None:
    handles = [Line2D([], [], color=color_of(m), lw=2.5, label=m) for m in methods]
    if len(impls) > 1:  # line styles only mean something when implementations are compared
        handles += [
            Line2D([], [], color="0.25", ls=IMPL_STYLE.get(i, "-"), lw=1.5, label=i) for i in impls
        ]
    fig.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=min(len(handles), 11),
        frameon=False,
    )


def log_axis(ax: plt.Axes, which: str = "y") -> None:
    """Log scale labelled at 1-2-5 on short ranges and at powers of ten on long ones, never at
    minor ticks (matplotlib's default on short ranges: overlapping labels, slow drawing).
    Call after plotting: the choice depends on the data's range."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = ax.dataLim.intervaly if which == "y" else ax.dataLim.intervalx
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    subs = (1.0, 2.0, 5.0) if decades < (3 if which == "y" else 1.5) else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _nothing(path: Path, title: str) -> Path:
    """A figure saying there is nothing to draw (every run diverged): the report links it."""
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{title}\nnothing to plot: no finite values", ha="center", va="center")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _problems(df: pd.DataFrame, *extra: str) -> list[tuple[str, ...]]:
    """Distinct (problem, *extra) in order of appearance."""
    return list(df[["problem", *extra]].drop_duplicates().itertuples(index=False))


def _positive(values: pd.Series | np.ndarray) -> bool:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return arr.size > 0 and bool((arr > 0).all())


def curves(
    epochs: pd.DataFrame,
    path: Path,
    *,
    y: str = "train_loss",
    x: str = "epoch",
    ylabel: str = "training loss (MSE)",
    xlabel: str = "epoch",
    title: str,
    transform: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> Path:
    """One panel per problem: median over seeds of y against x, seeds' range shaded."""
    if epochs.empty:
        return _nothing(path, title)
    df = epochs[epochs["device"] == epochs["device"].iloc[0]].copy()
    df["_y"] = transform(df) if transform is not None else df[y]
    problems = _problems(df)
    fig, axes = _grid(len(problems))
    present = set(df["method"]), set(df["impl"])
    methods = [m for m in optimizers.names() if m in present[0]]
    impls = [i for i in IMPL_STYLE if i in present[1]]
    # One groupby for every curve of the figure (per-curve groupbys cost seconds).
    stats = df.groupby(["problem", "method", "impl", "epoch"], sort=False).agg(
        x=(x, "median"),
        med=("_y", "median"),
        lo=("_y", "min"),
        hi=("_y", "max"),
        seeds=("seed", "nunique"),
    )
    diverged_ids = set(df.loc[df["status"] == Status.DIVERGED, "run_id"])
    finite = df[df["run_id"].isin(diverged_ids) & np.isfinite(df["_y"])]
    last_finite = finite.groupby("run_id").tail(1)  # where each diverged run was last finite
    ax_of = dict(zip(problems, axes, strict=True))
    for (problem, method, impl), g in stats.groupby(level=[0, 1, 2], sort=False):
        ax, color, ls = ax_of[(problem,)], color_of(method), IMPL_STYLE.get(impl, "-")
        ax.plot(g["x"], g["med"], color=color, ls=ls, lw=1.6)
        if impl == "scratch" and g["seeds"].max() > 1:
            ax.fill_between(g["x"], g["lo"], g["hi"], color=color, alpha=0.12, lw=0)
    for ax, (problem,) in zip(axes, problems, strict=True):
        sub = df[df["problem"] == problem]
        marks = last_finite[last_finite["problem"] == problem]
        for method, g in marks.groupby("method", sort=False):
            ax.scatter(g[x], g["_y"], marker="x", s=40, color=color_of(method), zorder=5)
        if _positive(sub["_y"]):
            log_axis(ax, "y")
        if x != "epoch" and _positive(sub[x][sub["epoch"] > 0]):
            log_axis(ax, "x")
        _label_panel(ax, problem, xlabel, ylabel)
    return _save_grid(fig, path, title, methods, impls)


def epoch_times(epochs: pd.DataFrame, path: Path) -> Path:
    """Per problem: the distribution of per-epoch wall time of every method and impl."""
    df = epochs[epochs["epoch"] > 0]
    panels = _problems(df, "device")
    fig, axes = _grid(len(panels), width=4.4, height=3.6)
    present = set(df["method"]), set(df["impl"])
    methods = [m for m in optimizers.names() if m in present[0]]
    impls = [i for i in IMPL_STYLE if i in present[1]]
    for ax, (problem, device) in zip(axes, panels, strict=True):
        sub = df[(df["problem"] == problem) & (df["device"] == device)]
        pos, labels = 0.0, []
        for method in [m for m in methods if m in set(sub["method"])]:
            for j, impl in enumerate(impls):
                t = sub[(sub["method"] == method) & (sub["impl"] == impl)]["epoch_time_s"]
                if t.empty:
                    continue
                bp = ax.boxplot(
                    t * 1e3,
                    positions=[pos + 0.38 * j],
                    widths=0.32,
                    orientation="horizontal",
                    showfliers=False,
                    patch_artist=True,
                    medianprops={"color": "black", "lw": 1.2},
                )
                for box in bp["boxes"]:
                    box.set_facecolor(color_of(method))
                    box.set_alpha(0.9 if impl == "scratch" else 0.45)
                    box.set_linestyle(IMPL_STYLE.get(impl, "-"))
            labels.append((pos + 0.19, method))
            pos += 1.0
        ax.set_yticks([p for p, _ in labels], [m for _, m in labels], fontsize=8)
        ax.invert_yaxis()
        if _positive(sub["epoch_time_s"]):  # every run diverged in its first epoch: no times
            log_axis(ax, "x")
        _label_panel(
            ax,
            f"{problem} ({device})",
            "epoch wall time (ms); box: IQR, whiskers: 1.5 IQR",
            "",
        )
    title = "Wall time per epoch (training steps only; solid = scratch, pale = torch)"
    return _save_grid(fig, path, title, methods, impls)


def scratch_vs_torch(runs: pd.DataFrame, path: Path) -> Path:
    """Final training loss of each scratch run against its torch.optim twin."""
    keys = RUN_KEYS
    both = runs[runs["impl"] == "scratch"].merge(
        runs[runs["impl"] == "torch"], on=keys, suffixes=("_scratch", "_torch")
    )
    fig, ax = plt.subplots(figsize=(6.2, 5.8), layout="constrained")
    lo = hi = None
    for method, g in both.groupby("method", sort=False):
        xs, ys = g["final_train_loss_torch"], g["final_train_loss_scratch"]
        ax.scatter(xs, ys, s=28, color=color_of(method), label=method, alpha=0.8, edgecolor="none")
        finite = np.concatenate([xs[np.isfinite(xs)], ys[np.isfinite(ys)]])
        if finite.size:
            lo = min(finite.min(), lo if lo is not None else np.inf)
            hi = max(finite.max(), hi if hi is not None else -np.inf)
    if lo is not None and hi is not None:
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls=":", label="y = x")
        if lo > 0:
            log_axis(ax, "x")
            log_axis(ax, "y")
    ax.set_xlabel("final training loss, torch.optim (foreach=False)")
    ax.set_ylabel("final training loss, from scratch")
    ax.set_title("Same start, same batches: scratch vs torch.optim")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# Sweep figures


def sensitivity(grid_runs: pd.DataFrame, selection: pd.DataFrame, path: Path) -> Path:
    """Final hold-out loss against learning rate, per problem; x = diverged, * = selected."""
    problems = _problems(grid_runs)
    fig, axes = _grid(len(problems))
    methods = [m for m in optimizers.names() if m in set(grid_runs["method"])]
    g = grid_runs.assign(score=selection_score(grid_runs))
    # Median over selection seeds, then the best over any other axis (momentum, beta1).
    per_point = g.groupby(["problem", "method", "lr", "hparams"], sort=False)["score"]
    best = per_point.median().groupby(level=[0, 1, 2], sort=False).min().reset_index()
    chosen = selection.dropna(subset=["hparams"]).merge(
        g[["problem", "method", "hparams", "lr"]].drop_duplicates(),
        on=["problem", "method", "hparams"],
    )
    for ax, (problem,) in zip(axes, problems, strict=True):
        sub = best[best["problem"] == problem]
        finite = sub["score"][np.isfinite(sub["score"])]
        top = finite.max() * 3 if len(finite) else 1.0
        for method, m in sub.groupby("method", sort=False):
            color = color_of(method)
            ok = np.isfinite(m["score"])
            ax.plot(m["lr"][ok], m["score"][ok], color=color, lw=1.4, marker="o", ms=3)
            ax.scatter(m["lr"][~ok], np.full((~ok).sum(), top), marker="x", color=color, s=30)
        pick = chosen[chosen["problem"] == problem]
        for row in pick.itertuples():
            score_at = sub[(sub["method"] == row.method) & (sub["lr"] == row.lr)]["score"]
            if len(score_at):
                ax.scatter(
                    [row.lr],
                    [score_at.iloc[0]],
                    marker="*",
                    s=140,
                    zorder=6,
                    color=color_of(row.method),
                    edgecolor="black",
                    linewidth=0.6,
                )
        log_axis(ax, "x")
        if len(finite) and (finite > 0).all():
            log_axis(ax, "y")
        _label_panel(ax, problem, "learning rate", "final hold-out loss")
    title = "Final hold-out loss vs learning rate (* selected, x diverged)"
    return _save_grid(fig, path, title, methods, [])


def profile(taus: np.ndarray, rho: dict[str, np.ndarray], path: Path, what: str) -> Path:
    """Performance profile: fraction of problems solved within tau x the best method's time."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for method, curve in rho.items():
        ax.step(taus, curve, where="post", color=color_of(method), lw=2, label=method)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau (time to target / best method's time to target)")
    ax.set_ylabel("fraction of problems")
    ax.set_title(f"Performance profile ({what})")
    ax.grid(True, alpha=0.3)
    if rho:  # no method reached its target (every run diverged): nothing to label
        ax.legend(fontsize=8, loc="lower right", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def train_vs_holdout(epochs: pd.DataFrame, path: Path) -> Path:
    """Per problem: training (solid) and hold-out (dotted) loss, median over seeds."""
    df = epochs[np.isfinite(epochs["holdout_loss"])]
    if df.empty:
        return _nothing(path, title="Generalisation: no tuned runs")
    problems = _problems(df)
    fig, axes = _grid(len(problems))
    methods = [m for m in optimizers.names() if m in set(df["method"])]
    stats = df.groupby(["problem", "method", "epoch"], sort=False)[
        ["train_loss", "holdout_loss"]
    ].median()
    ax_of = dict(zip(problems, axes, strict=True))
    for (problem, method), g in stats.groupby(level=[0, 1], sort=False):
        ax, color = ax_of[(problem,)], color_of(method)
        x = g.index.get_level_values("epoch")
        ax.plot(x, g["train_loss"], color=color, lw=1.5)
        ax.plot(x, g["holdout_loss"], color=color, lw=1.5, ls=":")
    for ax, (problem,) in zip(axes, problems, strict=True):
        sub = df[df["problem"] == problem]
        if _positive(sub[["train_loss", "holdout_loss"]].to_numpy().ravel()):
            log_axis(ax, "y")
        _label_panel(ax, problem, "epoch", "loss (MSE)")
    title = "Generalisation: training loss (solid) and hold-out loss (dotted), tuned runs"
    return _save_grid(fig, path, title, methods, [])
