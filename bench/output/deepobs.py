"""The report section for DeepOBS's `quadratic_deep`: our numbers next to DeepOBS's own.

For each quadratic_deep problem of the results: the initial hold-out loss (at θ0 = ones), the
closed-form optimum (θ* = mean of the training points: its training loss and its hold-out
loss), and each method's final hold-out loss (tuned reruns in a sweep; every run of a plain
run), median [seeds' range], next to DeepOBS's baseline for the same update rule: its learning
rate and its final test loss over the seeds it ran at that setting (`Baseline.finals`), so a
difference is read against DeepOBS's own spread over seeds. A line is like for like only where
the hyperparameters are the same; where the sweep picked another learning rate, the line says
so and, when the grid has DeepOBS's rate, gives our grid runs at it. The baselines ran on the
TensorFlow variant's Q (`datasets.deepobs` docstring), so they are compared with that variant
only. Hold-out = the 896 test points DeepOBS evaluates, the same quantity as its test loss.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

import datasets
from bench import fmt
from bench.analysis.tables import primary
from bench.output.doc import Code, Section, Table

# Our method -> DeepOBS's optimizer of the same update rule (batch size from the problem: 128).
BASELINE_OF = {"minibatch": "SGD", "momentum": "Momentum", "adam": "Adam"}
SAME = 1e-9  # relative tolerance for "the same learning rate"


def _variant(dataset: str) -> str:
    return "tensorflow" if "variant=tensorflow" in dataset else "pytorch"


def _hp(hparams: str) -> str:
    return ", ".join(
        f"{k}={fmt.num(v) if isinstance(v, float) else v}" for k, v in json.loads(hparams).items()
    )


def _range(values: np.ndarray) -> str:
    """'median [min, max] (n seeds)' of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return fmt.MISSING
    seeds = f"{v.size} seed" + ("s" if v.size > 1 else "")
    return f"{fmt.interval(float(np.median(v)), v.min(), v.max(), v.size)} ({seeds})"


def _matches(hparams: str, base: datasets.Baseline) -> bool:
    """Our hyperparameters are DeepOBS's setting (its learning rate, and momentum 0.99)."""
    hp = json.loads(hparams)
    lr = float(hp.get("lr", math.nan))
    same_lr = math.isclose(lr, base.learning_rate, rel_tol=SAME)
    if base.optimizer == "Momentum":
        return same_lr and math.isclose(float(hp.get("momentum", math.nan)), 0.99)
    return same_lr


def _verdict(ours: np.ndarray, theirs: list[float]) -> str:
    """Where our seeds' range sits against DeepOBS's: overlapping, below or above."""
    v = np.asarray(ours, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size or not theirs:
        return fmt.MISSING
    if v.max() < min(theirs):
        return "ours lower than every DeepOBS seed"
    if v.min() > max(theirs):
        return "ours higher than every DeepOBS seed"
    return "ranges overlap"


def _line(method: str, m: pd.DataFrame, base, grid: pd.DataFrame) -> str:
    """One method against DeepOBS's baseline of the same rule, as a sentence."""
    final = m["final_holdout_loss"].astype(float).to_numpy()
    hparams = str(m["hparams"].iloc[0])
    finals = base.finals
    vals = list(finals.values())
    theirs = (
        f"{fmt.interval(float(np.median(vals)), min(vals), max(vals), len(vals))} "
        f"({len(vals)} seeds: {', '.join(map(str, sorted(finals)))})"
    )
    setting = f"lr {fmt.num(base.learning_rate)}" + (
        ", momentum 0.99" if base.optimizer == "Momentum" else ""
    )
    text = (
        f"`{method}` ({_hp(hparams)}): {_range(final)}; DeepOBS's {base.optimizer} "
        f"({setting}): {theirs}. "
    )
    if _matches(hparams, base):
        return text + f"Same setting: {_verdict(final, vals)}."
    text += "Not like for like: other hyperparameters"
    at = grid[grid["method"] == method]
    at = at[[_matches(h, base) for h in at["hparams"].astype(str)]] if len(at) else at
    if len(at):
        values = at["final_holdout_loss"].astype(float).to_numpy()
        text += (
            f"; at DeepOBS's setting our grid runs end at {_range(values)}: "
            f"{_verdict(values, vals)}"
        )
    return text + "."


def sections(runs: pd.DataFrame, epochs: pd.DataFrame, command: str) -> list[Section]:
    """The DeepOBS section (none when no run is on quadratic_deep)."""
    mask = runs["dataset"].astype(str).str.startswith("quadratic_deep")
    if not mask.any():
        return []
    runs = runs[mask]
    grid = runs.iloc[0:0]
    if "phase" in runs.columns:  # a sweep: the tuned reruns are what DeepOBS reports
        grid = primary(runs[runs["phase"] == "grid"])
        runs = runs[runs["phase"] == "tuned"]
    runs = primary(runs)
    published = {b.optimizer: b for b in datasets.DEEPOBS_BASELINES}
    blocks: list = [
        "DeepOBS's noisy quadratic (Schneider et al., ICLR 2019) rebuilt exactly "
        "(`datasets.quadratic_deep`): θ ∈ R^100 from θ0 = ones in every run, loss 0.5 (θ − "
        "x)ᵀ Q (θ − x) averaged over the batch, batch size 128 with the remainder dropped, 100 "
        "epochs; hold-out = the fixed 896 test points DeepOBS evaluates. A seed changes only the "
        "batch order (the data and θ0 are fixed), in DeepOBS as here. Made by:",
        Code(command),
        "DeepOBS has two Q matrices under this name: its published baselines ran on the "
        "TensorFlow code's (`quadratic_deep:variant=tensorflow`); the current PyTorch code "
        "draws another (`quadratic_deep`), so only the first is compared with them.",
    ]
    for problem, g in runs.groupby("problem", sort=False):
        dataset = str(g["dataset"].iloc[0])
        variant = _variant(dataset)
        qp = datasets.quadratic_deep(variant)
        e = epochs[(epochs["problem"] == problem) & (epochs["epoch"] == 0)]
        initial = float(e["holdout_loss"].median()) if len(e) else float("nan")
        star_test = qp.evaluated_loss(qp.theta_star, qp.X_test)
        compare = variant == "tensorflow"
        rows = [
            ["initial hold-out loss (θ0 = ones)", fmt.num(initial, 7),
             fmt.num(published["SGD"].initial_test_loss, 7) if compare else fmt.MISSING],
            ["optimum θ*: training loss (closed form)", fmt.num(qp.train_loss_star, 7),
             fmt.MISSING],
            ["optimum θ*: hold-out loss", fmt.num(star_test, 7), fmt.MISSING],
        ]  # fmt: skip
        blocks += [
            f"**{problem}** ({variant} variant)",
            Table(["", "optbench", "DeepOBS published"], rows),
        ]
        groups = list(g.groupby(["method", "hparams"], sort=False))
        if compare:
            lines = [
                _line(str(method), m, published[BASELINE_OF[str(method)]],
                      grid[grid["problem"] == problem])
                for (method, _), m in groups
                if str(method) in BASELINE_OF
            ]  # fmt: skip
            blocks += [
                "Final hold-out (test) loss, median [seeds' range], ours and DeepOBS's over "
                "the seeds it ran:",
                lines,
            ]
        else:  # no published numbers for this variant: ours alone
            rows = [
                [f"`{method}`", _hp(str(hp)), _range(m["final_holdout_loss"].astype(float))]
                for (method, hp), m in groups
            ]
            blocks += [
                "Our final hold-out loss, median [seeds' range] (DeepOBS published none for "
                "this variant):",
                Table(["method", "hyperparameters", "final hold-out loss"], rows),
            ]
    sources = [f"{b.optimizer}: `{b.source}`" for b in datasets.DEEPOBS_BASELINES]
    blocks += [
        "DeepOBS's numbers are its baseline runs' logged test losses at epoch 0 and after "
        "epoch 100, at its tuned learning rate: the seed-42 file named below and the other "
        "seeds' files in the same folder (those the stored index holds; `datasets.deepobs`).",
        sources,
    ]
    return [Section("DeepOBS quadratic_deep", blocks)]
