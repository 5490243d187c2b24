"""The sweep's output folder: sweep.csv, summary tables, plots, report.md and report.html,
all from tables; both reports render one `Doc`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import fmt
from bench.analysis import claims, stats, targets
from bench.analysis import summary as summaries
from bench.analysis.timing import parallel_note, time_note
from bench.output import deepobs, html, interactive, plots, sweep_plots
from bench.output.doc import Doc, Figure, Section, Table, markdown, methods_section
from bench.output.files import write
from bench.schema import Status
from bench.sweep import SweepConfig, SweepResult

SWEEP_COLUMNS = [
    "phase",
    "label",
    "problem",
    "dataset",
    "model",
    "method",
    "impl",
    "hparams",
    "lr",
    "seed",
    "batch_size",
    "epochs",
    "final_train_loss",
    "final_holdout_loss",
    "status",
    "diverged_epoch",
    "loss_star",
    "target_loss",
    "epochs_to_target",
    "seconds_to_target",
    "median_epoch_time_s",
    "run_id",
]
SUMMARY_METRICS = {
    "final_train_loss": "final training loss",
    "final_holdout_loss": "final hold-out loss",
    "epochs_to_target": "epochs to target",
    "seconds_to_target": "seconds to target",
    "median_epoch_time_s": "epoch time",
}


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per phase x problem x method: median and 95% interval of every summary metric."""
    rows = []
    keys = ["phase", "problem", "method", "hparams"]
    for key, g in runs.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["seeds"] = g["seed"].nunique()
        row["diverged"] = int((g["status"] == Status.DIVERGED).sum())
        for col in SUMMARY_METRICS:
            values = g[col].astype(float)
            if col.startswith("final_"):
                values = values.where(g["status"] != Status.DIVERGED, math.inf)
            est = stats.median_ci(values.to_numpy())
            row[col], row[f"{col}_lo"], row[f"{col}_hi"] = est.median, est.lo, est.hi
        gap = (g["final_holdout_loss"] - g["final_train_loss"]).astype(float)
        est = stats.median_ci(gap.to_numpy())
        row["generalization_gap"], row["generalization_gap_lo"] = est.median, est.lo
        row["generalization_gap_hi"] = est.hi
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(row: Any, col: str, time: bool = False) -> str:
    med, lo, hi = getattr(row, col), getattr(row, f"{col}_lo"), getattr(row, f"{col}_hi")
    f = fmt.seconds if time else fmt.num
    if not math.isfinite(med) and math.isinf(med):
        return "never" if "target" in col else "diverged"
    if lo == hi:
        return f(med)
    hi_text = "never" if ("target" in col and math.isinf(hi)) else f(hi)
    return f"{f(med)} [{f(lo)}, {hi_text}]"


def _hp_text(hparams: str | None) -> str:
    if hparams is None or (isinstance(hparams, float) and math.isnan(hparams)):
        return "– (every point diverged)"
    hp = json.loads(hparams)
    return ", ".join(f"{k}={fmt.num(v, 3) if isinstance(v, float) else v}" for k, v in hp.items())


def _tuned_tables(summary: pd.DataFrame) -> list:
    parts: list = []
    tuned = summary[summary["phase"] == "tuned"]
    header = [
        "method",
        "final train loss",
        "final hold-out loss",
        "epochs to target",
        "seconds to target",
        "epoch time",
    ]
    for problem, g in tuned.groupby("problem", sort=False):
        rows = [
            [
                f"`{r.method}`",
                _cell(r, "final_train_loss"),
                _cell(r, "final_holdout_loss"),
                _cell(r, "epochs_to_target"),
                _cell(r, "seconds_to_target", time=True),
                _cell(r, "median_epoch_time_s", time=True),
            ]
            for r in g.itertuples()
        ]
        parts += [f"**{problem}**", Table(header, rows)]
    return parts


def _edge_text(r) -> str:
    edge = getattr(r, "at_edge", "") or ""
    if not isinstance(edge, str) or not edge:
        return "no"
    return f"**{edge}**"


def _selection_table(selection: pd.DataFrame) -> Table:
    rows = [
        [
            r.problem,
            f"`{r.method}`",
            _hp_text(r.hparams),
            fmt.num(r.score),
            f"{r.points} ({r.diverged_points} diverged)",
            _edge_text(r),
        ]
        for r in selection.itertuples()
    ]
    header = ["problem", "method", "selected", "hold-out loss", "grid points", "at grid edge"]
    return Table(header, rows)


def edge_anomalies(selection: pd.DataFrame) -> list[str]:
    if "at_edge" not in selection:
        return []
    flagged = selection[selection["at_edge"].fillna("").astype(str) != ""]
    if flagged.empty:
        return []
    parts = [
        f"{r.method} on {r.problem} ({_hp_text(r.hparams)}; {r.at_edge})"
        for r in flagged.itertuples()
    ]
    return [
        "Selected at the edge of the learning-rate grid after extending it: "
        + "; ".join(parts)
        + ". The best setting may lie beyond what was tried."
    ]


def _defaults_table(summary: pd.DataFrame) -> Table:
    tuned = summary[summary["phase"] == "tuned"].set_index(["problem", "method"])
    default = summary[summary["phase"] == "default"]
    rows = []
    for r in default.itertuples():
        key = (r.problem, r.method)
        t = next(tuned.loc[[key]].itertuples()) if key in tuned.index else None
        ratio = "–"
        if t is not None and math.isfinite(r.final_holdout_loss) and t.final_holdout_loss > 0:
            ratio = f"{r.final_holdout_loss / t.final_holdout_loss:.3g}x"
        elif t is not None and math.isinf(r.final_holdout_loss):
            ratio = "defaults diverge"
        rows.append(
            [
                r.problem,
                f"`{r.method}`",
                _hp_text(r.hparams),
                _cell(r, "final_holdout_loss"),
                _cell(t, "final_holdout_loss") if t else "–",
                ratio,
            ]
        )
    header = [
        "problem",
        "method",
        "library defaults",
        "hold-out, defaults",
        "hold-out, tuned",
        "defaults / tuned",
    ]
    return Table(header, rows)


def _gap_table(summary: pd.DataFrame) -> Table:
    tuned = summary[summary["phase"] == "tuned"]
    problems = list(dict.fromkeys(tuned["problem"]))
    rows = []
    for method in dict.fromkeys(tuned["method"]):
        cells = [f"`{method}`"]
        for problem in problems:
            sel = tuned[(tuned["problem"] == problem) & (tuned["method"] == method)]
            cells.append(_cell(next(sel.itertuples()), "generalization_gap") if len(sel) else "")
        rows.append(cells)
    return Table(["method", *problems], rows)


def findings(summary: pd.DataFrame, claim_list: Sequence[claims.Claim]) -> list[str]:
    out = [c.markdown() for c in claim_list]
    tuned = summary[summary["phase"] == "tuned"]
    default = summary[summary["phase"] == "default"]
    if not default.empty:
        merged = default.merge(tuned, on=["problem", "method"], suffixes=("_d", "_t"))
        worse = merged[merged["final_holdout_loss_d"] > merged["final_holdout_loss_t"]]
        diverged = merged[np.isinf(merged["final_holdout_loss_d"])]
        out.append(
            f"Library defaults vs tuned: the defaults end with a higher hold-out loss (median) "
            f"in {len(worse)} of {len(merged)} (problem, method) pairs"
            + (f", and diverge in {len(diverged)}" if len(diverged) else "")
            + "."
        )
    return out


def build_doc(
    sweep: SweepResult,
    config: SweepConfig,
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    optimum: pd.DataFrame,
    claim_list: Sequence[claims.Claim],
    env: dict[str, Any],
    figures: dict[str, Figure],
    task_sections: Sequence[Section] = (),
) -> Doc:
    n_grid = int((runs["phase"] == "grid").sum())
    factors = config.lr_factors()
    extra = []
    if config.momentum:
        extra.append(f"momentum in {list(config.momentum)} (methods with momentum)")
    if config.beta1:
        extra.append(f"beta1 in {list(config.beta1)} (Adam family)")
    target = (
        f"training loss <= {fmt.num(config.target)}"
        if config.target is not None
        else f"training loss within {config.rel_tol:.0%} of the optimum, loss <= loss* x "
        f"{1 + config.rel_tol:g}"
    )
    opt_rows = [[r.problem, fmt.num(r.optimum), r.optimum_kind] for r in optimum.itertuples()]
    tuned = runs[runs["phase"] == "tuned"]
    tuned_epochs = sweep.epochs[sweep.epochs["run_id"].isin(set(tuned["run_id"]))]
    short = summaries.build(
        tuned,
        tuned_epochs,
        rel_tol=config.rel_tol,
        target=config.target,
        extra_anomalies=[
            *edge_anomalies(sweep.selection),
            *([f"Timings: {parallel_note(env)}."] if parallel_note(env) else []),
        ],
    )
    protocol = [
        f"**Grid**: {len(factors)} learning rates per method, the suite's learning rate x "
        f"10^[{-config.decades:g}, {config.decades:g}] ({config.points_per_decade} per decade)"
        + (f", x {'; '.join(extra)}" if extra else "")
        + f"; every point from the same initial weights; seeds {list(config.select_seeds)}; "
        f"{n_grid} runs, from-scratch implementation. Where the selection sits at an end of "
        f"its grid, the grid is extended beyond it by up to {config.max_extensions} points.",
        "**Selection**: lowest final **hold-out** loss (median over the selection seeds); "
        "training loss is never used; a diverged point scores +inf and never wins.",
        f"**Reruns**: the selected setting and each method's library defaults over seeds "
        f"{list(config.seeds)} (fresh initial weights, batch orders and hold-out splits).",
        "**Skipped** (no hold-out split, so no fair selection): "
        + (", ".join(sweep.skipped) if sweep.skipped else "none")
        + ".",
        f"**Intervals**: every figure is the median over seeds with a {stats.INTERVAL_NAME} "
        f"({stats.RESAMPLES:,} resamples); with 5 or fewer seeds it equals the seeds' range.",
        f"**Target**: {target}; a run that never gets there counts as infinitely slow (never).",
        *([f"**Timing**: {time_note(sweep.epochs, env)}"] if time_note(sweep.epochs, env) else []),
    ]
    claims_intro = (
        f"The notebooks' claims, rerun as in notebook 002 ({claims.CLAIM_DATASET}, lr "
        f"{claims.CLAIM_LR:g}, {claims.CLAIM_EPOCHS} epochs, all rows for training, the same "
        f"initial weights for every variant of a seed, {len(config.seeds)} seeds). A claim is "
        f"*confirmed* when the medians over seeds agree with it and so do at least "
        f"{claims.MAJORITY:.0%} of the seeds, *mixed* when the medians agree but fewer seeds do:"
    )
    sections = [
        Section("Protocol", [protocol, Table(["problem", "loss*", "what loss* is"], opt_rows)]),
        Section(
            "Selected hyperparameters",
            [
                "Hold-out loss: median over the selection seeds at the selected point.",
                _selection_table(sweep.selection),
                figures["sensitivity"],
            ],
        ),
        Section(
            f"Tuned results (median [95% interval] over {len(config.seeds)} seeds)",
            _tuned_tables(summary),
        ),
        Section("Suboptimality", [figures["suboptimality"]]),
        Section("Time to target", [figures["profile"]]),
        Section(
            "Generalisation",
            [
                "Final hold-out loss minus final training loss, tuned runs:",
                _gap_table(summary),
                figures["generalization"],
            ],
        ),
        Section(
            "Tuned vs library defaults",
            [
                "The same methods at torch.optim's default hyperparameters (lr 1e-3, ...), same "
                "seeds (in the spirit of *Descending through a Crowded Valley*):",
                _defaults_table(summary),
            ],
        ),
        methods_section(set(runs["method"])),
        Section(
            "Findings", [*([claims_intro] if claim_list else []), findings(summary, claim_list)]
        ),
        Section(
            "Files",
            [
                [
                    "`sweep.csv`: one row per run (phase grid / tuned / default / claims) with "
                    "final losses, status and time to target.",
                    "`summary.csv`: per phase, problem and method: medians and 95% intervals.",
                    "`selection.csv` (with `at_edge`), `claims.csv`, `epochs.csv`, `env.json`.",
                    "`report.html`: this report with interactive plots, one self-contained file.",
                ]
            ],
        ),
    ]
    sections[-1:-1] = task_sections  # task-specific sections (DeepOBS's quadratic), before Files
    subtitle = (
        f"Generated {env['timestamp_utc']} by `{env['command']}` on {env['cpu']} "
        f"(torch {env['torch']})."
    )
    return Doc(
        "optbench sweep report", subtitle, short, sections, summary_title="Summary (tuned runs)"
    )


def write_all(
    out: Path, sweep: SweepResult, config: SweepConfig, env: dict[str, Any]
) -> list[Path]:
    runs, epochs = sweep.runs, sweep.epochs
    ttt = targets.time_to_target(runs, epochs, config.rel_tol, config.target)
    runs = runs.merge(ttt, on="run_id", how="left")
    written = [
        write(runs[SWEEP_COLUMNS], out / "sweep.csv"),
        write(epochs, out / "epochs.csv"),
        write(sweep.selection, out / "selection.csv"),
    ]
    summary = summary_table(runs[runs["phase"] != "grid"])
    written.append(write(summary, out / "summary.csv"))
    claim_runs = runs[runs["phase"] == "claims"]
    claim_list = claims.evaluate(claim_runs) if len(claim_runs) else []
    written.append(write(claims.to_frame(claim_list), out / "claims.csv"))
    written.append(write(env, out / "env.json"))

    tuned_runs = runs[runs["phase"] == "tuned"]
    tuned_epochs = epochs[epochs["run_id"].isin(set(tuned_runs["run_id"]))]
    optimum = targets.reference_optimum(tuned_runs, tuned_epochs)
    star = targets.run_optimum(tuned_runs, tuned_epochs)
    grid_runs = runs[runs["phase"] == "grid"]
    written.append(sweep_plots.sensitivity(grid_runs, sweep.selection, out / "sensitivity.png"))

    def gap(df: pd.DataFrame) -> pd.Series:
        s = df["run_id"].map(star)
        return np.maximum(df["train_loss"] - s, s * 1e-6)

    written.append(
        plots.curves(
            tuned_epochs,
            out / "suboptimality.png",
            transform=gap,
            ylabel="loss - loss*",
            title="Suboptimality of the tuned runs (median over seeds)",
        )
    )
    times = summary[summary["phase"] == "tuned"].assign(time=lambda d: d["seconds_to_target"])
    taus, rho = targets.performance_profile(times[["problem", "method", "time"]])
    written.append(sweep_plots.profile(taus, rho, out / "profile.png", "tuned, wall time"))
    written.append(sweep_plots.gaps(summary, out / "generalization.png"))
    figures = {
        "sensitivity": Figure(
            "sensitivity.png",
            "Final hold-out loss against learning rate "
            "(median over the selection seeds, best over momentum/beta1). "
            "*: selected (hollow: at the edge of its grid); x: diverged; "
            "^: above 3x the initial loss, drawn at the edge.",
        ),
        "suboptimality": Figure(
            "suboptimality.png",
            "Training loss minus each run's own loss* (its seed's split), log scale, median "
            "over seeds; shaded: the seeds' range where narrower than 10x; values at or below "
            "float32 resolution are drawn at loss* x 1e-6.",
            interactive.curves(tuned_epochs, ylabel="loss - loss*", transform=gap),
        ),
        "profile": Figure(
            "profile.png",
            "Fraction of problems each method solves (reaches "
            "the target) within tau times the fastest method's wall time on "
            "that problem (median over seeds); a curve that stays low never "
            "gets there. Disturbed epochs count at their run's median epoch time"
            + (f"; {parallel_note(env)}." if parallel_note(env) else "."),
        ),
        "generalization": Figure(
            "generalization.png",
            "Hold-out minus training loss at the "
            "end, per method: median (dot) and 95% interval (whiskers) "
            "over seeds; 0 = no gap.",
        ),
    }
    task_sections = deepobs.sections(runs, sweep.epochs, env["command"])
    doc = build_doc(sweep, config, runs, summary, optimum, claim_list, env, figures, task_sections)
    written.append(write(markdown(doc), out / "report.md"))
    written.append(write(html.render(doc, out), out / "report.html"))
    return written
