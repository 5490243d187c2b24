"""The one-screen summary: the notebooks' three questions answered per problem, with numbers.

1. Convergence speed: which method reached the target first, in epochs and in training seconds
   (target: within `rel_tol` of each run's own loss*, see `targets.time_to_target`).
2. Computational burden: the wall time of an epoch of each batch regime relative to GD.
3. Generalisation: the lowest final hold-out loss and the gap hold-out - training loss.
Then the parity verdict and the anomalies (diverged runs, disturbed timings, edge-of-grid
picks). Every figure is a median [95% interval] over seeds; a method is only named as better
where `compare.clearly_less` says the difference is clear, otherwise the tied methods are named.

The result is plain strings (through `bench.fmt`) in a small structure that both report.md and
report.html render, so the two cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import optimizers
from bench import fmt
from bench.analysis import targets
from bench.analysis.compare import paired_ratio, ranked
from bench.analysis.stats import Estimate, median_ci
from bench.analysis.tables import parity_by_method
from bench.schema import Status

TIE = "~"  # "no clear difference from"
MAX_TIES_NAMED = 1


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

    def strings(self) -> list[str]:
        """Every cell and line, for checking that two renderings show the same numbers."""
        out = [c for b in self.blocks for row in b.rows for c in row]
        return out + list(self.lines)


def primary(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the summary reads: from-scratch and plug-ins (torch.optim's twins are in the
    parity verdict), first device."""
    on = runs[runs["device"] == runs["device"].iloc[0]]
    own = on["impl"].isin(("scratch", "plugin"))  # a plug-in's only implementation is itself
    return on[own] if own.any() else on


def _per_seed(g: pd.DataFrame, column: str, *, inf_if_diverged: bool = False) -> dict:
    out = {}
    for method, m in g.groupby("method", sort=False):
        v = m.set_index("seed")[column].astype(float)
        if inf_if_diverged:
            v = v.where(m.set_index("seed")["status"] != Status.DIVERGED, math.inf)
        out[method] = v
    return out


def _winner(per_seed: dict, time: bool = False) -> str | None:
    r = ranked(per_seed)
    if r is None:
        return None
    best, est, ties, _ = r
    text = f"{best} {est.text(time)}"
    if math.isinf(est.hi) and est.lo != est.hi:  # some seeds never got there
        f = fmt.seconds if time else fmt.num
        text = f"{best} {f(est.median)} [{f(est.lo)}, never]"
    if ties:
        named = ", ".join(ties) if len(ties) <= MAX_TIES_NAMED else f"{len(ties)} others"
        text += f" {TIE} {named}"
    return text


def _speed(
    runs: pd.DataFrame, kinds: dict[str, str], rel_tol: float, target: float | None
) -> Block:
    rows = []
    for problem, g in runs.groupby("problem", sort=False):
        epochs = _winner(_per_seed(g, "epochs_to_target"))
        secs = _winner(_per_seed(g, "seconds_to_target"), time=True)
        reached = g[np.isfinite(g["epochs_to_target"])].groupby("method")["seed"].nunique()
        every = g.groupby("method")["seed"].nunique()
        full = int((reached == every.reindex(reached.index)).sum())
        label = f"{problem} ({full}/{len(every)})"
        if epochs is None or secs is None:  # no method got there in most seeds
            low = _winner(_per_seed(g, "final_train_loss", inf_if_diverged=True))
            rows.append([label, "not reached", f"lowest final loss: {low or fmt.MISSING}"])
            continue
        rows.append([label, epochs, secs])
    best_kind = [p for p, k in kinds.items() if k != "least squares"]
    goal = (
        f"training loss <= {fmt.num(target)}"
        if target is not None
        else f"training loss within {rel_tol:.0%} of each run's own loss* (least squares on its "
        "split)"
        + (f"; for {', '.join(best_kind)}: of the best loss any run reached" if best_kind else "")
    )
    note = (
        f"Target: {goal}. Never reaching it counts as infinitely slow. `{TIE}`: no clear "
        "difference (95% intervals overlap and the seeds disagree). (k/n): k of the n methods got "
        "there in every seed; not reached: no method did in most seeds."
    )
    header = ["problem (reached)", "fastest, epochs", "fastest, training time"]
    return Block("Convergence speed: first to the target", header, rows, note)


REGIMES = (("single", "sgd", "batch 1"), ("mini", "minibatch", "mini-batch"))


def _regime_method(methods: Sequence[str], batch: str, plain: str) -> str | None:
    if plain in methods:
        return plain
    for m in methods:
        if m in optimizers.METHODS and optimizers.get(m).batch == batch:
            return m
    return None


def _cost(runs: pd.DataFrame) -> Block | None:
    rows, stand_ins = [], set()
    for problem, g in runs.groupby("problem", sort=False):
        methods = list(dict.fromkeys(g["method"]))
        if "gd" not in methods:
            continue
        t = _per_seed(g, "median_epoch_time_s")
        gd = t["gd"]
        row = [problem, median_ci(gd.to_numpy()).text(time=True)]
        for batch, plain, _ in REGIMES:
            m = _regime_method(methods, batch, plain)
            if m is None:
                row.append(fmt.MISSING)
                continue
            r = paired_ratio(t[m], gd)
            size = int(g.loc[g["method"] == m, "batch_size"].iloc[0])
            row.append(f"{_times(r)}, B={size}")
            if m != plain:
                stand_ins.add(f"{m} for {plain}")
        rows.append(row)
    if not rows:
        return None
    header = ["problem", "GD epoch", "batch 1 / GD", "mini-batch / GD"]
    note = (
        "Wall time of one epoch (training steps only) of plain SGD at batch 1 and of minibatch "
        "SGD, divided by full-batch GD's, seed by seed (same data); median [95% interval]."
        + (f" Stand-ins (not in this run): {', '.join(sorted(stand_ins))}." if stand_ins else "")
    )
    return Block("Cost of an epoch relative to GD", header, rows, note)


def _times(e: Estimate) -> str:
    if e.n == 0:
        return fmt.MISSING
    if e.n == 1 or e.lo == e.hi:
        return f"{fmt.num(e.median, 3)}x"
    return f"{fmt.num(e.median, 3)}x [{fmt.num(e.lo, 3)}, {fmt.num(e.hi, 3)}]"


def _generalisation(runs: pd.DataFrame) -> Block | None:
    hold = runs[np.isfinite(runs["final_holdout_loss"].astype(float))]
    if hold.empty:
        return None
    rows, accuracy = [], []
    for problem, g in hold.groupby("problem", sort=False):
        per_seed = _per_seed(g, "final_holdout_loss", inf_if_diverged=True)
        winner = ranked(per_seed)
        if winner is None:
            continue
        best = winner[0]
        b = g[g["method"] == best]
        gap = (b["final_holdout_loss"] - b["final_train_loss"]).astype(float)
        rows.append([problem, _winner(per_seed) or fmt.MISSING, median_ci(gap.to_numpy()).text()])
        a = b.get("final_holdout_accuracy", pd.Series(dtype=float)).astype(float)
        if a.notna().any():  # classification problems only: a column would be mostly empty
            accuracy.append(f"{problem} ({best}) {median_ci(a.to_numpy()).text()}")
    header = ["problem", "lowest hold-out loss", "its gap (hold-out - train)"]
    note = (
        "Gap = final hold-out loss - final training loss (positive: worse on unseen rows); "
        "median [95% interval] over seeds, each seed with its own split. Every method's gap: "
        "see the details."
    )
    if accuracy:
        note += f" Hold-out accuracy of that method: {'; '.join(accuracy)}."
    return Block("Generalisation: hold-out loss and gap", header, rows, note)


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
    if "disturbed_epochs" in runs:
        d = runs["disturbed_epochs"].fillna(0)
        if (d > 0).any():
            out.append(
                f"Disturbed timings: {int(d.sum())} epochs in {int((d > 0).sum())} of "
                f"{len(runs)} runs were flagged as disturbed (other load); see epochs.csv."
            )
    out.extend(extra)
    return out or ["Anomalies: none (no run diverged)."]


def build(
    runs: pd.DataFrame,
    epochs: pd.DataFrame,
    *,
    rel_tol: float = 0.01,
    target: float | None = None,
    extra_anomalies: Sequence[str] = (),
) -> Summary:
    """The summary of a runs table (all problems) and its epochs."""
    if runs.empty:  # a sweep whose every grid point diverged has no tuned run to summarise
        return Summary([], ["No run to summarise (every grid point diverged).", *extra_anomalies])
    runs = runs.copy()
    if "epochs_to_target" not in runs:
        ttt = targets.time_to_target(runs, epochs, rel_tol, target)
        runs = runs.merge(ttt, on="run_id", how="left")
    kinds = targets.reference_optimum(runs, epochs).set_index("problem")["optimum_kind"]
    main = primary(runs)
    blocks = [_speed(main, kinds.to_dict(), rel_tol, target)]
    blocks += [b for b in (_cost(main), _generalisation(main)) if b is not None]
    lines = [p for p in (parity_line(epochs),) if p]
    lines += anomalies(runs, extra_anomalies)
    return Summary(blocks, lines)
