"""The sweep's output folder: sweep.csv, summary tables, plots, report.md and report.html,
all from tables; both reports render one `Doc`."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import optimizers
from bench import fmt
from bench.analysis import claims, compare, cost, stats, targets
from bench.analysis import summary as summaries
from bench.analysis.timing import parallel_note, time_note
from bench.output import deepobs, html, interactive, plots, sweep_plots
from bench.output.doc import Doc, Figure, Section, Table, markdown, methods_section
from bench.output.files import write
from bench.output.plots import BAND_MIN_RUN
from bench.run import tasks
from bench.run.data import dataset_task
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
    "n_train",
    "epochs",
    "initial_loss",
    "final_train_loss",
    "final_holdout_loss",
    "status",
    "diverged_epoch",
    "loss_star",
    "target_loss",
    "epochs_to_target",
    "seconds_to_target",
    "strict_target_loss",
    "epochs_to_strict",
    "seconds_to_strict",
    "final_gap",
    "epoch_cost_s",
    "cost_floor",
    "engine",
    "impl",
    "device",
    "run_id",
]
SUMMARY_METRICS = {
    "final_train_loss": "final training loss",
    "final_holdout_loss": "final hold-out loss",
    "epochs_to_target": "epochs to target",
    "seconds_to_target": "seconds to target",
    "epochs_to_strict": "epochs to the strict target",
    "epoch_cost_s": "cost per epoch",
}


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per phase x problem x method: median and 95% interval of every summary metric."""
    rows = []
    keys = ["phase", "problem", "method", "hparams"]
    for key, g in runs.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["seeds"] = g["seed"].nunique()
        row["diverged"] = int((g["status"] == Status.DIVERGED).sum())
        row["batch_size"] = int(g["batch_size"].iloc[0])
        row["epochs"] = int(g["epochs"].iloc[0])
        for col in SUMMARY_METRICS:
            values = g[col].astype(float)
            if col.startswith("final_"):
                values = values.where(~g["status"].isin(Status.STOPPED), math.inf)
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
    timed = col.startswith(("epochs_to", "seconds_to"))
    if math.isnan(med):
        return fmt.MISSING
    if math.isinf(med):
        return "never" if timed else "diverged"
    if lo == hi:
        return f(med)
    hi_text = "never" if (timed and math.isinf(hi)) else f(hi)
    return f"{f(med)} [{f(lo)}, {hi_text}]"


def _hp_text(hparams: str | None) -> str:
    if hparams is None or (isinstance(hparams, float) and math.isnan(hparams)):
        return "– (every point diverged)"
    hp = json.loads(hparams)
    return ", ".join(f"{k}={fmt.num(v, 3) if isinstance(v, float) else v}" for k, v in hp.items())


def _tuned_tables(summary: pd.DataFrame, edges: dict[str, set[str]]) -> list:
    """Per problem: epochs and batch sizes, then every method's tuned results."""
    parts: list = []
    tuned = summary[summary["phase"] == "tuned"]
    header = [
        "method",
        "batch",
        "final train loss",
        "final hold-out loss",
        "epochs to target",
        "to strict target",
        "seconds to target",
        "epoch time",
    ]
    for problem, g in tuned.groupby("problem", sort=False):
        edge = edges.get(str(problem), set())
        rows = [
            [
                f"`{r.method}`" + (summaries.EDGE if r.method in edge else ""),
                str(r.batch_size),
                _cell(r, "final_train_loss"),
                _cell(r, "final_holdout_loss"),
                _cell(r, "epochs_to_target"),
                _cell(r, "epochs_to_strict"),
                _cell(r, "seconds_to_target", time=True),
                _cell(r, "epoch_cost_s", time=True),
            ]
            for r in g.itertuples()
        ]
        epochs = ", ".join(str(e) for e in sorted(set(g["epochs"])))
        parts += [
            f"**{problem}** ({epochs} epochs; batch = examples per step)",
            Table(header, rows),
        ]
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


def torch_difference(method: str) -> str:
    """How a method's registered defaults differ from its torch.optim class's own defaults
    (its signature), e.g. 'momentum 0.9 (torch.optim: 0)'; '= torch.optim's' when they
    do not; a plug-in has no torch.optim class."""
    if method not in optimizers.METHODS:
        return fmt.MISSING
    rec = optimizers.get(method)
    rule = optimizers.RULES.get(rec.rule)
    if rule is None or rule.reference is None:
        return "plug-in: no torch.optim class"
    params = inspect.signature(rule.reference).parameters
    diffs = [
        f"{k} {v} (torch.optim: {params[k].default})"
        for k, v in rec.hparams.items()
        if k in params and params[k].default != v
    ]
    return ", ".join(diffs) if diffs else f"= torch.optim.{rule.reference.__name__}'s"


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
        "registered defaults",
        "hold-out, defaults",
        "hold-out, tuned",
        "defaults / tuned",
    ]
    return Table(header, rows)


def defaults_text(methods) -> str:
    """Which registered defaults are torch.optim's and which are not, method by method."""
    diffs = [
        f"`{m}` {torch_difference(m)}"
        for m in dict.fromkeys(methods)
        if not torch_difference(m).startswith("= ")
    ]
    same = [m for m in dict.fromkeys(methods) if torch_difference(m).startswith("= ")]
    return (
        "The same methods at their registered defaults, same seeds (in the spirit of "
        "*Descending through a Crowded Valley*): each method's own settings over its update "
        "rule's defaults (lr 1e-3, ...). "
        + (f"These are torch.optim's own defaults for {', '.join(same)}. " if same else "")
        + (f"They differ from torch.optim's for {'; '.join(diffs)}." if diffs else "")
    )


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


def tuning_finding(runs: pd.DataFrame) -> str | None:
    """Tuned vs registered defaults, paired by seed (the same rerun seeds), by the rule: in
    how many (problem, method) pairs the tuned setting ends with the lower hold-out loss."""
    tuned, default = runs[runs["phase"] == "tuned"], runs[runs["phase"] == "default"]
    if tuned.empty or default.empty:
        return None
    counts = {compare.CLEAR: 0, compare.SUGGESTIVE: 0}
    pairs = diverged = 0
    for (problem, method), d in default.groupby(["problem", "method"], sort=False):
        t = tuned[(tuned["problem"] == problem) & (tuned["method"] == method)]
        if t.empty:
            continue
        pairs += 1
        per = {
            name: summaries.per_seed(x, "final_holdout_loss", inf_if_diverged=True)[method]
            for name, x in (("tuned", t), ("default", d))
        }
        verdict = compare.compare(per["tuned"], per["default"], alternative=compare.LESS).verdict
        if verdict in counts:
            counts[verdict] += 1
        diverged += int(np.isinf(per["default"]).all())
    rest = pairs - sum(counts.values())
    return (
        f"Tuned vs registered defaults (same seeds, paired; one-sided sign test): the tuned "
        f"setting ends with the lower hold-out loss clearly in {counts[compare.CLEAR]}, "
        f"suggestively in {counts[compare.SUGGESTIVE]} and not shown in {rest} of {pairs} "
        "(problem, method) pairs"
        + (f"; the defaults diverge in every seed in {diverged}" if diverged else "")
        + "."
    )


def findings(runs: pd.DataFrame, claim_list: Sequence[claims.Claim]) -> list[str]:
    out = [c.markdown() for c in claim_list]
    line = tuning_finding(runs)
    return out + ([line] if line else [])


def edge_map(selection: pd.DataFrame) -> dict[str, set[str]]:
    """problem -> the methods whose selection sits at the edge of their grid."""
    out: dict[str, set[str]] = {}
    if "at_edge" not in selection:
        return out
    for r in selection.itertuples():
        if isinstance(r.at_edge, str) and r.at_edge:
            out.setdefault(str(r.problem), set()).add(str(r.method))
    return out


def _claims_text(config: SweepConfig, claim_list: Sequence[claims.Claim], n_seeds: int) -> str:
    if not claim_list:
        why = (
            "turned off (`claims = false` / `--no-claims`)"
            if config.claims is False
            else f"not run: their problem, {claims.CLAIM_DATASET}, is not in this sweep "
            "(`[sweep] claims = true` runs them anyway)"
        )
        return f"The notebooks' claims: {why}."
    return (
        f"The notebooks' claims, rerun as in notebook 002 ({claims.CLAIM_DATASET}, lr "
        f"{claims.CLAIM_LR:g}, {claims.CLAIM_EPOCHS} epochs, all rows for training, the same "
        f"initial weights for every variant of a seed, {n_seeds} seeds), each judged by the "
        "rule with a one-sided sign test over paired seeds (the notebook states the direction): "
        f"*confirmed* at p <= {compare.LEVEL:g}, "
        + (
            f"*suggestive* when every seed agrees but {n_seeds} seeds cannot reach it "
            f"({compare.seeds_needed(compare.LESS)} can), "
            if n_seeds < compare.seeds_needed(compare.LESS)
            else ""
        )
        + "else *not confirmed*:"
    )


def _fixed_draws(runs: pd.DataFrame) -> list[str]:
    """Problems whose initial weights and split a seed does not change (DeepOBS's quadratic:
    θ0 = ones and a fixed test set; the 2-D functions): a rerun seed there changes only the
    batch order, if that."""
    out = []
    for problem, dataset in runs.groupby("problem", sort=False)["dataset"].first().items():
        try:
            task = tasks.get(dataset_task(str(dataset)))
        except Exception:  # a dataset this checkout no longer knows: say nothing about it
            continue
        if not task.model_choice:
            out.append(str(problem))
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
        else f"relative gap (L − L*) / (L0 − L*) <= {config.rel_tol:g}, and a strict target "
        f"<= {config.strict_tol:g} (L0: the loss at the shared initial weights; L*: below)"
    )
    opt_rows = [[r.problem, fmt.num(r.optimum), r.optimum_kind] for r in optimum.itertuples()]
    tuned = runs[runs["phase"] == "tuned"]
    tuned_epochs = sweep.epochs[sweep.epochs["run_id"].isin(set(tuned["run_id"]))]
    edges = edge_map(sweep.selection)
    short = summaries.build(
        tuned,
        tuned_epochs,
        rel_tol=config.rel_tol,
        strict_tol=config.strict_tol,
        target=config.target,
        edges=edges,
        extra_anomalies=[
            *edge_anomalies(sweep.selection),
            *([f"Timings: {parallel_note(env)}."] if parallel_note(env) else []),
        ],
    )
    impls = ", ".join(dict.fromkeys(runs["impl"])) if len(runs) else "–"
    devices = ", ".join(dict.fromkeys(runs["device"])) if len(runs) else "–"
    fixed = _fixed_draws(runs)
    n_seeds = len(config.seeds)
    protocol = [
        f"**Grid**: {len(factors)} learning rates per method, the suite's learning rate x "
        f"10^[{-config.decades:g}, {config.decades:g}] ({config.points_per_decade} per decade)"
        + (f", x {'; '.join(extra)}" if extra else "")
        + f"; every point from the same initial weights; seeds {list(config.select_seeds)}; "
        f"{n_grid} runs. Where the selection sits at an end of its grid, the grid is extended "
        f"beyond it by up to {config.max_extensions} points.",
        f"**Implementation and device**: every run of the sweep uses {impls} on {devices} "
        "(the first of `--impl` and of `--devices`).",
        "**Selection**: lowest final **hold-out** loss (median over the selection seeds); "
        "training loss is never used; a diverged point scores +inf and never wins.",
        f"**Reruns**: the selected setting and each method's registered defaults over seeds "
        f"{list(config.seeds)}: a fresh batch order, and fresh initial weights and hold-out "
        "split where the problem draws them"
        + (f" (not {', '.join(fixed)}: fixed start and data)" if fixed else "")
        + ".",
        "**Skipped** (no hold-out split, so no fair selection): "
        + (", ".join(sweep.skipped) if sweep.skipped else "none")
        + ".",
        f"**Intervals**: a figure is the median over seeds with [{stats.interval_name(n_seeds)}]"
        + (
            f" ({stats.INTERVAL_NAME}, {stats.RESAMPLES:,} resamples)"
            if n_seeds > stats.RANGE_UP_TO
            else ""
        )
        + ".",
        f"**Target**: {target}; a run that never gets there counts as slowest (never).",
        f"**Comparisons**: {compare.rule_text(n_seeds)}.",
        *([f"**Timing**: {time_note(sweep.epochs, env)}"] if time_note(sweep.epochs, env) else []),
    ]
    sections = [
        Section("Protocol", [protocol, Table(["problem", "L*", "what L* is"], opt_rows)]),
        Section(
            "Selected hyperparameters",
            [
                "Hold-out loss: median over the selection seeds at the selected point.",
                _selection_table(sweep.selection),
                figures["sensitivity"],
            ],
        ),
        Section(
            f"Tuned results (median [{stats.bracket(n_seeds)}] over {n_seeds} seeds)",
            _tuned_tables(summary, edges),
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
            "Tuned vs registered defaults",
            [
                defaults_text(summary.loc[summary["phase"] == "default", "method"]),
                _defaults_table(summary),
            ],
        ),
        methods_section(set(runs["method"])),
        Section(
            "Findings",
            [_claims_text(config, claim_list, n_seeds), findings(runs, claim_list)],
        ),
        Section(
            "Files",
            [
                [
                    "`sweep.csv`: one row per run (phase grid / tuned / default / claims) with "
                    "final losses, status and time to both targets.",
                    "`summary.csv`: per phase, problem and method: medians and intervals.",
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
    out: Path,
    sweep: SweepResult,
    config: SweepConfig,
    env: dict[str, Any],
    costs: pd.DataFrame | None = None,
) -> list[Path]:
    runs, epochs = sweep.runs, sweep.epochs
    written: list[Path] = []
    if costs is not None and not costs.empty:  # the reruns' and claims' cost per epoch
        epochs, runs = cost.with_costs(epochs, runs, costs)
        written.append(write(costs.drop(columns=["key"], errors="ignore"), out / "costs.csv"))
    # Targets per phase: where no optimum is known, L* is the best loss of the phase's runs.
    ttt = [
        targets.time_to_target(
            r, epochs[epochs["run_id"].isin(set(r["run_id"]))], config.rel_tol, config.target,
            config.strict_tol,
        )
        for _, r in runs.groupby("phase", sort=False)
    ]  # fmt: skip
    runs = runs.merge(pd.concat(ttt, ignore_index=True), on="run_id", how="left")
    written += [
        write(runs[[c for c in SWEEP_COLUMNS if c in runs]], out / "sweep.csv"),
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
            ylabel="loss − L*",
            title="Suboptimality of the tuned runs (median over seeds)",
        )
    )
    times = summary[summary["phase"] == "tuned"].assign(time=lambda d: d["seconds_to_target"])
    taus, rho = targets.performance_profile(times[["problem", "method", "time"]])
    written.append(sweep_plots.profile(taus, rho, out / "profile.png", "tuned, wall time"))
    written.append(
        sweep_plots.gaps(summary, out / "generalization.png", stats.bracket(len(config.seeds)))
    )
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
            "Training loss minus each run's own L* (its seed's split), log scale, median "
            f"over seeds; shaded: the seeds' range, over stretches of {BAND_MIN_RUN} or more "
            "epochs where it is narrower than 10x; "
            "x: a diverged run's last value; values at or below float32 resolution are drawn "
            "at L* x 1e-6 (on the bottom edge where L* = 0).",
            interactive.curves(tuned_epochs, ylabel="loss − L*", transform=gap),
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
            "Hold-out minus training loss at the end, per method: median (dot) and "
            f"{stats.interval_name(len(config.seeds))} (whiskers) over seeds; 0 = no gap.",
        ),
    }
    task_sections = deepobs.sections(runs, sweep.epochs, env["command"])
    doc = build_doc(sweep, config, runs, summary, optimum, claim_list, env, figures, task_sections)
    written.append(write(markdown(doc), out / "report.md"))
    written.append(write(html.render(doc, out), out / "report.html"))
    return written
