"""The one-screen summary: the notebooks' three questions answered per problem, with numbers.

1. Speed (epochs): which method first reached the target gap (`targets`: 1e-2 and 1e-3 of the
   way from the start to L*), `speed_block`.
2. Timing, in one function (`timing_block`, the only part that reads the clock, so the epoch
   cost protocol of issue 19 can replace it alone): the fastest to the target in training
   seconds, and the wall time of an epoch of each batch regime relative to GD.
3. Generalisation: the lowest final hold-out loss and that method's gap hold-out - training.
Then the parity verdict and the anomalies (diverged runs, disturbed timings, edge-of-grid
picks). Every "first", "lowest" and tie comes from `compare.ranked` (one rule, stated in the
summary); figures are medians, with [the seeds' range] where a range is shown.

The result is plain strings (through `bench.fmt`) in a small structure that both report.md and
report.html render, so the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import optimizers
from bench import fmt
from bench.analysis import compare, cost, targets
from bench.analysis.compare import Ranking, paired_ratio, ranked
from bench.analysis.stats import Estimate, median_ci
from bench.analysis.tables import parity_by_method
from bench.analysis.tables import primary as primary_rows
from bench.run import tasks
from bench.run.data import dataset_task
from bench.schema import Status

TIE, SAME, EDGE = "~", "=", "†"
MAX_TIES_NAMED = 1
MAX_GROUP = 3  # a tie of more methods than this is no answer: no verdict is given for it
WORDS = {
    compare.CLEAR: "clear",
    compare.SUGGESTIVE: "suggestive",
    compare.EXACT: "exact",
    compare.TOO_FEW: "not enough seeds",
}


@dataclass(frozen=True)
class Block:
    """A titled table of the summary, with one note line under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class Summary:
    blocks: list[Block]
    lines: list[str] = field(default_factory=list)  # parity verdict, then anomalies
    intro: str = ""
    # Per problem, the ranking behind the first speed column (None: no method got there).
    fastest: Mapping[str, Ranking | None] = field(default_factory=dict)

    def strings(self) -> list[str]:
        """Every cell and line, for checking that two renderings show the same numbers."""
        out = [c for b in self.blocks for row in b.rows for c in row]
        return out + list(self.lines)


def primary(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the summary reads (`tables.primary`: each method's own implementation)."""
    return primary_rows(runs)


def deterministic(runs: pd.DataFrame) -> set[str]:
    """Problems whose seed changes nothing: every method steps on the full batch from the
    task's fixed start (the 2-D functions). Their values are compared directly."""
    out = set()
    for problem, dataset in runs.groupby("problem", sort=False)["dataset"].first().items():
        try:
            task = tasks.get(dataset_task(str(dataset)))
        except Exception:  # a dataset this checkout no longer knows: treat it as random
            continue
        if task.full_batch and not task.model_choice:
            out.add(str(problem))
    return out


def per_seed(g: pd.DataFrame, column: str, *, inf_if_diverged: bool = False) -> dict:
    """method -> values of `column` indexed by seed (a diverged run's as inf if asked)."""
    out = {}
    for method, m in g.groupby("method", sort=False):
        v = m.set_index("seed")[column].astype(float)
        if inf_if_diverged:  # diverged, failed or timed out: ranks last
            v = v.where(~m.set_index("seed")["status"].isin(Status.STOPPED), math.inf)
        out[method] = v
    return out


def _mark(method: str, edge: Collection[str]) -> str:
    return f"{method}{EDGE}" if method in edge else method


def _value(v: pd.Series, value: Callable[[float], str]) -> str:
    """A tied method's median, or its range where the median is never (inf)."""
    v = v.astype(float).dropna()
    med = float(np.median(v)) if len(v) else math.nan
    if math.isfinite(med):
        return value(med)
    finite = v[np.isfinite(v)]
    return f"[{value(float(finite.min()))}, never]" if len(finite) else "never"


def describe(
    r: Ranking | None,
    value: Callable[[float], str],
    per: Mapping[str, pd.Series],
    edge: Collection[str] = (),
) -> str | None:
    """'nesterov 6 (suggestive)', 'sgd = sgd_wd 5 (exact)', 'nesterov 6 ~ sgd 7 (suggestive)'
    (the verdict after a tie is the group's against every other method), 'a 6 ~ b 7, c 9 +2'."""
    if r is None:
        return None
    names = f" {SAME} ".join(_mark(m, edge) for m in [r.best, *r.equal])
    text = f"{names} {value(r.estimate.median)}"
    if r.ties:
        shown = r.ties[:MAX_TIES_NAMED]
        text += f" {TIE} " + ", ".join(f"{_mark(m, edge)} {_value(per[m], value)}" for m in shown)
        if len(r.ties) > len(shown):
            text += f" +{len(r.ties) - len(shown)}"
        if len(r.group) <= MAX_GROUP and r.group_strength in WORDS:
            text += f" ({WORDS[r.group_strength]})"
    elif r.strength in WORDS:
        text += f" ({WORDS[r.strength]})"
    return text


def answered(r: Ranking | None) -> bool:
    """Does a cell name the first method, or a tie of at most `MAX_GROUP` methods ahead of
    every other one (a justified tie)?"""
    return r is not None and (r.named or (r.named_group and len(r.group) <= MAX_GROUP))


def _epochs(x: float) -> str:
    return fmt.num(x) if math.isfinite(x) else "never"


def _seconds(x: float) -> str:
    return fmt.seconds(x) if math.isfinite(x) else "never"


def _loss(x: float) -> str:
    return fmt.num(x)


def _closest(g: pd.DataFrame) -> str:
    """Where no method got there: the method that got closest (median final relative gap)."""
    gaps = per_seed(g, "final_gap", inf_if_diverged=True)
    med = {m: float(np.median(v)) for m, v in gaps.items() if len(v)}
    finite = {m: v for m, v in med.items() if math.isfinite(v)}
    if not finite:
        return "none reached (every run diverged)"
    best = min(finite, key=finite.get)
    return f"none reached; closest: {best}, gap {fmt.num(finite[best], 2)}"


def _problem_label(problem: str, g: pd.DataFrame, edge: Collection[str]) -> str:
    return f"{problem} {EDGE}" if set(g["method"]) & set(edge) else str(problem)


def speed_block(
    runs: pd.DataFrame,
    det: Collection[str],
    edges: Mapping[str, Collection[str]],
    rel_tol: float,
    target: float | None,
    strict_tol: float | None,
) -> tuple[Block, dict[str, Ranking | None]]:
    """Epochs to the target gap (and to the strict one): no clock involved."""
    strict = target is None and strict_tol is not None and "epochs_to_strict" in runs
    rows, fastest = [], {}
    for problem, g in runs.groupby("problem", sort=False):
        edge = edges.get(str(problem), ())
        per = per_seed(g, "epochs_to_target")
        r = ranked(per, deterministic=problem in det)
        fastest[str(problem)] = r
        row = [
            _problem_label(str(problem), g, edge),
            describe(r, _epochs, per, edge) or _closest(g),
        ]
        if strict:
            per2 = per_seed(g, "epochs_to_strict")
            r2 = ranked(per2, deterministic=problem in det)
            row.append(describe(r2, _epochs, per2, edge) or "none reached")
        rows.append(row)
    if target is not None:
        header = ["problem", f"first to loss <= {fmt.num(target)}, epochs"]
    else:
        header = ["problem", f"first to gap <= {rel_tol:g}, epochs"]
        header += [f"to gap <= {strict_tol:g}"] if strict else []
    unknown = sorted(
        str(p)
        for p, g in runs.groupby("problem", sort=False)
        if not np.isfinite(g["loss_star"].astype(float)).all()
    )
    note = (
        "gap = (L − L*) / (L0 − L*): 1 at the shared start, 0 at the optimum L* (see *What was "
        "run*"
        + (f"; unknown for {', '.join(unknown)}: the seed's lowest loss" if unknown else "")
        + "); never reaching it is slowest."
    )
    title = "Speed: first to the target (epochs)"
    return Block(title, header, rows, note), fastest


def _same_work(g: pd.DataFrame) -> bool:
    """Do all batch regimes do the same work here (every method full batch, e.g. 2-D)?"""
    if "n_train" in g and g["n_train"].notna().all():
        return bool((g["batch_size"].astype(int) >= g["n_train"].astype(int)).all())
    return g["batch_size"].nunique() <= 1


REGIMES = (("single", "sgd", "batch 1"), ("mini", "minibatch", "mini-batch"))


def _regime_method(methods: Sequence[str], batch: str, plain: str) -> str | None:
    if plain in methods:
        return plain
    for m in methods:
        if m in optimizers.METHODS and optimizers.get(m).batch == batch:
            return m
    return None


def _times(e: Estimate) -> str:
    if e.n == 0:
        return fmt.MISSING
    if e.n == 1 or e.lo == e.hi:
        return f"{fmt.num(e.median, 3)}x"
    return f"{fmt.num(e.median, 3)}x [{fmt.num(e.lo, 3)}, {fmt.num(e.hi, 3)}]"


def timing_block(
    runs: pd.DataFrame, edges: Mapping[str, Collection[str]], note_extra: str = ""
) -> Block | None:
    """Everything in the summary that reads the clock, in one place: the fastest method to the
    target in training seconds (by the same rule as everything else; timings are never
    'exact') and each batch regime's epoch cost relative to GD, paired by seed. Problems where
    every method does the same work per epoch (all full batch) get no row."""
    rows, same, stand_ins, floors = [], [], set(), []
    for problem, g in runs.groupby("problem", sort=False):
        if _same_work(g):
            same.append(str(problem))
            continue
        edge = edges.get(str(problem), ())
        floor = cost.floor_of(g)  # no difference inside the machine's noise floor
        floors.append(floor)
        per = per_seed(g, "seconds_to_target")
        row = [
            _problem_label(str(problem), g, edge),
            describe(ranked(per, margin=floor), _seconds, per, edge) or "none reached",
        ]
        methods = list(dict.fromkeys(g["method"]))
        t = per_seed(g, cost.cost_column(g))
        # Paired within the cost measurement's rounds where there is one, else per-run medians.
        paired = per_seed(g, "cost_vs_gd") if cost.measured(g) else None
        for batch, plain, _ in REGIMES:
            m = _regime_method(methods, batch, plain) if "gd" in methods else None
            if m is None:
                row.append(fmt.MISSING)
                continue
            ratio = paired_ratio(t[m], t["gd"]) if paired is None else median_ci(paired[m])
            cell = _times(ratio)
            if batch == "mini":
                cell += f", B={int(g.loc[g['method'] == m, 'batch_size'].iloc[0])}"
            separated = (
                compare.compare(t["gd"], t[m], margin=floor).lower
                or compare.compare(t[m], t["gd"], margin=floor).lower
            )
            if not separated:
                cell += f" ({TIE} GD)"
            if m != plain:
                stand_ins.add(f"{m} for {plain}")
            row.append(cell)
        rows.append(row)
    if not rows:
        return None
    header = ["problem", "first to the target, time", "epoch: batch 1 / GD", "mini-batch / GD"]
    if cost.measured(runs):
        source = (
            "cost per epoch measured apart from the runs, every run of a problem in interleaved "
            "rounds (CPU time of the training steps); training seconds = epochs x that cost; "
            f"no difference inside the noise floor (x{min(floors, default=1):.3g} to "
            f"x{max(floors, default=1):.3g} by problem: identical workloads drift that far)"
        )
    else:
        source = "each run's own median epoch wall time (the cost was not measured)"
    note = (
        f"Training seconds to the first target; an epoch's cost relative to full-batch GD's, per "
        f"seed: median [seeds' range]; {source}"
        + (f" (stand-ins: {', '.join(sorted(stand_ins))})" if stand_ins else "")
        + "."
        + (f" Same work per epoch, no cost row: {', '.join(same)}." if same else "")
        + (f" {note_extra}" if note_extra else "")
    )
    return Block("Timing: time to the target and cost of an epoch", header, rows, note)


def generalisation_block(runs: pd.DataFrame, edges: Mapping[str, Collection[str]]) -> Block | None:
    hold = runs[np.isfinite(runs["final_holdout_loss"].astype(float))]
    if hold.empty:
        return None
    rows, accuracy = [], []
    for problem, g in hold.groupby("problem", sort=False):
        edge = edges.get(str(problem), ())
        per = per_seed(g, "final_holdout_loss", inf_if_diverged=True)
        r = ranked(per)
        if r is None:
            continue
        b = g[g["method"] == r.best]
        gap = (b["final_holdout_loss"] - b["final_train_loss"]).astype(float)
        rows.append(
            [
                _problem_label(str(problem), g, edge),
                describe(r, _loss, per, edge) or fmt.MISSING,
                _estimate(median_ci(gap.to_numpy())),
            ]
        )
        a = b.get("final_holdout_accuracy", pd.Series(dtype=float)).astype(float)
        if a.notna().any():  # classification problems only: a column would be mostly empty
            accuracy.append(f"{problem} ({r.best}) {median_ci(a.to_numpy()).text()}")
    if not rows:
        return None
    header = ["problem", "lowest final hold-out loss", "its gap (hold-out − train)"]
    note = (
        "Gap: final hold-out − training loss (positive: worse on unseen rows), median [seeds' "
        "range]."
    )
    if accuracy:
        note += f" Its hold-out accuracy: {'; '.join(accuracy)}."
    return Block("Generalisation: lowest hold-out loss", header, rows, note)


def _estimate(e: Estimate) -> str:
    return fmt.interval(e.median, e.lo, e.hi, e.n) if e.n == 0 else (
        _loss(e.median) if e.n == 1 or e.lo == e.hi
        else f"{_loss(e.median)} [{_loss(e.lo)}, {_loss(e.hi)}]"
    )  # fmt: skip


def parity_line(epochs: pd.DataFrame) -> str | None:
    if not {"scratch", "torch"} <= set(epochs["impl"]):
        return None
    parity = parity_by_method(epochs)
    if parity.empty:
        return None
    total, same = int(parity["pairs"].sum()), int(parity["identical_runs"].sum())
    text = f"Parity: {same} of {total} scratch/torch.optim run pairs identical at every epoch"
    if same < total:
        worst = parity.loc[parity["max_rel"].idxmax()]
        text += f"; largest relative difference {fmt.num(worst['max_rel'], 3)} ({worst['method']})"
    return text + "."


def anomalies(runs: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    out = []
    diverged = runs[runs["status"] == Status.DIVERGED]
    if not diverged.empty:
        total = runs.groupby(["problem", "method"]).size()
        parts = [
            f"{m} on {p} ({len(g)} of {total[(p, m)]})"
            for (p, m), g in diverged.groupby(["problem", "method"], sort=False)
        ]
        out.append(f"Diverged runs: {'; '.join(parts)}.")
    for status, word in ((Status.FAILED, "Failed"), (Status.TIMEOUT, "Timed-out")):
        stopped = runs[runs["status"] == status]
        if stopped.empty:
            continue
        total = runs.groupby(["problem", "method"]).size()
        parts = [
            f"{m} on {p} ({len(g)} of {total[(p, m)]}: {str(g['error'].iloc[0])[:120]})"
            if "error" in g
            else f"{m} on {p} ({len(g)} of {total[(p, m)]})"
            for (p, m), g in stopped.groupby(["problem", "method"], sort=False)
        ]
        out.append(f"{word} runs: {'; '.join(parts)}.")
    if "disturbed_epochs" in runs:
        d = runs["disturbed_epochs"].fillna(0)
        if (d > 0).any():
            out.append(
                f"Disturbed timings: {int(d.sum())} epochs in {int((d > 0).sum())} of "
                f"{len(runs)} runs (other load; see epochs.csv)."
            )
    out.extend(extra)
    return out or ["Anomalies: none (no run diverged, failed or timed out)."]


def _intro(main: pd.DataFrame, det: Collection[str]) -> str:
    seeds = main.groupby("problem", sort=False)["seed"].nunique()
    random = seeds[[p not in det for p in seeds.index]]
    fixed = seeds[[p in det for p in seeds.index]]

    def n_seeds(counts: pd.Series) -> str:
        return "/".join(str(v) for v in sorted(set(int(c) for c in counts)))

    parts = [f"{len(random)} problems x {n_seeds(random)} seeds"] if len(random) else []
    if len(fixed):
        parts.append(f"{len(fixed)} deterministic x {n_seeds(fixed)} ({', '.join(fixed.index)})")
    impls = ", ".join(dict.fromkeys(main["impl"]))
    most = int(random.max()) if len(random) else int(seeds.max())
    return f"{' + '.join(parts)}; shown: {impls}. {compare.rule_text(most)}."


def build(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    *,
    rel_tol: float = targets.TOL,
    strict_tol: float | None = targets.STRICT_TOL,
    target: float | None = None,
    extra_anomalies: Sequence[str] = (),
    edges: Mapping[str, Collection[str]] | None = None,
    timing_note: str = "",
) -> Summary:
    """The summary of a runs table (all problems) and its epochs. `edges`: per problem, the
    methods whose hyperparameters were picked at the edge of their grid (a sweep)."""
    if runs.empty:  # a sweep whose every grid point diverged has no tuned run to summarise
        return Summary([], ["No run to summarise (every grid point diverged).", *extra_anomalies])
    runs = runs.copy()
    if "epochs_to_target" not in runs or "final_gap" not in runs:
        ttt = targets.time_to_target(runs, epochs, rel_tol, target, strict_tol)
        runs = runs.drop(columns=[c for c in ttt.columns if c != "run_id" and c in runs])
        runs = runs.merge(ttt, on="run_id", how="left")
    edges = edges or {}
    main = primary(runs)
    det = deterministic(main)
    speed, fastest = speed_block(main, det, edges, rel_tol, target, strict_tol)
    blocks = [speed]
    blocks += [
        b
        for b in (timing_block(main, edges, timing_note), generalisation_block(main, edges))
        if b is not None
    ]
    lines = [p for p in (parity_line(epochs),) if p]
    if any(edges.values()):
        lines.append(
            f"{EDGE}: picked at the edge of its learning-rate grid (on a problem: some method "
            "there was), so its best setting may lie beyond the grid and a winner named against "
            "it is provisional."
        )
    lines += anomalies(runs, extra_anomalies)
    return Summary(blocks, lines, _intro(main, det), fastest)
