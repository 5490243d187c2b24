"""perf.png: every case's ratio against its target, and the scaling curves on log-log axes."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt

from bench.perf.timing import Target, loglog_slope

GOOD, BAD, REFERENCE = "#2a9d8f", "#e76f51", "#9aa5b1"
SIZE_COLOURS = ("#8ecae6", "#219ebc", "#023047")


def plot(df, path: Path) -> None:  # df: pandas.DataFrame read from perf.csv
    """Four panels: optimizer step ratios, time-ratio cases, speed-up cases, scaling."""
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    _step_panel(axes[0, 0], df[df["case"] == "1-step"])
    _bars_panel(
        axes[0, 1],
        df[df["case"].isin(["2-harness", "4-gd-limit", "6-memory"]) & (df["target"] != "")],
        "Lower is better: harness, GD vs matmuls, memory",
        "ratio (candidate / baseline)",
    )
    _bars_panel(
        axes[1, 0],
        df[(df["case"] == "3-dataloader") & (df["target"] != "")],
        "Higher is better: runner vs the seeds' DataLoader loop",
        "speed-up (DataLoader time / runner time)",
    )
    _scaling_panel(axes[1, 1], df[df["case"] == "5-scaling"])
    devices = ", ".join(sorted(set(df["device"]))) or "no rows"
    fig.suptitle(f"optbench performance ({devices}): each ratio measured side by side")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _colour(met: str) -> str:
    return {"yes": GOOD, "no": BAD}.get(met, REFERENCE)


def _step_panel(ax, step) -> None:
    ax.set_title("Optimizer step: scratch / torch for-loop per method and parameter set")
    judged = step[(step["impl"] == "scratch") & (step["target"] != "")]
    if judged.empty:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
        return
    fastest = step[step["baseline"].str.startswith("fastest")]
    sizes = list(dict.fromkeys(judged["size"]))
    methods = list(dict.fromkeys(judged["method"]))
    width = 0.8 / len(sizes)
    for j, (size, colour) in enumerate(zip(sizes, SIZE_COLOURS, strict=False)):
        rows = judged[judged["size"] == size].set_index("method").reindex(methods)
        xs = [i + (j - (len(sizes) - 1) / 2) * width for i in range(len(methods))]
        target = rows["target"].dropna().iloc[0]
        ax.bar(xs, rows["ratio"], width * 0.9, color=colour, label=f"{size} (target {target})")
        for x, ratio, met in zip(xs, rows["ratio"], rows["met"], strict=True):
            if met == "no":
                ax.text(x, ratio, "✗", ha="center", va="bottom", color=BAD, fontsize=10)
        best = fastest[fastest["size"] == size].set_index("method").reindex(methods)
        ax.plot(xs, best["ratio"], "o", color=colour, markeredgecolor="black", markersize=4)
        bound = Target.parse(str(target)).value
        ax.hlines(bound, -0.5, len(methods) - 0.5, colors=colour, lw=1, ls="--")
    ax.plot([], [], "o", color="white", markeredgecolor="black", label="scratch / fastest torch")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    ax.set_xlim(-0.5, len(methods) - 0.5)
    ax.set_ylabel("time ratio (lower is better); dashed: targets")
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, loc="upper left")


def _bars_panel(ax, rows, title: str, ylabel: str) -> None:
    ax.set_title(title)
    if rows.empty:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
        return
    labels = [
        f"{case.split('-', 1)[1]}\n" + size.replace(" ", "\n", 1)
        for case, size in zip(rows["case"], rows["size"], strict=True)
    ]
    xs = range(len(rows))
    ax.bar(xs, rows["ratio"], 0.6, color=[_colour(m) for m in rows["met"]], edgecolor="black")
    for x, (_, r) in zip(xs, rows.iterrows(), strict=True):
        target = Target.parse(r["target"])
        ax.hlines(target.value, x - 0.4, x + 0.4, colors="black", lw=1.5)
        ax.text(
            x + 0.4,
            target.value,
            r["target"],
            va="bottom",
            ha="right",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
        )
        if math.isfinite(r["ratio"]):
            ax.text(x, r["ratio"], f"{r['ratio']:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel(ylabel + "; black: target")


def _scaling_panel(ax, rows) -> None:
    ax.set_title("Epoch time against n (d = 100), log-log, fitted slope")
    points = rows[rows["target"] == ""]
    fits = rows[rows["target"] != ""]
    if points.empty:
        ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
        return
    for (method, device), group in points.groupby(["method", "device"], sort=False):
        ns = [int(s.removeprefix("n=")) for s in group["size"]]
        (line,) = ax.plot(ns, group["median"], "o-", label=f"{method} ({device})")
        fit = fits[(fits["method"] == method) & (fits["device"] == device)]
        if fit.empty:
            continue
        f = fit.iloc[0]
        lo, hi = (int(v) for v in f["size"].removeprefix("n=").split(".."))
        fitted = [(n, t) for n, t in zip(ns, group["median"], strict=True) if n >= lo]
        slope, intercept = loglog_slope(*zip(*fitted, strict=True))
        ax.plot(
            [lo, hi],
            [math.exp(intercept) * lo**slope, math.exp(intercept) * hi**slope],
            "-",
            lw=5,
            alpha=0.3,
            color=line.get_color(),
            label=f"{method} fit, n >= {lo:g}: slope {f['ratio']:.2f} (target {f['target']})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (dataset rows; 80% train)")
    ax.set_ylabel("epoch time (s)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", lw=0.3)
