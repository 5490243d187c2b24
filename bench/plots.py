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

import optimizers

IMPL_STYLE = {"scratch": "-", "torch": "--", "torch-foreach": ":", "torch-fused": "-."}
DPI = 110


def method_colors() -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(optimizers.names())}


def color_of(method: str) -> tuple:
    return method_colors().get(method, (0.3, 0.3, 0.3, 1.0))


def problem_label(dataset: str, model: str) -> str:
    return dataset if model == "linear" else f"{dataset} · {model}"


def _grid(n: int, width: float = 4.2, height: float = 3.2) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows + 0.8), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend(fig: plt.Figure, methods: list[str], impls: list[str]) -> None:
    handles = [Line2D([], [], color=color_of(m), lw=2.5, label=m) for m in methods]
    handles += [
        Line2D([], [], color="0.25", ls=IMPL_STYLE.get(i, "-"), lw=1.5, label=i) for i in impls
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 11), frameon=False
    )


def _problems(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(df["dataset"], df["model"], strict=True)))


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
    df = epochs[epochs["device"] == epochs["device"].iloc[0]]
    problems = _problems(df)
    fig, axes = _grid(len(problems))
    methods = [m for m in optimizers.names() if m in set(df["method"])]
    impls = [i for i in IMPL_STYLE if i in set(df["impl"])]
    for ax, (dataset, model) in zip(axes, problems, strict=True):
        sub = df[(df["dataset"] == dataset) & (df["model"] == model)].copy()
        sub["_y"] = transform(sub) if transform is not None else sub[y]
        for (method, impl), g in sub.groupby(["method", "impl"], sort=False):
            stats = g.groupby("epoch").agg(
                x=(x, "median"), med=("_y", "median"), lo=("_y", "min"), hi=("_y", "max")
            )
            color, ls = color_of(method), IMPL_STYLE.get(impl, "-")
            ax.plot(stats["x"], stats["med"], color=color, ls=ls, lw=1.6)
            if impl == "scratch" and len(g["seed"].unique()) > 1:
                ax.fill_between(stats["x"], stats["lo"], stats["hi"], color=color, alpha=0.12, lw=0)
            for _, run in g[g["run_id"].isin(g.loc[g["status"] == "diverged", "run_id"])].groupby(
                "run_id"
            ):
                last = run[np.isfinite(run["_y"])].tail(1)  # where the run was last finite
                ax.scatter(last[x], last["_y"], marker="x", s=40, color=color, zorder=5)
        if _positive(sub["_y"]):
            ax.set_yscale("log")
        if x != "epoch" and _positive(sub[x][sub["epoch"] > 0]):
            ax.set_xscale("log")
        ax.set_title(problem_label(dataset, model), fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title, fontsize=12)
    _legend(fig, methods, impls)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def epoch_times(epochs: pd.DataFrame, path: Path) -> Path:
    """Per problem: the distribution of per-epoch wall time of every method and impl."""
    df = epochs[epochs["epoch"] > 0]
    panels = list(dict.fromkeys(zip(df["dataset"], df["model"], df["device"], strict=True)))
    fig, axes = _grid(len(panels), width=4.4, height=3.6)
    methods = [m for m in optimizers.names() if m in set(df["method"])]
    impls = [i for i in IMPL_STYLE if i in set(df["impl"])]
    for ax, (dataset, model, device) in zip(axes, panels, strict=True):
        sub = df[(df["dataset"] == dataset) & (df["model"] == model) & (df["device"] == device)]
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
        ax.set_xscale("log")
        ax.set_xlabel("epoch wall time (ms), boxes: IQR, whiskers: 1.5 IQR", fontsize=8)
        ax.set_title(f"{problem_label(dataset, model)} ({device})", fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.25)
    fig.suptitle("Wall time per epoch (training steps only; solid = scratch, pale = torch)")
    _legend(fig, methods, impls)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def scratch_vs_torch(runs: pd.DataFrame, path: Path) -> Path:
    """Final training loss of each scratch run against its torch.optim twin."""
    keys = ["dataset", "model", "method", "device", "dtype", "seed", "hparams"]
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
            ax.set_xscale("log")
            ax.set_yscale("log")
    ax.set_xlabel("final training loss, torch.optim (foreach=False)")
    ax.set_ylabel("final training loss, from scratch")
    ax.set_title("Same start, same batches: scratch vs torch.optim")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
