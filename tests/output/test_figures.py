"""The figures draw what their captions say: axes, bands, markers (PNG and interactive)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.output import interactive, plots, sweep_plots


@pytest.fixture
def captured(monkeypatch):
    """The figures `save` would write, kept open so their axes can be read."""
    figures = []

    def keep(fig, path, title, handles):
        figures.append(fig)
        return path

    monkeypatch.setattr(plots, "save", keep)
    monkeypatch.setattr(sweep_plots, "save", keep)
    yield figures
    for fig in figures:
        plots.plt.close(fig)


def curve_epochs(values: dict[str, list[list[float]]], problem: str = "p") -> pd.DataFrame:
    """method -> one loss curve per seed (epoch 0 first)."""
    rows = []
    for method, seeds in values.items():
        for seed, curve in enumerate(seeds):
            status = "diverged" if not math.isfinite(curve[-1]) else "ok"
            rid = f"{method}-{seed}"
            for epoch, loss in enumerate(curve):
                rows.append(dict(run_id=rid, problem=problem, method=method, impl="scratch",
                                 device="cpu", seed=seed, epoch=epoch, train_loss=loss,
                                 elapsed_s=0.1 * epoch, status=status))  # fmt: skip
    return pd.DataFrame(rows)


def test_the_band_is_shaded_only_over_stretches_narrower_than_10x():
    lo = np.array([1.0] * 12)
    hi = np.array([5, 5, 5, 5, 5, 5, 50, 5, 5, 50, 5, 5], dtype=float)
    assert plots.narrow(lo, hi).tolist() == [True] * 6 + [False] * 6  # short runs dropped
    assert not plots.narrow(lo, hi * 100).any()  # a 220x band is never shaded


def test_a_zero_loss_stays_on_a_log_axis(tmp_path: Path, captured):
    """Himmelblau: one method reaches exactly 0.0 in float32; the axis stays logarithmic."""
    epochs = curve_epochs({"gd": [[100, 1, 1e-6, 1e-12]], "nesterov": [[100, 1, 1e-8, 0.0]]})
    plots.curves(epochs, tmp_path / "c.png", title="t")
    [ax] = [a for a in captured[0].axes if a.get_visible()]
    assert ax.get_yscale() == "log"
    lo, hi = ax.get_ylim()
    assert 0 < lo < 1e-12 < 100 <= hi
    # the zero is drawn on the bottom edge (at a tenth of the smallest positive value)
    nesterov = next(line for line in ax.get_lines() if line.get_ydata()[0] == 100
                    and line.get_ydata()[-1] != 1e-12)  # fmt: skip
    assert nesterov.get_ydata()[-1] == pytest.approx(1e-13)


def test_sensitivity_uses_a_log_axis_that_spans_the_data(tmp_path: Path, captured):
    """Hold-out losses from 1.13 to 54 (an ordinary dataset): points spread over the axis,
    not all on its top edge with their labels on top of each other."""
    lrs = [1e-4, 1e-3, 1e-2, 1e-1]
    scores = {"gd": [54.0, 12.0, 2.0, 1.13], "sgd": [40.0, 5.0, 1.5, math.inf]}
    grid = pd.DataFrame(
        [
            dict(problem="p", method=m, lr=lr, hparams=f'{{"lr": {lr}}}', seed=0,
                 final_holdout_loss=v, status="ok" if math.isfinite(v) else "diverged",
                 initial_loss=60.0)
            for m, values in scores.items()
            for lr, v in zip(lrs, values, strict=True)
        ]
    )  # fmt: skip
    selection = pd.DataFrame(
        {"problem": "p", "method": ["gd", "sgd"], "hparams": ['{"lr": 0.1}', '{"lr": 0.01}'],
         "at_edge": ["high", ""]}
    )  # fmt: skip
    sweep_plots.sensitivity(grid, selection, tmp_path / "s.png")
    [ax] = [a for a in captured[0].axes if a.get_visible()]
    assert ax.get_yscale() == "log"
    lo, hi = ax.get_ylim()
    assert 0 < lo <= 1.13
    assert hi >= 54
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    assert 2 <= len(ticks) <= 8
    line = ax.get_lines()[0]
    assert np.ptp(ax.transData.transform(np.c_[line.get_xdata(), line.get_ydata()])[:, 1]) > 50


def test_interactive_charts_draw_the_bands_and_markers_their_caption_promises():
    epochs = curve_epochs(
        {
            "gd": [[100, 50, 20, 10, 5, 3, 2], [100, 60, 25, 12, 6, 3.5, 2.5]],
            "momentum": [[100, 30, 10, 1e4, math.inf, math.nan, math.nan]] * 2,
            "adam": [[100, 500, 40, 8, 4, 2, 1]] * 2,
        }
    )
    [fig] = interactive.curves(epochs, ylabel="training loss")
    bands = [t for t in fig.data if t.fill == "toself"]
    assert {t.legendgroup for t in bands} >= {"gd"}  # the seeds' range, narrower than 10x
    marks = {(t.legendgroup, t.marker.symbol) for t in fig.data if t.mode == "markers"}
    assert ("momentum", "x") in marks  # diverged: its last value
    assert ("adam", "triangle-up") in marks  # 500 > 3 x 100: off the scale, on the top edge
    assert fig.layout.yaxis.type == "log"


def test_interactive_charts_keep_a_zero_on_the_log_axis():
    epochs = curve_epochs({"gd": [[100, 1, 1e-12]], "nesterov": [[100, 1e-3, 0.0]]})
    [fig] = interactive.curves(epochs, ylabel="training loss")
    assert fig.layout.yaxis.type == "log"
    nesterov = next(t for t in fig.data if t.name == "nesterov")
    assert float(nesterov.y[-1]) == pytest.approx(1e-13)
