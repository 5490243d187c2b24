"""Plots, all drawn from the tidy epochs/runs tables (never from live objects).

Conventions shared by every figure (see `palette`): one colour per method in every figure,
weight-decay variants dashed; methods faceted by family where a panel would hold more than six
lines; a from-scratch curve and its torch.optim twin are one line when they are identical
(torch's is drawn dotted only where it differs). Curves are the median over seeds, with the
seeds' range shaded only where it is informative: at the epochs where it is less than a factor
10 wide. Axes are robust: the y range stops at `CAP` x the largest initial value, and points
beyond it (or where a run diverged) are marked at the edge instead of stretching the axis; a
loss of exactly 0 (a 2-D function's minimum, reached in float32) is drawn on the bottom edge of
the log axis. Titles and
legends sit outside the axes and are never clipped (margins computed in inches, see `save`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.analysis.tables import PRIMARY_IMPLS
from bench.output.palette import color_of, dash_of, facets, order
from bench.schema import Status

__all__ = ["color_of", "curves", "epoch_times", "log_axis", "panel_grid", "save"]

DPI = 110
CAP = 3.0  # y axis ends at CAP x the largest initial value of a panel
BAND_DECADES = 1.0  # shade the seeds' range only where it is narrower than this (log axes)
BAND_MIN_RUN = 5  # ... over at least this many consecutive epochs
MAX_COLS = 4


def panel_grid(
    panels: Sequence[tuple[str, str]], width: float = 3.9, height: float = 2.9
) -> tuple[plt.Figure, list[plt.Axes]]:
    """A grid of panels; a problem's family facets sit side by side in one row."""
    n = len(panels)
    per_problem = max(1, len({f for _, f in panels}))
    cols = min(n, per_problem * max(1, MAX_COLS // per_problem))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def label_panel(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> None:
    width = ax.get_position().width * ax.figure.get_size_inches()[0]
    ax.set_title("\n".join(textwrap.wrap(title, max(12, int(width * 12)))), fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", alpha=0.3)


def legend_handles(methods: Sequence[str], extra: Sequence[Line2D] = ()) -> list[Line2D]:
    return [
        Line2D([], [], color=color_of(m), ls=dash_of(m), lw=2.2, label=m) for m in order(methods)
    ] + list(extra)


def nothing(path: Path, title: str) -> Path:
    """A figure that says there is nothing to draw (every run diverged or failed)."""
    fig, ax = plt.subplots(figsize=(5, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, "nothing to plot: every run diverged or failed", ha="center", va="center")
    return save(fig, path, title, [])


def save(fig: plt.Figure, path: Path, title: str, handles: Sequence[Line2D]) -> Path:
    """Title above, legend below the panels (outside every axis), write the PNG, free it.

    Margins are computed in inches from the title's and the legend's line counts (the figure
    grows to hold them), so nothing is clipped at any number of panels; constrained layout or
    a tight bounding box would measure every tick label and triple the drawing time."""
    w, h = fig.get_size_inches()
    title_lines = textwrap.wrap(title, max(30, int(w * 11)))
    ncols = max(1, min(len(handles), int(w / 1.55))) if handles else 1
    legend_rows = math.ceil(len(handles) / ncols) if handles else 0
    top_in = 0.35 + 0.24 * len(title_lines)
    bottom_in = 0.6 + 0.24 * legend_rows
    fig.set_size_inches(w, h + top_in + bottom_in)
    H = h + top_in + bottom_in
    fig.subplots_adjust(
        left=0.8 / w,
        right=1 - 0.2 / w,
        top=1 - top_in / H,
        bottom=bottom_in / H,
        wspace=0.32,
        hspace=0.55,
    )
    fig.suptitle("\n".join(title_lines), fontsize=11, y=1 - 0.12 / H, va="top")
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 0.08 / H),
            ncols=ncols,
            frameon=False,
            fontsize=9,
        )
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def log_axis(ax: plt.Axes, which: str = "y", lo: float | None = None, hi: float | None = None):
    """Log scale labelled at 1-2-5 on short ranges and at powers of ten on long ones (at most
    about six labels, so they never overlap), never at minor ticks."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    dlo, dhi = ax.dataLim.intervaly if which == "y" else ax.dataLim.intervalx
    lo, hi = lo or dlo, hi or dhi
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    if decades < (2 if which == "y" else 1.2):
        subs: tuple[float, ...] = (1.0, 2.0, 5.0)
    elif decades < 2.5:  # 1-3-10: a short range still gets two or three labels
        subs = (1.0, 3.0)
    else:
        subs = (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6 if which == "x" else 8))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _positive(values: pd.Series | np.ndarray) -> bool:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return arr.size > 0 and bool((arr > 0).all())


def _loggable(values: pd.Series | np.ndarray) -> bool:
    """Non-negative with some positive value: a log axis, zeros drawn on its bottom edge."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return arr.size > 0 and bool((arr >= 0).all()) and bool((arr > 0).any())


def narrow(
    lo: pd.Series | np.ndarray, hi: pd.Series | np.ndarray, min_run: int = BAND_MIN_RUN
) -> np.ndarray:
    """Where the band is shaded: the seeds' range [lo, hi] is narrower than 10^BAND_DECADES
    (both > 0), in stretches of at least `min_run` such points (a range that flickers across
    10x from one epoch to the next would shade a comb, not a band)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.log10(hi / lo)
    ok = np.isfinite(width) & (lo > 0) & (width < BAND_DECADES)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < min(min_run, len(ok)):
            ok[start:stop] = False
    return ok


def _drawn(v: pd.Series, floor: float, top: float) -> pd.Series:
    """Values as drawn: capped at `top`; on a log axis (floor > 0) a 0 sits at `floor`."""
    v = v.clip(upper=top)
    return v.where(~(v <= 0), floor) if floor > 0 else v


def main_impl(impls) -> str:
    """The implementation a curve shows (`tables.PRIMARY_IMPLS` order; the rest are twins)."""
    rank = {impl: i for i, impl in enumerate(PRIMARY_IMPLS)}
    return min(impls, key=lambda i: rank.get(i, len(rank)))


def _panels(df: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """(problem, family, methods) for every panel, problems in order of appearance."""
    out = []
    for problem in dict.fromkeys(df["problem"]):
        for family, methods in facets(set(df.loc[df["problem"] == problem, "method"])):
            out.append((problem, family, methods))
    return out


def _edge_marks(ax: plt.Axes, xs, ys, top: float, color: str, marker: str = "^") -> None:
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    over = ~np.isfinite(ys) | (ys > top)
    if over.any():
        ax.scatter(
            xs[over],
            np.full(over.sum(), top),
            marker=marker,
            s=26,
            color=color,
            clip_on=False,
            zorder=6,
        )


def _stats(df: pd.DataFrame, x: str) -> pd.DataFrame:
    return df.groupby(["problem", "method", "impl", "epoch"], sort=False).agg(
        x=(x, "median"),
        med=("_y", "median"),
        lo=("_y", "min"),
        hi=("_y", "max"),
        seeds=("seed", "nunique"),
    )


def curves(
    epochs: pd.DataFrame,
    path: Path,
    *,
    title: str,
    y: str = "train_loss",
    x: str = "epoch",
    ylabel: str = "training loss",
    xlabel: str = "epoch",
    transform: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> Path:
    """One panel per problem (x method family): median over seeds of y against x."""
    if epochs.empty:  # e.g. a sweep whose every grid point diverged: no tuned runs to draw
        return nothing(path, title)
    df = epochs[epochs["device"] == epochs["device"].iloc[0]].copy()
    df["_y"] = transform(df) if transform is not None else df[y]
    stats = _stats(df, x)
    start = stats.xs(0, level="epoch")["med"] if 0 in set(df["epoch"]) else stats["med"]
    if x != "epoch":
        stats = stats[stats.index.get_level_values("epoch") > 0]
    diverged = set(df.loc[df["status"] == Status.DIVERGED, "run_id"])
    last = df[df["run_id"].isin(diverged) & np.isfinite(df["_y"])].groupby("run_id").tail(1)
    panels = _panels(df)
    fig, axes = panel_grid([(p, f) for p, f, _ in panels])
    torch_differs = False
    for ax, (problem, family, methods) in zip(axes, panels, strict=True):
        ref = start.loc[problem]
        ref = ref[np.isfinite(ref)]
        top = float(ref.max()) * CAP if len(ref) else math.inf
        values = df.loc[df["problem"] == problem, "_y"]
        log_y = _loggable(values)
        positive = values[np.isfinite(values) & (values > 0)]
        floor = float(positive.min()) / 10 if log_y else 0.0

        def shown(v: pd.Series, floor: float = floor, top: float = top) -> pd.Series:
            return _drawn(v, floor, top)

        lows = []
        for method in methods:
            color, ls = color_of(method), dash_of(method)
            try:
                g = stats.loc[(problem, method)]
            except KeyError:
                continue
            impls = list(dict.fromkeys(g.index.get_level_values("impl")))
            main = main_impl(impls)
            s = g.xs(main, level="impl")
            ax.plot(s["x"], shown(s["med"]), color=color, ls=ls, lw=1.6)
            _edge_marks(ax, s["x"], s["med"], top, color)
            lows.append(shown(s["med"])[np.isfinite(s["med"])])
            mask = narrow(s["lo"], s["hi"]) if log_y else np.ones(len(s), bool)
            if s["seeds"].max() > 1 and mask.any():
                ax.fill_between(
                    s["x"], s["lo"], s["hi"].clip(upper=top), where=mask, color=color,
                    alpha=0.13, lw=0,
                )  # fmt: skip
                lows.append(s["lo"][mask & np.isfinite(s["lo"]) & (s["lo"] > 0)])
            for impl in impls:
                t = g.xs(impl, level="impl")
                if impl != main and not np.array_equal(t["med"].to_numpy(), s["med"].to_numpy()):
                    torch_differs = True
                    ax.plot(t["x"], shown(t["med"]), color=color, ls=":", lw=1.2)
            marks = last[(last["problem"] == problem) & (last["method"] == method)]
            if len(marks):
                ax.scatter(marks[x], shown(marks["_y"]), marker="x", s=40, color=color, zorder=5)
        low = pd.concat(lows) if lows else pd.Series(dtype=float)
        low = low[low > 0]
        if log_y and len(low) and math.isfinite(top):
            lo = float(low.min()) / 1.5
            ax.set_ylim(lo, top)
            log_axis(ax, "y", lo, top)
        elif log_y:
            log_axis(ax, "y")
        elif math.isfinite(top):
            ax.set_ylim(top=top)
        drawn = problem in stats.index.get_level_values("problem")  # all failed at the start: no
        if x != "epoch" and drawn and _positive(stats.loc[problem, "x"]):
            log_axis(ax, "x")
        label_panel(ax, f"{problem}{' – ' + family if family else ''}", xlabel, ylabel)
    extra = [Line2D([], [], color="0.3", marker="x", ls="none", label="diverged (last value)")]
    extra.append(Line2D([], [], color="0.3", marker="^", ls="none", label="off the scale"))
    if torch_differs:
        extra.append(Line2D([], [], color="0.3", ls=":", label="torch.optim (where it differs)"))
    return save(fig, path, title, legend_handles(set(df["method"]), extra))


def epoch_times(
    epochs: pd.DataFrame,
    path: Path,
    column: str = "epoch_time_s",
    what: str = "Wall time per epoch, training steps only",
    xlabel: str = "epoch wall time (ms)",
) -> Path:
    """Per problem: the distribution of an epoch's time (`column` of `epochs`, rows with
    epoch > 0: the runs' own epochs, or the cost measurement's rounds) per method and impl."""
    df = epochs[epochs["epoch"] > 0] if "epoch" in epochs else epochs
    keys = list(df[["problem", "device"]].drop_duplicates().itertuples(index=False, name=None))
    if not keys:  # every run failed before its first epoch
        return nothing(path, "epoch time")
    fig, axes = panel_grid([(f"{p} ({d})", "") for p, d in keys], width=4.2, height=3.4)
    impls = list(dict.fromkeys(df["impl"]))
    for ax, (problem, device) in zip(axes, keys, strict=True):
        sub = df[(df["problem"] == problem) & (df["device"] == device)]
        pos, labels, drawn = 0.0, [], False
        for method in order(set(sub["method"])):
            for j, impl in enumerate(impls):
                t = sub[(sub["method"] == method) & (sub["impl"] == impl)][column].astype(float)
                t = t[np.isfinite(t) & (t > 0)]  # an epoch that overflowed has no time
                if t.empty:
                    continue
                drawn = True
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
                    box.set_alpha(0.9 if j == 0 else 0.4)
            labels.append((pos + 0.19 * (len(impls) - 1), method))
            pos += 1.0
        ax.set_yticks([p for p, _ in labels], [m for _, m in labels], fontsize=8)
        ax.invert_yaxis()
        if drawn:  # a panel whose every run diverged at once has no time to draw
            log_axis(ax, "x")
        label_panel(ax, f"{problem} ({device})", xlabel, "")
    shade = f"; dark = {impls[0]}, pale = {', '.join(impls[1:])}" if len(impls) > 1 else ""
    title = f"{what} (box: IQR, whiskers: 1.5 IQR{shade})"
    return save(fig, path, title, [])
