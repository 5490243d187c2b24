"""The run report: turn results into the output folder (CSVs, env.json, plots, report.md).

Every number in the report is computed here from the tidy tables; nothing is typed in by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import fmt
from bench.analysis.stats import median_ci
from bench.analysis.tables import median_over_seeds, parity_by_method, tables, time_ratio
from bench.output import deepobs, plots, trajectories
from bench.output.files import write
from bench.run.runner import RunResult
from bench.schema import Status

INTERVAL = (
    "median [95% interval] over seeds (bootstrap percentile interval of the median; for 5 or "
    "fewer seeds it is the seeds' [min, max])"
)


# ----------------------------------------------------------------------------------------------
# Findings: sentences computed from the tables, each with the numbers behind it


def findings(runs: pd.DataFrame, epochs: pd.DataFrame) -> list[str]:
    out: list[str] = []
    own = runs["impl"].isin(("scratch", "plugin"))  # ours, and plug-ins (their only impl)
    scratch = runs[own & (runs["device"] == runs["device"].iloc[0])]
    finals = median_over_seeds(scratch, "final_train_loss")
    times = median_over_seeds(scratch, "median_epoch_time_s")
    for label, g in finals.groupby("problem", sort=False):
        g = g[np.isfinite(g["final_train_loss"])]
        if g.empty:
            continue
        best = g.loc[g["final_train_loss"].idxmin()]
        worst = g.loc[g["final_train_loss"].idxmax()]
        t = times[times["problem"] == label].set_index("method")
        fastest = t["median_epoch_time_s"].idxmin()
        out.append(
            f"**{label}**: lowest final training loss with `{best['method']}` "
            f"({fmt.num(best['final_train_loss'])}, median over seeds), highest with "
            f"`{worst['method']}` ({fmt.num(worst['final_train_loss'])}); cheapest epoch: "
            f"`{fastest}` ({fmt.seconds(t.loc[fastest, 'median_epoch_time_s'])})."
        )
        out.extend(_batch_regime_findings(label, g.set_index("method"), t))
    diverged = runs[runs["status"] == Status.DIVERGED]
    if not diverged.empty:
        parts = [
            f"`{m}` on {', '.join(sorted(set(g['problem'])))} ({len(g)} runs)"
            for m, g in diverged.groupby("method", sort=False)
        ]
        out.append(f"Diverged (non-finite loss, rows kept): {'; '.join(parts)}.")
    else:
        out.append(f"No run diverged ({len(runs)} runs).")
    parity = parity_by_method(epochs)
    if not parity.empty:
        total, same = int(parity["pairs"].sum()), int(parity["identical_runs"].sum())
        worst = parity.loc[parity["max_rel"].idxmax()]
        text = (
            f"Scratch vs torch.optim: {same} of {total} paired runs have identical losses at "
            "every epoch"
        )
        if worst["max_rel"] > 0:
            text += (
                f"; the largest relative difference anywhere is {fmt.num(worst['max_rel'], 3)} "
                f"(`{worst['method']}`)"
            )
        out.append(text + ".")
    ratio = time_ratio(runs)
    if not ratio.empty:
        r = ratio["ratio"]
        out.append(
            f"Per-epoch time, scratch / torch.optim: median {r.median():.3f} over {len(r)} "
            f"paired runs (middle half {r.quantile(0.25):.3f}–{r.quantile(0.75):.3f})."
        )
    hold = scratch[np.isfinite(scratch["final_holdout_loss"])]
    if not hold.empty:
        gaps = median_over_seeds(hold.assign(gap=hold["final_holdout_loss"]), "gap")
        for label, g in gaps.groupby("problem", sort=False):
            if not np.isfinite(g["gap"]).any():
                continue
            best = g.loc[g["gap"].idxmin()]
            out.append(
                f"Hold-out, {label}: lowest final hold-out loss "
                f"with `{best['method']}` ({fmt.num(best['gap'])})."
            )
    return out


def _batch_regime_findings(label: str, loss: pd.DataFrame, t: pd.DataFrame) -> list[str]:
    """The notebooks' question: does SGD beat full-batch GD per epoch, and at what cost?"""
    if not {"gd", "sgd"} <= set(loss.index) or not {"gd", "sgd"} <= set(t.index):
        return []
    gd, sgd = loss.loc["gd", "final_train_loss"], loss.loc["sgd", "final_train_loss"]
    cost = t.loc["sgd", "median_epoch_time_s"] / t.loc["gd", "median_epoch_time_s"]
    text = (
        f"{label}: SGD (batch 1) ends {'lower' if sgd < gd else 'higher'} than full-batch GD "
        f"({fmt.num(sgd)} vs {fmt.num(gd)}) and an SGD epoch costs {cost:.1f}x a GD epoch"
    )
    if "minibatch" in loss.index and "minibatch" in t.index:
        mb = loss.loc["minibatch", "final_train_loss"]
        mcost = t.loc["minibatch", "median_epoch_time_s"] / t.loc["gd", "median_epoch_time_s"]
        text += f"; minibatch ends at {fmt.num(mb)} for {mcost:.1f}x"
    return [text + "."]


# ----------------------------------------------------------------------------------------------
# report.md


def _interval(values: pd.Series, time: bool = False) -> str:
    """median [95% interval] over seeds, in seconds units when `time`."""
    return median_ci(values.astype(float).to_numpy()).text(time)


def _metric_table(
    runs: pd.DataFrame, column: str, *, by_impl: bool = False, time: bool = False
) -> str:
    """Methods (x impls) down, problems across; cells median [95% interval] over seeds."""
    problems = list(dict.fromkeys(runs["problem"]))
    keys = ["method", "impl"] if by_impl else ["method"]
    groups = runs.groupby(["problem", *keys], sort=False)
    rows = []
    for key in runs[keys].drop_duplicates().itertuples(index=False):
        cells = [f"`{key[0]}`" + (f" ({key[1]})" if by_impl else "")]
        for problem in problems:
            try:
                g = groups.get_group((problem, *key))
            except KeyError:
                cells.append("")
                continue
            values = (
                g[column].where(g["status"] != Status.DIVERGED, np.inf) if not time else g[column]
            )
            cell = _interval(values, time)
            diverged = int((g["status"] == Status.DIVERGED).sum())
            cells.append(cell + (f" ({diverged} diverged)" if diverged else ""))
        rows.append(cells)
    return fmt.md_table(["method", *problems], rows)


def _problems_table(runs: pd.DataFrame) -> str:
    rows = []
    for problem, g in runs.groupby("problem", sort=False):
        by_lr: dict[float, list[str]] = {}
        for m, lr in g.groupby("method", sort=False)["lr"].first().items():
            by_lr.setdefault(lr, []).append(m)
        common = max(by_lr, key=lambda lr: len(by_lr[lr]))
        lrs = fmt.num(common, 3) + "".join(
            f"; {', '.join(ms)}: {fmt.num(lr, 3)}" for lr, ms in by_lr.items() if lr != common
        )
        rows.append(
            [
                problem,
                int(g["n_train"].iloc[0]),
                int(g["n_holdout"].iloc[0]),
                int(g["epochs"].max()),
                ", ".join(str(b) for b in sorted(set(g["batch_size"]))),
                fmt.num(g["loss_star"].iloc[0]),
                lrs,
            ]
        )
    return fmt.md_table(
        ["problem", "train rows", "hold-out rows", "epochs", "batch sizes", "loss* (LS)", "lr"],
        rows,
    )


def _parity_tables(epochs: pd.DataFrame, parity: pd.DataFrame | None) -> str:
    parts = []
    by_method = parity_by_method(epochs)
    if not by_method.empty:
        parts.append(
            "Within this run (every epoch of every scratch run against its torch.optim twin, "
            "same start and batches):\n\n"
            + fmt.md_table(
                ["method", "paired runs", "identical at every epoch", "max |Δ loss|", "max rel Δ"],
                [
                    [
                        f"`{r.method}`",
                        r.pairs,
                        r.identical_runs,
                        fmt.num(r.max_abs, 3),
                        fmt.num(r.max_rel, 3),
                    ]
                    for r in by_method.itertuples()
                ],
            )
        )
    if parity is not None and not parity.empty:
        g = parity.groupby("method", sort=False).agg(
            cases=("bitwise", "size"),
            bitwise=("bitwise", "sum"),
            max_abs=("max_abs_diff", "max"),
            max_rel=("max_rel_diff", "max"),
            steps=("steps", "min"),
        )
        parts.append(
            "Step-by-step parity (`parity.csv`: every method x hyperparameter case x dtype, "
            "identical parameters and gradients, parameters and optimizer state compared "
            "after every step):\n\n"
            + fmt.md_table(
                ["method", "cases", "bitwise equal", "steps", "max |Δ|", "max rel Δ"],
                [
                    [
                        f"`{m}`",
                        int(r.cases),
                        int(r.bitwise),
                        int(r.steps),
                        fmt.num(r.max_abs, 3),
                        fmt.num(r.max_rel, 3),
                    ]
                    for m, r in g.iterrows()
                ],
            )
        )
    return "\n\n".join(parts) if parts else "No scratch/torch pairs in this run."


def render(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    env: dict[str, Any],
    figures: Sequence[tuple[str, str]],
    parity: pd.DataFrame | None,
    title: str = "optbench report",
    performance: str | None = None,
    sections: Sequence[str] = (),
) -> str:
    devices = list(dict.fromkeys(runs["device"]))
    seeds = sorted(set(runs["seed"]))
    hashes = runs.groupby(["problem", "seed"])["init_hash"].nunique()
    lines = [
        f"# {title}",
        "",
        f"Generated {env['timestamp_utc']} by `{env['command']}`.",
        "",
        "## What was run",
        "",
        f"- {len(runs)} runs: {runs['problem'].nunique()} problems x "
        f"{runs['method'].nunique()} methods x {runs['impl'].nunique()} implementations "
        f"({', '.join(dict.fromkeys(runs['impl']))}) x {len(devices)} device(s) "
        f"({', '.join(devices)}) x {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
        f"dtype {', '.join(dict.fromkeys(runs['dtype']))}.",
        f"- Total training time {fmt.seconds(runs['total_time_s'].sum())} "
        f"(timed steps only; evaluation and warm-up excluded).",
        f"- Same initial weights: every run of a (problem, seed) starts from the same weights; "
        f"`init_hash` has {'one value' if (hashes == 1).all() else 'SEVERAL values (bug!)'} "
        f"per (problem, seed) across all methods, implementations and devices.",
        "- Loss: mean squared error over all targets (the notebooks' `mse`); training loss on "
        "the whole training set, hold-out loss on the held-out rows, both after each epoch. "
        "loss* is the least-squares optimum of the linear model on the training rows.",
        "",
        _problems_table(runs),
        "",
        "## Environment",
        "",
        fmt.md_table(
            ["", ""],
            [
                [
                    "CPU",
                    f"{env['cpu']} ({env['cpu_count']} cores, {env['torch_threads']} threads, "
                    f"{env['torch_cpu_capability']})",
                ],
                ["GPU", env["gpu"] or "none"],
                ["python / torch / numpy", f"{env['python']} / {env['torch']} / {env['numpy']}"],
                [
                    "git",
                    f"{(env['git_commit'] or 'unknown')[:12]}"
                    f"{' (uncommitted changes)' if env['git_dirty'] else ''}",
                ],
            ],
        ),
        "",
    ]
    for device in devices:
        on = runs[runs["device"] == device]
        own = on["impl"].isin(("scratch", "plugin"))  # plug-ins have no scratch twin
        scratch = on[own] if own.any() else on
        with_holdout = scratch[np.isfinite(scratch["final_holdout_loss"].astype(float))]
        lines += [
            f"## Final loss ({device})",
            "",
            f"Final training loss, {INTERVAL}; from-scratch implementation (torch.optim's is "
            "compared in the parity section):",
            "",
            _metric_table(scratch, "final_train_loss"),
            "",
        ]
        if not with_holdout.empty:
            lines += [
                "Final hold-out loss, where the problem has a hold-out split:",
                "",
                _metric_table(with_holdout, "final_holdout_loss"),
                "",
            ]
        lines += [
            f"## Wall time per epoch ({device})",
            "",
            f"Each run's median epoch time, then {INTERVAL}:",
            "",
            _metric_table(on, "median_epoch_time_s", by_impl=True, time=True),
            "",
        ]
    lines += ["## Plots", ""]
    for caption, name in figures:
        lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    for section in sections:  # task-specific sections (DeepOBS's quadratic)
        lines += [section, ""]
    lines += [
        "## Parity: from scratch vs torch.optim",
        "",
        _parity_tables(epochs, parity),
        "",
        *([performance, ""] if performance else []),
        "## Findings",
        "",
        *[f"- {f}" for f in findings(runs, epochs)],
        "",
        "## Files",
        "",
        "- `epochs.csv`: one row per run and epoch (epoch 0 = initial weights).",
        "- `runs.csv`: one row per run: final losses, epoch-time median and IQR, status.",
        "- `env.json`: versions, CPU/GPU, threads, git commit, command line.",
        *(
            ["- `parity.csv`: step-by-step scratch vs torch.optim parity."]
            if parity is not None
            else []
        ),
        "",
    ]
    return "\n".join(lines)


def write_all(
    out: Path,
    results: Sequence[RunResult],
    env: dict[str, Any],
    parity: pd.DataFrame | None = None,
    title: str = "optbench report",
    performance: str | None = None,
) -> list[Path]:
    """Write every output file into `out` (a staging folder) and return their paths."""
    epochs, runs = tables(results)
    written = [write(epochs, out / "epochs.csv"), write(runs, out / "runs.csv")]
    if parity is not None:
        written.append(write(parity, out / "parity.csv"))
    written.append(write(env, out / "env.json"))
    figures = [
        ("Training loss per epoch", "loss_vs_epoch.png"),
        ("Training loss against wall time", "loss_vs_time.png"),
        ("Wall time per epoch", "epoch_time.png"),
        ("Final loss: scratch vs torch.optim", "final_loss_scratch_vs_torch.png"),
    ]
    written.append(
        plots.curves(epochs, out / figures[0][1], title="Training loss (median over seeds)")
    )
    written.append(
        plots.curves(
            epochs[epochs["epoch"] > 0],
            out / figures[1][1],
            x="elapsed_s",
            xlabel="training wall time (s)",
            title="Training loss against cumulative training time",
        )
    )
    written.append(plots.epoch_times(epochs, out / figures[2][1]))
    if (runs["impl"] == "torch").any() and (runs["impl"] == "scratch").any():
        written.append(plots.scratch_vs_torch(runs, out / figures[3][1]))
    else:
        figures.pop()
    if trajectories.plot(epochs, out / "trajectories.png") is not None:
        written.append(out / "trajectories.png")
        figures.append(("Paths on the 2-D test functions", "trajectories.png"))
    quadratic = deepobs.section(runs, epochs, env["command"])
    sections = [quadratic] if quadratic else []
    report = render(runs, epochs, env, figures, parity, title, performance, sections)
    written.append(write(report, out / "report.md"))
    return written
