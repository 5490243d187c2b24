"""The run report: turn results into the output folder (CSVs, env.json, plots, report.md and
report.html). Every number is computed here or in `bench.analysis` from the tidy tables, and
both reports render one `Doc`, so they show the same strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import fmt
from bench.analysis import cost, stats, targets
from bench.analysis import summary as summaries
from bench.analysis.stats import median_ci
from bench.analysis.tables import parity_by_method, tables, time_ratio
from bench.analysis.timing import ELAPSED_CAPTION, parallel_note, provenance_note, time_note
from bench.output import deepobs, html, interactive, plots, trajectories
from bench.output.doc import (
    Doc,
    Figure,
    Section,
    Table,
    from_markdown,
    markdown,
    methods_section,
)
from bench.output.files import write
from bench.output.palette import order
from bench.output.plots import BAND_MIN_RUN
from bench.run.runner import RunResult
from bench.schema import Status


def interval_text(runs: pd.DataFrame) -> str:
    """How a `median [lo, hi]` cell of the details is made, for these runs' seed counts."""
    n = int(runs.groupby(["problem", "method", "impl", "device"])["seed"].nunique().max())
    if n <= stats.RANGE_UP_TO:
        return "median [seeds' range] over seeds"
    return (
        "median [95% interval] over seeds (bootstrap percentile interval of the median; with "
        f"{stats.RANGE_UP_TO} or fewer seeds it is the seeds' range)"
    )


# Figures other modules may write into the output folder before the report; shown if present.
OPTIONAL_FIGURES = {
    "trajectories.png": "Paths of the optimizers on the 2-D test functions (from the same start).",
}


def metric_table(
    runs: pd.DataFrame,
    column: str,
    *,
    by_impl: bool = False,
    time: bool = False,
    inf_word: str | None = None,
) -> Table:
    """Methods (x impls) down, problems across; cells median [lo, hi] over seeds (see
    `interval_text`). A diverged run's final loss counts as inf; other columns (accuracy, times)
    keep their values."""
    problems = list(dict.fromkeys(runs["problem"]))
    keys = ["method", "impl"] if by_impl else ["method"]
    groups = runs.groupby(["problem", *keys], sort=False)
    rows = []
    present = runs[keys].drop_duplicates()
    present = present.assign(_o=present["method"].map(order(present["method"]).index))
    for key in present.sort_values("_o", kind="stable")[keys].itertuples(index=False):
        cells = [f"`{key[0]}`" + (f" ({key[1]})" if by_impl else "")]
        for problem in problems:
            try:
                g = groups.get_group((problem, *key))
            except KeyError:
                cells.append("")
                continue
            values = g[column].astype(float)
            if not time and column.startswith("final_") and column.endswith("_loss"):
                values = values.where(~g["status"].isin(Status.STOPPED), np.inf)
            cell = median_ci(values.to_numpy()).text(time)
            if inf_word:
                cell = cell.replace("inf", inf_word).replace(fmt.MISSING, inf_word)
            counts = g["status"].value_counts()
            notes = [f"{int(counts[s])} {s.replace('timeout', 'timed out')}"
                     for s in Status.STOPPED if counts.get(s, 0)]  # fmt: skip
            cells.append(cell + (f" ({', '.join(notes)})" if notes else ""))
        rows.append(cells)
    return Table(["method", *problems], rows)


def problems_table(runs: pd.DataFrame, optimum: pd.DataFrame) -> Table:
    """One row per problem: what ran on it (methods x implementations x devices x seeds =
    runs), its data, and its L* (median [min, max] over seeds where the splits differ)."""
    kind = optimum.set_index("problem")["optimum_kind"]
    rows = []
    for problem, g in runs.groupby("problem", sort=False):
        by_lr: dict[float, list[str]] = {}
        for m, lr in g.groupby("method", sort=False)["lr"].first().items():
            by_lr.setdefault(lr, []).append(m)
        common = max(by_lr, key=lambda lr: len(by_lr[lr]))
        lrs = fmt.num(common, 3) + "".join(
            f"; {', '.join(ms)}: {fmt.num(lr, 3)}" for lr, ms in by_lr.items() if lr != common
        )
        stars = g.groupby("seed")["loss_star"].first().astype(float)
        if np.isfinite(stars).all() and len(stars):
            star = fmt.interval(stars.median(), stars.min(), stars.max(), len(stars))
            star += f" ({kind.get(problem, '')})"
        else:
            star = f"{fmt.MISSING} ({kind.get(problem, targets.NONE_KNOWN)})"
        rows.append(
            [
                problem,
                str(len(g)),
                str(g["method"].nunique()),
                str(g["seed"].nunique()),
                str(int(g["n_train"].iloc[0])),
                str(int(g["n_holdout"].iloc[0])),
                str(int(g["epochs"].max())),
                ", ".join(str(b) for b in sorted(set(g["batch_size"]))),
                star,
                lrs,
            ]
        )
    header = ["problem", "runs", "methods", "seeds", "train rows", "hold-out rows", "epochs",
              "batch sizes", "L* (what it is)", "lr"]  # fmt: skip
    return Table(header, rows)


def ran_text(runs: pd.DataFrame) -> str:
    """How many runs, counted as run (each problem's methods x implementations x devices x
    seeds, summed in the problems table), never a product of totals."""
    devices = list(dict.fromkeys(runs["device"]))
    impls = list(dict.fromkeys(runs["impl"]))
    plugin = " (a plug-in runs once, as itself)" if "plugin" in impls else ""
    return (
        f"{len(runs)} runs over {runs['problem'].nunique()} problems (per problem below: its "
        f"methods x implementations x devices x seeds); implementations {', '.join(impls)}"
        f"{plugin}; device{'s' if len(devices) > 1 else ''} {', '.join(devices)}; dtype "
        f"{', '.join(dict.fromkeys(runs['dtype']))}."
    )


def parity_blocks(epochs: pd.DataFrame, runs: pd.DataFrame, parity: pd.DataFrame | None) -> list:
    blocks: list = []
    by_method = parity_by_method(epochs)
    if not by_method.empty:
        same = int(by_method["identical_runs"].sum()) == int(by_method["pairs"].sum())
        blocks.append(
            "Every epoch of every scratch run against its torch.optim twin (same start and "
            "batches). "
            + (
                "All pairs are identical, so the plots draw one line for both."
                if same
                else "The plots draw torch.optim dotted where it differs from scratch."
            )
        )
        rows = [
            [
                f"`{r.method}`",
                str(r.pairs),
                str(r.identical_runs),
                fmt.num(r.max_abs, 3),
                fmt.num(r.max_rel, 3),
            ]
            for r in by_method.itertuples()
        ]
        header = ["method", "paired runs", "identical at every epoch", "max |Δ loss|", "max rel Δ"]
        blocks.append(Table(header, rows))
        ratio = time_ratio(runs)
        if not ratio.empty:
            r = ratio["ratio"]
            blocks.append(
                f"Epoch time, scratch / torch.optim: median {r.median():.3f} over {len(r)} "
                f"paired runs (middle half {r.quantile(0.25):.3f}–{r.quantile(0.75):.3f})."
            )
    if parity is not None and not parity.empty:
        g = parity.groupby("method", sort=False).agg(
            cases=("bitwise", "size"),
            bitwise=("bitwise", "sum"),
            max_abs=("max_abs_diff", "max"),
            max_rel=("max_rel_diff", "max"),
            steps=("steps", "min"),
        )
        blocks.append(
            "Step by step (`parity.csv`: every method x hyperparameter case x dtype; parameters "
            "and optimizer state compared after every step):"
        )
        rows = [
            [
                f"`{m}`",
                str(int(r.cases)),
                str(int(r.bitwise)),
                str(int(r.steps)),
                fmt.num(r.max_abs, 3),
                fmt.num(r.max_rel, 3),
            ]
            for m, r in g.iterrows()
        ]
        header = ["method", "cases", "bitwise equal", "steps", "max |Δ|", "max rel Δ"]
        blocks.append(Table(header, rows))
    return blocks or ["No scratch/torch pairs in this run."]


def env_table(env: dict[str, Any]) -> Table:
    cpu = (
        f"{env['cpu']} ({env['cpu_count']} cores, {env['torch_threads']} threads, "
        f"{env['torch_cpu_capability']})"
    )
    git = (env["git_commit"] or "unknown")[:12] + (" (uncommitted)" if env["git_dirty"] else "")
    return Table(
        ["", ""],
        [
            ["CPU", cpu],
            ["GPU", env["gpu"] or "none"],
            ["python / torch / numpy", f"{env['python']} / {env['torch']} / {env['numpy']}"],
            ["git", git],
            [
                "execution",
                f"{env.get('executor', 'serial')}: {env.get('workers', 1)} worker(s) x "
                f"{env.get('runs_per_worker', 1)} run(s) at a time, "
                f"{env.get('torch_threads')} torch thread(s) per run",
            ],
        ],
    )


def _time_caption(epochs: pd.DataFrame, env: dict[str, Any], measured: bool = False) -> str:
    if measured:
        return (
            "x: median over seeds of the training time, epochs x the run's cost per epoch as "
            "measured apart from the runs (interleaved rounds, CPU time of the training "
            "steps: bench.run.cost); log axes. The runs' own epoch times are in epochs.csv."
        )
    text = (
        "x: median over seeds of the cumulative training time (timed steps only; evaluation "
        f"and warm-up excluded; {ELAPSED_CAPTION}); log axes."
    )
    note = time_note(epochs, env)
    return f"{text} {note}" if note else text


def _total_time(runs: pd.DataFrame, epochs: pd.DataFrame, env: dict[str, Any]) -> str:
    """The runs' own training time: each epoch's timed steps, as the runs went."""
    timed = runs["total_time_s"].astype(float)
    if not timed.notna().any():
        return "The runs' own epochs were not timed (the vectorised engine computes runs together)."
    return (
        f"Total training time {fmt.seconds(timed.sum())} (the runs' own timed steps; "
        f"evaluation and warm-up excluded). {time_note(epochs, env)}".strip()
    )


def build_doc(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    env: dict[str, Any],
    figures: Sequence[Figure],
    parity: pd.DataFrame | None,
    title: str = "optbench report",
    performance: str | None = None,
    extra: Sequence[Section] = (),
) -> Doc:
    ttt = targets.time_to_target(runs, epochs)
    runs = runs.merge(ttt, on="run_id", how="left")
    shared = [f"Timings: {n}." for n in (parallel_note(env), provenance_note(runs)) if n]
    summary = summaries.build(runs, epochs, extra_anomalies=shared)
    optimum = targets.reference_optimum(runs, epochs)
    devices = list(dict.fromkeys(runs["device"]))
    hashes = runs.groupby(["problem", "seed"])["init_hash"].nunique()
    ran = Section(
        "What was run",
        [
            [
                ran_text(runs),
                _total_time(runs, epochs, env),
                "Same initial weights: `init_hash` has "
                f"{'one value' if (hashes == 1).all() else 'SEVERAL values (bug!)'} per "
                "(problem, seed) across methods, implementations and devices.",
                "Loss: the task's loss on the whole training set and on the hold-out rows after "
                "each epoch. L*: the problem's optimum, by task (last column but one; median "
                "[min, max] over seeds where each seed has its own split); the targets are "
                f"relative gaps (L − L*) / (L0 − L*) <= {targets.TOL:g} and "
                f"{targets.STRICT_TOL:g}, L0 the loss at the shared initial weights.",
            ],
            problems_table(runs, optimum),
            "Environment:",
            env_table(env),
        ],
    )
    sections = [ran]
    for device in devices:
        on = runs[runs["device"] == device]
        main = summaries.primary(on)
        shown = ", ".join(dict.fromkeys(main["impl"]))
        blocks: list = [
            f"Final training loss, {interval_text(main)}; implementation {shown}:",
            metric_table(main, "final_train_loss"),
        ]
        hold = main[np.isfinite(main["final_holdout_loss"].astype(float))]
        if not hold.empty:
            blocks += ["Final hold-out loss:", metric_table(hold, "final_holdout_loss")]
            gap = hold.assign(gap=hold["final_holdout_loss"] - hold["final_train_loss"])
            blocks += [
                "Generalisation gap, final hold-out − training loss:",
                metric_table(gap, "gap"),
            ]
        for col, what in (
            ("final_train_accuracy", "training"),
            ("final_holdout_accuracy", "hold-out"),
        ):
            if col not in main:
                continue
            has = main.groupby("problem")[col].apply(lambda v: v.notna().any())
            with_accuracy = main[main["problem"].map(has)]  # only tasks that have accuracy
            if not with_accuracy.empty:
                blocks += [f"Final {what} accuracy:", metric_table(with_accuracy, col)]
        blocks += [
            f"Epochs to the target gap {targets.TOL:g} (see the summary; `never`: not reached "
            "in the epochs given):",
            metric_table(main, "epochs_to_target", inf_word="never"),
            f"Epochs to the strict target gap {targets.STRICT_TOL:g}:",
            metric_table(main, "epochs_to_strict", inf_word="never"),
            f"Training seconds to the target gap {targets.TOL:g}:",
            metric_table(main, "seconds_to_target", time=True, inf_word="never"),
        ]
        sections.append(Section(f"Final loss and time to target ({device})", blocks))
        if cost.measured(on):
            text = (
                "Each run's cost per epoch: the median over the rounds of the cost measurement "
                "(every run of a problem timed one epoch per round, in a shuffled order, CPU "
                f"time of the training steps), then {interval_text(on)}. Noise floor: "
                + "; ".join(
                    f"{p} x{g['cost_floor'].iloc[0]:.3g}"
                    for p, g in on.groupby("problem", sort=False)
                    if g["cost_floor"].notna().any()
                )
                + " (identical workloads drift that far apart on this machine: no difference "
                "inside it is one)."
            )
            heading = f"Cost per epoch ({device})"
        else:
            text = (
                f"Each run's median epoch time, then {interval_text(on)}. "
                f"{time_note(epochs[epochs['device'] == device], env)}".strip()
            )
            heading = f"Wall time per epoch ({device})"
        sections.append(
            Section(
                heading, [text, metric_table(on, cost.cost_column(on), by_impl=True, time=True)]
            )
        )
    sections.append(Section("Plots", list(figures)))
    sections += extra  # task-specific sections (DeepOBS's quadratic)
    sections.append(methods_section(set(runs["method"])))
    sections.append(
        Section("Parity: from scratch vs torch.optim", parity_blocks(epochs, runs, parity))
    )
    if performance:
        body = performance.split("\n", 1)[1] if performance.startswith("## ") else performance
        sections.append(Section("Performance", from_markdown(body.strip())))
    sections.append(
        Section(
            "Files",
            [
                [
                    "`epochs.csv`: one row per run and epoch (epoch 0 = initial weights).",
                    "`runs.csv`: one row per run: final losses, epoch-time median and IQR, "
                    "status, loss*.",
                    "`env.json`: versions, CPU/GPU, threads, git commit, command line.",
                    *(
                        ["`parity.csv`: step-by-step scratch vs torch.optim parity."]
                        if parity is not None
                        else []
                    ),
                    "`report.html`: this report with interactive plots, one self-contained file.",
                ]
            ],
        )
    )
    subtitle = f"Generated {env['timestamp_utc']} by `{env['command']}`."
    return Doc(title, subtitle, summary, sections)


def write_all(
    out: Path,
    results: Sequence[RunResult],
    env: dict[str, Any],
    parity: pd.DataFrame | None = None,
    title: str = "optbench report",
    performance: str | None = None,
    costs: pd.DataFrame | None = None,
) -> list[Path]:
    """Write every output file into `out` (a staging folder) and return their paths."""
    epochs, runs = tables(results)
    written = []
    if costs is not None and not costs.empty:
        epochs, runs = cost.with_costs(epochs, runs, costs)
        written.append(write(costs.drop(columns=["key"], errors="ignore"), out / "costs.csv"))
    written += [write(epochs, out / "epochs.csv"), write(runs, out / "runs.csv")]
    if parity is not None:
        written.append(write(parity, out / "parity.csv"))
    written.append(write(env, out / "env.json"))
    written.append(
        plots.curves(
            epochs, out / "loss_vs_epoch.png", title="Training loss per epoch (median over seeds)"
        )
    )
    written.append(
        plots.curves(
            epochs,
            out / "loss_vs_time.png",
            x="elapsed_s",
            xlabel="training time (s)",
            title="Training loss against cumulative training time (median over seeds)",
        )
    )
    measured = costs is not None and not costs.empty
    if measured:  # the cost measurement's rounds: what the tables and the summary use
        rounds = costs[~costs["copy"].astype(bool)]
        what = "Cost per epoch, measured in interleaved rounds (CPU time of the training steps)"
        written.append(plots.epoch_times(rounds, out / "epoch_time.png", "cost_s", what,
                                         "cost per epoch (ms)"))  # fmt: skip
    else:
        written.append(plots.epoch_times(epochs, out / "epoch_time.png"))
    curves_caption = (
        f"Median over seeds; shaded: the seeds' range, over stretches of {BAND_MIN_RUN} or more "
        "epochs where it is narrower than 10x; x: diverged (last finite value); ^: off the "
        "scale (above 3x the initial loss), drawn on the top edge; a loss of exactly 0 is drawn "
        "on the bottom edge of the log axis. Epoch 0 is the shared initial weights. "
        "From-scratch and torch.optim are one line where identical; where they differ the PNG "
        "draws torch.optim dotted."
    )
    figures = [
        Figure(
            "loss_vs_epoch.png",
            "Training loss per epoch. " + curves_caption,
            interactive.curves(epochs, ylabel="training loss"),
        ),
        Figure(
            "loss_vs_time.png",
            "Training loss against training time. " + _time_caption(epochs, env, measured),
        ),
        Figure(
            "epoch_time.png",
            "Cost per epoch of every run, per method and implementation: one epoch per round of "
            "the cost measurement, every run of a problem in a shuffled order each round (CPU "
            "time of the training steps)."
            if measured
            else "Wall time per epoch (training steps only), per method and implementation.",
        ),
    ]
    if trajectories.plot(epochs, out / "trajectories.png") is not None:
        written.append(out / "trajectories.png")
    figures += [Figure(f, cap) for f, cap in OPTIONAL_FIGURES.items() if (out / f).exists()]
    extra = deepobs.sections(runs, epochs, env["command"])
    doc = build_doc(runs, epochs, env, figures, parity, title, performance, extra)
    written.append(write(markdown(doc), out / "report.md"))
    written.append(write(html.render(doc, out), out / "report.html"))
    return written
