"""The report section for DeepOBS's `quadratic_deep`: our numbers next to DeepOBS's published ones.

For each quadratic_deep problem of the results: the initial hold-out loss (at θ0 = ones), the
closed-form optimum (θ* = mean of the training points: its training loss and its hold-out
loss), and each method's final hold-out loss (tuned reruns in a sweep; every run in a plain
run), median [min, max] over seeds, next to DeepOBS's published baseline for the same algorithm
with its source. The baselines were run on the TensorFlow variant's Q
(`datasets.deepobs` docstring), so they are compared with that variant only. Hold-out = the
896 test points DeepOBS evaluates, so the numbers are the same quantity as its logged test loss.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

import datasets
from bench import fmt
from bench.output.doc import Raw, Section

# Our method -> DeepOBS's optimizer of the same update rule (batch size from the problem: 128).
BASELINE_OF = {"minibatch": "SGD", "momentum": "Momentum", "adam": "Adam"}


def _variant(dataset: str) -> str:
    return "tensorflow" if "variant=tensorflow" in dataset else "pytorch"


def _hp(hparams: str) -> str:
    return ", ".join(
        f"{k}={fmt.num(v) if isinstance(v, float) else v}" for k, v in json.loads(hparams).items()
    )


def section(runs: pd.DataFrame, epochs: pd.DataFrame, command: str) -> str | None:
    """The markdown section, or None when no run is on quadratic_deep."""
    mask = runs["dataset"].astype(str).str.startswith("quadratic_deep")
    if not mask.any():
        return None
    runs = runs[mask]
    if "phase" in runs.columns:  # a sweep: the tuned reruns are what DeepOBS reports
        runs = runs[runs["phase"] == "tuned"]
    runs = runs[runs["impl"].isin(("scratch", "plugin"))] if runs["impl"].isin(
        ("scratch", "plugin")).any() else runs  # fmt: skip
    published = {b.optimizer: b for b in datasets.DEEPOBS_BASELINES}
    lines = [
        "## DeepOBS quadratic_deep",
        "",
        "DeepOBS's noisy quadratic (Schneider et al., ICLR 2019) rebuilt exactly "
        "(`datasets.quadratic_deep`): θ ∈ R^100 from θ0 = ones, loss 0.5 (θ − x)ᵀ Q (θ − x) "
        "averaged over the batch, batch size 128 with the remainder dropped, 100 epochs; "
        "hold-out = the 896 test points DeepOBS evaluates. Made by:",
        "",
        f"    {command}",
        "",
        "DeepOBS has two Q matrices under this name: its published baselines ran on the "
        "TensorFlow code's (`quadratic_deep:variant=tensorflow`); the current PyTorch code "
        "draws another (`quadratic_deep`), so only the first is compared with them.",
        "",
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
        lines += [
            f"### {problem} ({variant} variant)",
            "",
            fmt.md_table(["", "optbench", "DeepOBS published"], rows),
            "",
        ]
        table = []
        for method, m in g.groupby("method", sort=False):
            final = m["final_holdout_loss"].astype(float)
            base = published.get(BASELINE_OF.get(method, ""))
            ok = np.isfinite(final)
            table.append(
                [
                    f"`{method}`",
                    _hp(str(m["hparams"].iloc[0])),
                    fmt.interval(
                        float(final[ok].median()) if ok.any() else float("nan"),
                        float(final[ok].min()) if ok.any() else float("nan"),
                        float(final[ok].max()) if ok.any() else float("nan"),
                        int(ok.sum()),
                    ),
                    str(m["seed"].nunique()),
                    f"{base.optimizer}, lr {fmt.num(base.learning_rate)}"
                    + (f", {base.hyperparameters}" if base.hyperparameters else "")
                    if base and compare
                    else fmt.MISSING,
                    fmt.num(base.final_test_loss, 5) if base and compare else fmt.MISSING,
                ]
            )
        header = ["method", "hyperparameters", "final hold-out loss", "seeds"]
        header += ["DeepOBS baseline", "its final test loss"]
        lines += [
            "Final hold-out loss, median [min, max] over seeds:",
            "",
            fmt.md_table(header, table),
            "",
        ]
    sources = [f"- {b.optimizer}: `{b.source}`" for b in datasets.DEEPOBS_BASELINES]
    lines += [
        "DeepOBS's numbers are its baseline runs' logged test losses at epoch 0 and after "
        "epoch 100 (seed 42, its tuned learning rate), from:",
        "",
        *sources,
        "",
    ]
    return "\n".join(lines)


def sections(runs: pd.DataFrame, epochs: pd.DataFrame, command: str) -> list[Section]:
    """The DeepOBS section as a report section (none when no run is on quadratic_deep)."""
    text = section(runs, epochs, command)
    if text is None:
        return []
    heading, _, body = text.partition("\n")
    return [Section(heading.removeprefix("## ").strip(), [Raw(body.strip())])]
