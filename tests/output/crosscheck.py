"""Every summary sentence of a report against the CSVs it came from, recomputed here from
scratch (no `bench.analysis` code): targets on the relative gap from epochs.csv, medians,
seed-by-seed orders and the exact sign test, so a report that contradicts its own tables fails.

`check_run(folder)` reads report.md, runs.csv and epochs.csv of a `run`; `check_sweep(folder)`
report.md, sweep.csv, epochs.csv and claims.csv of a `sweep`. Both return the number of summary
cells checked, and the list of problems whose first speed cell names an answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bench import fmt  # number formatting only: what a figure looks like, not what it is

LEVEL = 0.05
TOL, STRICT = 1e-2, 1e-3
PRIMARY = ("scratch", "plugin", "torch", "torch-foreach", "torch-fused")
WORD = {"clear", "suggestive", "exact", "not enough seeds"}
DETERMINISTIC = {"rosenbrock", "beale", "himmelblau"}  # full batch from a fixed start


# ----------------------------------------------------------------------------------------------
# Reading the report


def md_tables(section: str) -> dict[str, list[list[str]]]:
    """Tables of a summary by their bold title (a split table's parts joined on column 1)."""
    out: dict[str, list[list[str]]] = {}
    title = None
    for block in section.split("\n\n"):
        lines = block.strip().splitlines()
        if len(lines) == 1 and lines[0].startswith("**") and lines[0].endswith("**"):
            title = lines[0].strip("*")
        elif lines and lines[0].startswith("|") and title:
            rows = [[c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]] for ln in lines]
            body = [r for r in rows[2:]]
            if title in out:  # the continuation of a table split for width
                for old, new in zip(out[title], [rows[0], *body], strict=True):
                    old += new[1:]
            else:
                out[title] = [rows[0], *body]
    return out


def summary_text(md: str, title: str = "## Summary") -> str:
    start = md.index(title)
    return md[start : md.index("\n## ", start + 3)]


def parse_cell(cell: str) -> dict:
    """'a = b 5 ~ c 7 +2 (suggestive)' -> names, value, tie, tie value, more, verdict."""
    out: dict = {"verdict": None, "more": 0, "tie": None, "tie_value": None}
    m = re.fullmatch(r"(.*) \(([a-z ]+)\)", cell)
    if m:
        cell, out["verdict"] = m[1], m[2]
    m = re.fullmatch(r"(.*) \+(\d+)", cell)
    if m:
        cell, out["more"] = m[1], int(m[2])
    head, _, tie = cell.partition(" ~ ")
    if tie:
        name, _, value = tie.partition(" ")
        out["tie"], out["tie_value"] = name.rstrip("†"), value
    tokens = head.split(" ")
    cut = -2 if tokens[-1] in ("ms", "µs", "s", "ns") else -1
    out["value"] = " ".join(tokens[cut:])
    out["names"] = [n.rstrip("†") for n in " ".join(tokens[:cut]).split(" = ")]
    return out


# ----------------------------------------------------------------------------------------------
# Recomputing from the CSVs


def primary(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["device"] == df["device"].iloc[0]]
    rank = df["impl"].map({k: i for i, k in enumerate(PRIMARY)})
    return df[rank == rank.groupby(df["method"]).transform("min")]


def hits(runs: pd.DataFrame, epochs: pd.DataFrame, tol: float) -> pd.DataFrame:
    """Per run: first epoch and elapsed seconds with (L - L*) / (L0 - L*) <= tol (inf: never)."""
    e = epochs[epochs["run_id"].isin(set(runs["run_id"]))]
    best = e.replace([np.inf, -np.inf], np.nan).groupby(["problem", "seed"])["train_loss"].min()
    out = {}
    for r in runs.itertuples():
        curve = e[e["run_id"] == r.run_id].sort_values("epoch")
        start = float(curve["train_loss"].iloc[0])
        star = r.loss_star if math.isfinite(r.loss_star) else best[(r.problem, r.seed)]
        goal = star + tol * max(start - star, 0.0)
        ok = curve[curve["train_loss"] <= goal]
        out[r.run_id] = (
            (float(ok["epoch"].iloc[0]), float(ok["elapsed_s"].iloc[0]))
            if len(ok)
            else (math.inf, math.inf)
        )
    return pd.DataFrame.from_dict(out, orient="index", columns=["epochs", "seconds"])


def by_seed(g: pd.DataFrame, values: pd.Series) -> dict[str, dict[int, float]]:
    return {
        m: {int(s): float(values[rid]) for s, rid in zip(x["seed"], x["run_id"], strict=True)}
        for m, x in g.groupby("method", sort=False)
    }


def sign_p(below: int, n: int) -> float:
    k = max(below, n - below)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n) if n else 1.0


def order(a: Mapping[int, float], b: Mapping[int, float], margin: float = 1.0) -> tuple[int, int]:
    """(seeds where a < b, seeds where a > b) over the seeds both have; a timing differs only
    beyond the noise floor `margin` (a x margin < b)."""
    shared = set(a) & set(b)
    return (
        sum(a[s] * margin < b[s] for s in shared),
        sum(b[s] * margin < a[s] for s in shared),
    )


def med(v: Mapping[int, float]) -> float:
    return float(np.median(list(v.values())))


def check_cell(
    cell: str,
    per: dict[str, dict[int, float]],
    value: Callable[[float], str],
    deterministic: bool,
    *,
    closest: dict[str, float] | None = None,
    margin: float = 1.0,
) -> bool:
    """Assert that `cell` says what the numbers say; True when it names an answer."""
    medians = {m: med(v) for m, v in per.items()}
    if cell.startswith("none reached"):
        assert all(math.isinf(v) for v in medians.values()), (cell, medians)
        if closest and "closest:" in cell:
            name = cell.split("closest: ")[1].split(",")[0]
            assert closest[name] == min(closest.values()), (cell, closest)
        return False
    c = parse_cell(cell)
    best = c["names"][0]
    assert value(medians[best]) == c["value"], (cell, medians[best])
    assert medians[best] == min(medians.values()), (cell, medians)
    for other in c["names"][1:]:  # "=": equal in every seed (timings: within the floor)
        assert set(per[other]) == set(per[best]), (cell, other)
        assert order(per[best], per[other], margin) == (0, 0), (cell, other, margin)
    rest = {m: v for m, v in per.items() if m not in c["names"]}
    if deterministic:
        assert not c["tie"], cell
        assert c["verdict"] == "exact", cell
        assert all(med(v) > medians[best] for v in rest.values()), cell
        return True
    orders = {m: order(per[best], v, margin) for m, v in rest.items()}
    tied = [
        m
        for m, (lo, hi) in orders.items()
        if hi > 0 and not (sign_p(lo, lo + hi) <= LEVEL and lo > hi)
    ]
    if c["tie"]:
        assert c["tie"] in tied, (cell, tied)
        assert value(medians[c["tie"]]) == c["tie_value"] or "never" in c["tie_value"], cell
        assert 1 + c["more"] == len(tied), (cell, tied)
        group = [*c["names"], *tied]
        lowest = {s: min(per[m].get(s, math.inf) for m in group) for s in per[best]}
        outside = [m for m in per if m not in group]
        leads = [order(lowest, per[m], margin) for m in outside]
        answered = len(group) <= 3 and bool(leads) and all(hi == 0 and lo >= 2 for lo, hi in leads)
        if c["verdict"] == "not enough seeds":  # the group leads wherever a seed differs, but
            # against some method only one seed differs
            assert len(group) <= 3, (cell, group)
            assert leads, cell
            assert all(hi == 0 for _, hi in leads), (cell, leads)
            assert any(lo < 2 for lo, _ in leads), (cell, leads)
            return False
        assert (c["verdict"] is not None) == answered, (cell, group, leads)
        return answered and c["verdict"] in ("suggestive", "clear")
    assert not tied, (cell, tied)
    if not rest:
        return True
    n_diff = [lo + hi for lo, hi in orders.values()]
    if min(n_diff) < 2:
        assert c["verdict"] == "not enough seeds", (cell, orders)
        return False
    clear = all(sign_p(lo, lo + hi) <= LEVEL and lo > hi for lo, hi in orders.values())
    assert c["verdict"] == ("clear" if clear else "suggestive"), (cell, orders)
    return True


def regime_method(g: pd.DataFrame, plain: str, single: bool) -> str | None:
    """The method whose epoch cost stands for a batch regime: `plain` (sgd: batch 1,
    minibatch: mini-batches) if it ran, else the first method with that regime."""
    if plain in set(g["method"]):
        return plain
    for m, x in g.groupby("method", sort=False):
        b, n = int(x["batch_size"].iloc[0]), int(x["n_train"].iloc[0])
        if (b == 1) if single else (1 < b < n):
            return str(m)
    return None


def _never(f: Callable[[float], str]) -> Callable[[float], str]:
    return lambda x: f(x) if math.isfinite(x) else "never"


def paired_to_gd(costs: pd.DataFrame, run: str, gd: str) -> float:
    """Median over the rounds both were timed in of cost(run) / cost(gd), from costs.csv."""
    own = costs[~costs["copy"].astype(bool)]
    a = own[own["run_id"] == run].set_index("round")["cost_s"]
    b = own[own["run_id"] == gd].set_index("round")["cost_s"]
    shared = a.index.intersection(b.index)
    return float(np.median(a[shared] / b[shared]))


def check_summary(
    md_summary: str, runs: pd.DataFrame, epochs: pd.DataFrame, costs: pd.DataFrame | None = None
) -> tuple[int, list]:
    """The speed, timing and generalisation tables and the anomaly lines of one summary."""
    main = primary(runs)
    tables = md_tables(md_summary)
    first = hits(main, epochs, TOL)
    strict = hits(main, epochs, STRICT)
    checked, answered = 0, []
    speed = tables["Speed: first to the target (epochs)"]
    assert [r[0].rstrip(" †") for r in speed[1:]] == list(dict.fromkeys(main["problem"]))
    for row in speed[1:]:
        problem = row[0].rstrip(" †")
        g = main[main["problem"] == problem]
        det = problem in DETERMINISTIC
        final = g.set_index("run_id")
        gap = (final["final_train_loss"] - final["loss_star"]).where(
            final["status"] != "diverged", math.inf
        )
        closest = {m: float(np.median(gap[x["run_id"]])) for m, x in g.groupby("method")}
        if check_cell(row[1], by_seed(g, first["epochs"]), _never(fmt.num), det,
                      closest=closest):  # fmt: skip
            answered.append(problem)
        check_cell(row[2], by_seed(g, strict["epochs"]), _never(fmt.num), det)
        checked += 2
    timing = tables.get("Timing: time to the target and cost of an epoch", [])
    for row in timing[1:]:
        problem = row[0].rstrip(" †")
        g = main[main["problem"] == problem]
        floor = float(g["cost_floor"].dropna().iloc[0]) if "cost_floor" in g else 1.0
        check_cell(row[1], by_seed(g, first["seconds"]), _never(fmt.seconds), False, margin=floor)
        t = g.set_index(["method", "seed"])["epoch_cost_s"]
        if costs is not None:  # ratios paired within the cost measurement's rounds
            ids = g.assign(base=g["run_id"].str.rpartition(":")[2]).set_index(["method", "seed"])
            t = pd.Series(
                {
                    (m, s): paired_to_gd(costs, ids.loc[(m, s), "base"], ids.loc[("gd", s), "base"])
                    for m, s in ids.index
                }
            ).rename_axis(["method", "seed"])
        for cell, plain, single in ((row[2], "sgd", True), (row[3], "minibatch", False)):
            method = regime_method(g, plain, single)
            if cell == fmt.MISSING:
                assert method is None, (problem, plain)
                continue
            if method != plain:
                flat = " ".join(md_summary.split())  # the note may wrap anywhere
                assert f"{method} for {plain}" in flat, (problem, method)
            ratio = (t[method] if costs is not None else t[method] / t["gd"]).dropna()
            text = f"{fmt.num(float(ratio.median()), 3)}x"
            if ratio.min() != ratio.max():
                text += f" [{fmt.num(float(ratio.min()), 3)}, {fmt.num(float(ratio.max()), 3)}]"
            assert cell.startswith(text), (problem, cell, text)
            checked += 1
        assert (g["batch_size"] < g["n_train"]).any(), problem  # regimes differ: a cost row
        checked += 1
    same_work = [p for p, g in main.groupby("problem") if (g["batch_size"] >= g["n_train"]).all()]
    assert not {r[0].rstrip(" †") for r in timing[1:]} & set(same_work)
    gen = tables.get("Generalisation: lowest hold-out loss", [])
    for row in gen[1:]:
        problem = row[0].rstrip(" †")
        g = main[main["problem"] == problem]
        loss = g.set_index("run_id")["final_holdout_loss"].where(
            g.set_index("run_id")["status"] != "diverged", math.inf
        )
        check_cell(row[1], by_seed(g, loss), fmt.num, False)
        best = parse_cell(row[1])["names"][0]
        b = g[g["method"] == best]
        gap = (b["final_holdout_loss"] - b["final_train_loss"]).astype(float)
        assert row[2].startswith(fmt.num(float(gap.median()))), (problem, row[2])
        checked += 2
    diverged = runs[runs["status"] == "diverged"]
    if len(diverged):
        for (p, m), d in diverged.groupby(["problem", "method"]):
            total = len(runs[(runs["problem"] == p) & (runs["method"] == m)])
            assert f"{m} on {p} ({len(d)} of {total})" in md_summary
            checked += 1
    else:
        assert "Diverged runs" not in md_summary
    return checked, answered


def check_run(folder: Path) -> tuple[int, list[str]]:
    md = (folder / "report.md").read_text()
    runs = pd.read_csv(folder / "runs.csv")
    epochs = pd.read_csv(folder / "epochs.csv")
    costs = pd.read_csv(folder / "costs.csv") if (folder / "costs.csv").exists() else None
    checked, answered = check_summary(summary_text(md), runs, epochs, costs)
    assert f"- {len(runs)} runs over {runs['problem'].nunique()} problems" in md
    pairs = runs.pivot_table(
        index=["problem", "method", "device", "seed", "hparams"], columns="impl",
        values="run_id", aggfunc="first",
    )  # fmt: skip
    if {"scratch", "torch"} <= set(pairs.columns):
        n = int(pairs[["scratch", "torch"]].notna().all(axis=1).sum())
        assert "scratch/torch.optim run pairs identical at every epoch" in md
        assert re.search(rf"Parity: \d+ of {n} scratch/torch.optim run pairs", md)
    return checked + 1, answered


def check_sweep(folder: Path) -> tuple[int, list[str]]:
    md = (folder / "report.md").read_text()
    sweep = pd.read_csv(folder / "sweep.csv")
    epochs = pd.read_csv(folder / "epochs.csv")
    tuned = sweep[sweep["phase"] == "tuned"]
    costs = pd.read_csv(folder / "costs.csv") if (folder / "costs.csv").exists() else None
    checked, answered = check_summary(summary_text(md), tuned, epochs, costs)
    claims = pd.read_csv(folder / "claims.csv")
    runs = sweep[sweep["phase"] == "claims"]
    if len(runs):
        loss = runs.pivot_table(index="seed", columns="label", values="final_train_loss")
        loss = loss.where(
            runs.pivot_table(index="seed", columns="label", values="status", aggfunc="first")
            != "diverged",
            math.inf,
        )
        for label in ("momentum 0.1", "momentum 0.9", "nesterov 0.1", "nesterov 0.9"):
            below, above = order(loss[label].to_dict(), loss["sgd"].to_dict())
            n = below + above
            p = sum(math.comb(n, i) for i in range(below, n + 1)) / 2**n if n else 1.0
            expect = (
                "confirmed"
                if p <= LEVEL
                else "suggestive"
                if above == 0 and n >= 2
                else "not confirmed"
            )
            name = label.replace("momentum", "Momentum").replace("nesterov", "Nesterov")
            row = claims[claims["claim"] == f"{name} (batch 1) ends lower than plain SGD"]
            assert row["verdict"].iloc[0] == expect, (label, below, above, p)
            assert f"**{expect}**" in md
            checked += 1
    else:
        assert claims.empty
    return checked, answered
