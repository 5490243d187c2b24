"""The sweep's figures: learning-rate sensitivity, performance profile, generalisation gap.
Same conventions as `plots` (palette, facets by family, robust axes, legends outside)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from bench.output.palette import color_of, dash_of, facets, order
from bench.output.plots import (
    CAP,
    DPI,
    label_panel,
    legend_handles,
    log_axis,
    nothing,
    panel_grid,
    save,
)
from bench.sweep.protocol import selection_score


def sensitivity(grid_runs: pd.DataFrame, selection: pd.DataFrame, path: Path) -> Path:
    """Final hold-out loss against learning rate, per problem (x family); x diverged, ^ off the
    scale, * selected (hollow when the selection is at the edge of its grid)."""
    g = grid_runs.assign(score=selection_score(grid_runs))
    per_point = g.groupby(["problem", "method", "lr", "hparams"], sort=False)["score"]
    # Median over selection seeds, then the best over any other axis (momentum, beta1).
    best = per_point.median().groupby(level=[0, 1, 2], sort=False).min().reset_index()
    chosen = selection.dropna(subset=["hparams"]).merge(
        g[["problem", "method", "hparams", "lr"]].drop_duplicates(),
        on=["problem", "method", "hparams"],
    )
    panels = [
        (p, fam, ms)
        for p in dict.fromkeys(best["problem"])
        for fam, ms in facets(set(best.loc[best["problem"] == p, "method"]))
    ]
    fig, axes = panel_grid([(p, f) for p, f, _ in panels])
    for ax, (problem, family, methods) in zip(axes, panels, strict=True):
        sub = best[(best["problem"] == problem) & best["method"].isin(methods)]
        init = grid_runs.loc[grid_runs["problem"] == problem, "initial_loss"].astype(float)
        finite = sub["score"][np.isfinite(sub["score"])]
        top = min(float(finite.max()), CAP * float(init.max())) if len(finite) else 1.0
        for method, m in sub.groupby("method", sort=False):
            color, ok = color_of(method), np.isfinite(m["score"]) & (m["score"] <= top)
            ax.plot(
                m["lr"][ok],
                m["score"][ok],
                color=color,
                ls=dash_of(method),
                lw=1.4,
                marker="o",
                ms=3,
            )
            over = ~np.isfinite(m["score"])  # diverged: x at the top edge
            high = np.isfinite(m["score"]) & (m["score"] > top)  # off the scale: ^ there
            for at, marker, size in ((over, "x", 30), (high, "^", 26)):
                ax.scatter(
                    m["lr"][at],
                    np.full(at.sum(), top),
                    marker=marker,
                    color=color,
                    s=size,
                    clip_on=False,
                    zorder=5,
                )
        for row in chosen[
            (chosen["problem"] == problem) & chosen["method"].isin(methods)
        ].itertuples():
            at = sub[(sub["method"] == row.method) & (sub["lr"] == row.lr)]["score"]
            if len(at):
                edge = bool(getattr(row, "at_edge", "") or "")
                ax.scatter(
                    [row.lr],
                    [min(at.iloc[0], top)],
                    marker="*",
                    s=150,
                    zorder=7,
                    color="white" if edge else color_of(row.method),
                    edgecolor=color_of(row.method) if edge else "black",
                    linewidth=1.0,
                )
        log_axis(ax, "x")
        if len(finite) and (finite > 0).all():
            # The log scale first, then limits from the data (set the other way round, linear
            # limits of 0 or below leave a log axis collapsed onto its top edge).
            lo = float(finite.min())
            log_axis(ax, "y", lo / 1.3, top * 1.3)
            ax.set_ylim(lo / 1.3, top * 1.3)
        elif len(finite):
            ax.set_ylim(top=top * 1.05)
        title = f"{problem}{' – ' + family if family else ''}"
        label_panel(ax, title, "learning rate", "final hold-out loss")
    extra = [
        Line2D([], [], color="0.3", marker="*", ms=10, ls="none", label="selected"),
        Line2D(
            [],
            [],
            color="0.3",
            marker="*",
            ms=10,
            mfc="white",
            ls="none",
            label="selected, at grid edge",
        ),
        Line2D([], [], color="0.3", marker="x", ls="none", label="diverged"),
        Line2D([], [], color="0.3", marker="^", ls="none", label="off the scale"),
    ]
    title = "Final hold-out loss vs learning rate (median over selection seeds)"
    return save(fig, path, title, legend_handles(set(best["method"]), extra))


def profile(taus: np.ndarray, rho: dict[str, np.ndarray], path: Path, what: str) -> Path:
    """Performance profile: fraction of problems solved within tau x the best method's time."""
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for method in order(rho):
        ax.step(
            taus,
            rho[method],
            where="post",
            color=color_of(method),
            ls=dash_of(method),
            lw=2,
            label=method,
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(-0.02, 1.02)
    label_panel(ax, "", "tau (time to target / best method's time)", "fraction of problems")
    fig.subplots_adjust(left=0.1, right=0.78, top=0.88, bottom=0.13)
    if rho:  # no method has a curve when every run diverged
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.suptitle(f"Performance profile ({what})", fontsize=11)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def gaps(summary: pd.DataFrame, path: Path, interval: str = "seeds' range") -> Path:
    """Per problem: each method's generalisation gap (hold-out - training loss), median and
    interval over seeds (`interval` names it), as a dot with whiskers; 0 = no gap."""
    tuned = summary[summary["phase"] == "tuned"]
    problems = list(dict.fromkeys(tuned["problem"]))
    if not problems:  # every grid point diverged: nothing was tuned
        return nothing(path, "Generalisation gap of the tuned runs")
    fig, axes = panel_grid([(p, "") for p in problems], width=3.9, height=3.1)
    for ax, problem in zip(axes, problems, strict=True):
        sub = tuned[tuned["problem"] == problem].set_index("method")
        methods = order(sub.index)
        for i, method in enumerate(methods):
            r = sub.loc[method]
            med, lo, hi = (float(r[f"generalization_gap{s}"]) for s in ("", "_lo", "_hi"))
            if not math.isfinite(med):
                continue
            ax.errorbar(
                [med],
                [i],
                xerr=[[med - lo], [hi - med]],
                fmt="o",
                color=color_of(method),
                capsize=3,
                ms=5,
            )
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.invert_yaxis()
        label_panel(ax, problem, "hold-out - training loss", "")
    title = f"Generalisation gap of the tuned runs (median, {interval} over seeds)"
    return save(fig, path, title, [])
