"""Interactive curves for report.html (plotly): hover to read a value, click a legend entry to
hide or show a method. One figure per problem, same colours and dashes as the PNGs, median over
seeds, at most `MAX_POINTS` points per line (evenly spaced epochs, first and last kept).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bench.output.palette import color_of, dash_of, order
from bench.output.plots import CAP

MAX_POINTS = 200


def _thin(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))


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
    df = epochs[epochs["device"] == epochs["device"].iloc[0]].copy()
    main = "scratch" if (df["impl"] == "scratch").any() else df["impl"].iloc[0]
    df = df[df["impl"] == main]
    df["_y"] = transform(df) if transform is not None else df["train_loss"]
    start = df[df["epoch"] == 0].groupby("problem")["_y"].median()
    if x != "epoch":
        df = df[df["epoch"] > 0]
    stats = df.groupby(["problem", "method", "epoch"], sort=False).agg(
        x=(x, "median"), med=("_y", "median"), lo=("_y", "min"), hi=("_y", "max")
    )
    figures = []
    for problem in dict.fromkeys(df["problem"]):
        fig = go.Figure()
        sub = stats.loc[problem]
        for method in order(set(sub.index.get_level_values("method"))):
            g = sub.loc[method]
            g = g.iloc[_thin(len(g))]
            g = g[np.isfinite(g["med"])]
            fig.add_trace(
                go.Scatter(
                    x=g["x"],
                    y=g["med"],
                    name=method,
                    mode="lines",
                    line={
                        "color": color_of(method),
                        "dash": "dash" if dash_of(method) != "-" else "solid",
                        "width": 2,
                    },
                    customdata=np.stack([g["lo"], g["hi"]], axis=1),
                    hovertemplate=(
                        f"{method}<br>{xlabel} %{{x:.4g}}<br>median %{{y:.4g}}"
                        "<br>seeds' range [%{customdata[0]:.4g}, %{customdata[1]:.4g}]"
                        "<extra></extra>"
                    ),
                )
            )
        positive = bool((df.loc[df["problem"] == problem, "_y"].dropna() > 0).all())
        med = sub["med"][np.isfinite(sub["med"])]
        yrange = None
        if log_y and positive and len(med) and problem in start and start[problem] > 0:
            # The same robust axis as the PNGs: up to CAP x the initial value, not the blow-up.
            top = min(float(med.max()), CAP * float(start[problem]))
            yrange = [np.log10(float(med.min()) / 1.5), np.log10(top * 1.2)]
        fig.update_layout(
            title={"text": problem, "x": 0.01},
            height=360,
            margin={"l": 60, "r": 20, "t": 40, "b": 50},
            xaxis_title=xlabel,
            yaxis_title=ylabel,
            yaxis_type="log" if log_y and positive else "linear",
            yaxis_range=yrange,
            xaxis_type="log" if x != "epoch" else "linear",
            legend={"font": {"size": 11}},
            template="plotly_white",
        )
        figures.append(fig)
    return figures
