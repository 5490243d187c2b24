"""Interactive curves for report.html (plotly): hover to read a value, click a legend entry to
hide or show a method. One figure per problem, drawn like the PNGs (`plots.curves`): the same
colours and dashes, the median over seeds of each method's own implementation
(`tables.primary`), the seeds' range shaded at the epochs where it is narrower than 10x, a
diverged run's last value marked x, values above the axis' top (3x the initial value) marked ^
on the top edge, a loss of exactly 0 drawn on the bottom edge of the log axis. At most
`MAX_POINTS` points per line (evenly spaced epochs, first and last kept), in float32: the page
stays small.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bench.analysis.tables import primary
from bench.output.palette import color_of, dash_of, order
from bench.output.plots import CAP, narrow
from bench.schema import Status

MAX_POINTS = 120


def _thin(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))


def _f32(values) -> np.ndarray:
    """Values as float32 for a lighter page; a float64 run's value beyond float32's range is
    drawn as inf (off the chart), not a warning."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float32)


def _band(x, lo, hi, color: str, method: str) -> go.Scatter | None:
    """The seeds' range at the epochs where it is narrower than 10x: one closed polygon per
    stretch of such epochs (NaN-separated in one trace, filled 'toself'), nothing elsewhere."""
    x = np.asarray(x, dtype=float)
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    ok = narrow(lo, hi)
    if not ok.any():
        return None
    xs: list[float] = []
    ys: list[float] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        idx = np.arange(start, stop)
        xs += [*x[idx], *x[idx][::-1], np.nan]
        ys += [*lo[idx], *hi[idx][::-1], np.nan]
    return go.Scatter(x=_f32(xs), y=_f32(ys), fill="toself", fillcolor=_alpha(color),
                      mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False,
                      legendgroup=method)  # fmt: skip


def _alpha(hex_color: str, a: float = 0.15) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{a})"


def curves(
    epochs: pd.DataFrame,
    *,
    ylabel: str,
    x: str = "epoch",
    xlabel: str = "epoch",
    transform: Callable[[pd.DataFrame], pd.Series] | None = None,
    log_y: bool = True,
) -> list[go.Figure]:
    """One figure per problem: median over seeds of y (the training loss, or `transform`)."""
    if epochs.empty:  # every run diverged before it could be tuned: no curve to show
        return []
    df = primary(epochs).copy()
    df["_y"] = (transform(df) if transform is not None else df["train_loss"]).astype(float)
    start = df[df["epoch"] == 0].groupby("problem")["_y"].median()
    if x != "epoch":
        df = df[df["epoch"] > 0]
    stats = df.groupby(["problem", "method", "epoch"], sort=False).agg(
        x=(x, "median"), med=("_y", "median"), lo=("_y", "min"), hi=("_y", "max")
    )
    diverged = df[df["status"] == Status.DIVERGED]
    last = diverged[np.isfinite(diverged["_y"])].groupby("run_id").tail(1)
    figures = []
    for problem in dict.fromkeys(df["problem"]):
        fig = go.Figure()
        sub = stats.loc[problem]
        values = df.loc[df["problem"] == problem, "_y"]
        finite = values[np.isfinite(values)]
        use_log = bool(log_y and len(finite) and (finite >= 0).all() and (finite > 0).any())
        floor = float(finite[finite > 0].min()) / 10 if use_log else None
        top = CAP * float(start[problem]) if problem in start and start[problem] > 0 else None
        visible: list = []  # what is drawn, for the axis' range
        for method in order(set(sub.index.get_level_values("method"))):
            g = sub.loc[method]
            g = g.iloc[_thin(len(g))]
            color = color_of(method)
            med = g["med"].to_numpy(dtype=float)
            shown = np.where(np.isfinite(med), med, np.nan)
            if floor is not None:
                shown = np.where(shown <= 0, floor, shown)
            over = np.isfinite(med) & (med > top) if top is not None else np.zeros(len(g), bool)
            if top is not None:
                shown = np.where(over, top, shown)
            band = _band(g["x"], g["lo"], g["hi"], color, method)
            if band is not None:
                fig.add_trace(band)
                visible.append(g["lo"][narrow(g["lo"], g["hi"])])
            fig.add_trace(
                go.Scatter(
                    x=_f32(g["x"]),
                    y=_f32(shown),
                    name=method,
                    legendgroup=method,
                    mode="lines",
                    line={
                        "color": color,
                        "dash": "dash" if dash_of(method) != "-" else "solid",
                        "width": 2,
                    },
                    customdata=np.stack([_f32(med), _f32(g["lo"]), _f32(g["hi"])], axis=1),
                    hovertemplate=(
                        f"{method}<br>{xlabel} %{{x:.4g}}<br>median %{{customdata[0]:.4g}}"
                        "<br>seeds' range [%{customdata[1]:.4g}, %{customdata[2]:.4g}]"
                        "<extra></extra>"
                    ),
                )
            )
            visible.append(pd.Series(shown))
            if over.any():
                fig.add_trace(
                    go.Scatter(x=_f32(g["x"][over]), y=_f32(shown[over]), mode="markers",
                               marker={"symbol": "triangle-up", "size": 8, "color": color},
                               legendgroup=method, showlegend=False, hoverinfo="skip")
                )  # fmt: skip
            marks = last[(last["problem"] == problem) & (last["method"] == method)]
            if len(marks):
                y = marks["_y"].to_numpy(dtype=float)
                y = np.minimum(y, top) if top is not None else y
                fig.add_trace(
                    go.Scatter(x=_f32(marks[x]), y=_f32(y), mode="markers",
                               marker={"symbol": "x", "size": 10, "color": color},
                               legendgroup=method, showlegend=False,
                               hovertemplate=f"{method} diverged after this<extra></extra>")
                )  # fmt: skip
        yrange, dtick = None, None
        drawn = pd.concat(visible).astype(float) if visible else pd.Series(dtype=float)
        drawn = drawn[np.isfinite(drawn) & (drawn > 0)]
        if use_log and len(drawn):
            low, high = float(drawn.min()) / 1.5, float(drawn.max()) * 1.3
            yrange = [np.log10(low), np.log10(high)]
            dtick = 1 if np.log10(high / low) > 2 else "D2"  # labels at 10^k, or 1-2-5
        fig.update_layout(
            title={"text": problem, "x": 0.01},
            height=360,
            margin={"l": 60, "r": 20, "t": 40, "b": 50},
            xaxis_title=xlabel,
            yaxis_title=ylabel,
            yaxis_type="log" if use_log else "linear",
            yaxis_range=yrange,
            yaxis_dtick=dtick,
            xaxis_type="log" if x != "epoch" else "linear",
            legend={"font": {"size": 11}},
            template="plotly_white",
        )
        figures.append(fig)
    return figures
