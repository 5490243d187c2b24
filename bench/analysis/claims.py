"""The notebooks' claims, tested on their own experiment.

Notebook 002 (exercises 4 and 5) trains the 15-row crops table with lr 1e-5 for 100 epochs
from one initial weight draw shared by all methods, and says: SGD (batch 1) reaches a better
loss than full-batch GD but each epoch is slower; minibatch trades between the two; momentum
and Nesterov (0.1 in the notebook) improve on plain SGD. We rerun exactly that (all 15 rows for
training, batch 1 for the momentum variants as in exercise 5, plus momentum 0.9) over several
seeds and judge each claim by the one comparison rule (`compare`), one-sided since the notebook
states the direction: *confirmed* (sign test over paired seeds, p <= 0.05), *suggestive*
(every seed agrees, too few seeds to reach 0.05: five are needed) or *not confirmed*, with the
numbers behind the verdict. The two timing claims read epoch times: the timing protocol of
issue 19 replaces their input, not their rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench import fmt
from bench.analysis import compare
from bench.analysis.cost import cost_column, floor_of
from bench.analysis.stats import bracket, median_ci
from bench.run.data import split_sizes
from bench.run.spec import RunSpec, get_method
from bench.schema import freeze_hparams

CLAIM_DATASET, CLAIM_LR, CLAIM_EPOCHS = "crops15", 1e-5, 100
CLAIM_RUNS: Sequence[tuple[str, str, dict[str, Any], int | None]] = (
    # label, method, hyperparameters over lr 1e-5, batch size (None: the method's regime)
    ("gd", "gd", {}, None),
    ("sgd", "sgd", {}, None),
    ("minibatch", "minibatch", {}, 4),
    ("momentum 0.1", "momentum", {"momentum": 0.1}, 1),
    ("momentum 0.9", "momentum", {"momentum": 0.9}, 1),
    ("nesterov 0.1", "nesterov", {"momentum": 0.1}, 1),
    ("nesterov 0.9", "nesterov", {"momentum": 0.9}, 1),
)


def claim_specs(
    seeds: Sequence[int], impl: str = "scratch", device: str = "cpu"
) -> list[tuple[str, RunSpec]]:
    """(label, spec) for every variant and seed of the notebooks' experiment, run with `impl`
    on `device` (a sweep's implementation and device)."""
    n = split_sizes(CLAIM_DATASET, None, None, 0.0)[0]
    out = []
    for label, method_name, hp, batch in CLAIM_RUNS:
        method = get_method(method_name)
        params = {**method.hparams, "lr": CLAIM_LR, **hp}
        size = {"full": n, "single": 1}.get(method.batch, batch or method.batch_size)
        for seed in seeds:
            spec = RunSpec(
                dataset=CLAIM_DATASET,
                method=method_name,
                hparams=freeze_hparams(params),
                batch_size=size,
                epochs=CLAIM_EPOCHS,
                seed=seed,
                holdout=0.0,
                impl=impl,
                device=device,
            )
            out.append((label, spec))
    return out


CONFIRMED, SUGGESTIVE, NOT_CONFIRMED = "confirmed", "suggestive", "not confirmed"
NOT_MEASURED = "not measured"
VERDICT_OF = {compare.CLEAR: CONFIRMED, compare.SUGGESTIVE: SUGGESTIVE}


def applies(datasets_in_suite: Sequence[str]) -> bool:
    """Does a suite with these datasets include the notebooks' problem (so run its claims)?"""
    return any(str(d).strip() == CLAIM_DATASET for d in datasets_in_suite)


@dataclass(frozen=True)
class Claim:
    text: str
    verdict: str  # confirmed / suggestive / not confirmed
    evidence: str

    @property
    def confirmed(self) -> bool:
        return self.verdict == CONFIRMED

    def markdown(self) -> str:
        return f"{self.text}: **{self.verdict}**. {self.evidence}."


def _per_seed(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """label x seed table; a diverged or missing value counts as +inf (worst)."""
    table = runs.pivot_table(index="seed", columns="label", values=column, aggfunc="first")
    return table.astype(float).fillna(math.inf).replace(-math.inf, math.inf)


def _judge(table: pd.DataFrame, lower: str, higher: str, margin: float = 1.0) -> compare.Comparison:
    return compare.compare(table[lower], table[higher], alternative=compare.LESS, margin=margin)


def _less(
    table: pd.DataFrame, a: str, b: str, time: bool = False, margin: float = 1.0
) -> tuple[str, str]:
    """The claim "a is below b", by the rule (timings: beyond the noise floor, `margin`)."""
    if time and not np.isfinite(table[[a, b]].to_numpy()).any():
        return NOT_MEASURED, "the cost per epoch was not measured (--timing-budget 0)"
    ea, eb = median_ci(table[a]), median_ci(table[b])
    c = _judge(table, a, b, margin)
    what = f"cost per epoch (noise floor x{margin:.3g})" if time else "final training loss"
    return VERDICT_OF.get(c.verdict, NOT_CONFIRMED), (
        f"{what} {a} {ea.text(time)} vs {b} {eb.text(time)} (median [{bracket(len(table))}] "
        f"over {len(table)} seeds); {c.evidence(a, b)}"
    )


def _between(
    table: pd.DataFrame, mid: str, low: str, high: str, time: bool = False, margin: float = 1.0
) -> tuple[str, str]:
    """The claim "low < mid < high" (two comparisons; as strong as the weaker one)."""
    if time and not np.isfinite(table[[mid, low, high]].to_numpy()).any():
        return NOT_MEASURED, "the cost per epoch was not measured (--timing-budget 0)"
    f = fmt.seconds if time else fmt.num
    m, x, y = (median_ci(table[k]).median for k in (mid, low, high))
    first, second = _judge(table, low, mid, margin), _judge(table, mid, high, margin)
    verdict = compare.weakest([first.verdict, second.verdict])
    what = "median cost per epoch" if time else "median final loss"
    return VERDICT_OF.get(verdict, NOT_CONFIRMED), (
        f"{what}: {low} {f(x)}, {mid} {f(m)}, {high} {f(y)}; {first.evidence(low, mid)}; "
        f"{second.evidence(mid, high)}"
    )


def evaluate(runs: pd.DataFrame) -> list[Claim]:
    """The notebooks' claims against a runs table with `label` and `seed` columns."""
    loss = _per_seed(runs, "final_train_loss")
    time = _per_seed(runs, cost_column(runs))  # the cost measurement's, where there is one
    floor = floor_of(runs)
    claims = [
        Claim(
            "SGD (batch 1) ends lower than full-batch GD after 100 epochs",
            *_less(loss, "sgd", "gd"),
        ),
        Claim(
            "An SGD epoch costs more than a full-batch GD epoch",
            *_less(time, "gd", "sgd", time=True, margin=floor),
        ),
        Claim(
            "Minibatch (batch 4) ends between GD and SGD",
            *_between(loss, "minibatch", "sgd", "gd"),
        ),
        Claim(
            "A minibatch epoch costs between a GD and an SGD epoch",
            *_between(time, "minibatch", "gd", "sgd", time=True, margin=floor),
        ),
    ]
    for variant in ("momentum 0.1", "momentum 0.9", "nesterov 0.1", "nesterov 0.9"):
        verdict, evidence = _less(loss, variant, "sgd")
        diverged = int(np.isinf(loss[variant]).sum())
        if diverged:
            evidence += f"; {variant} diverged in {diverged} seeds"
        name = variant.replace("momentum", "Momentum").replace("nesterov", "Nesterov")
        claims.append(Claim(f"{name} (batch 1) ends lower than plain SGD", verdict, evidence))
    return claims


def to_frame(claims: Sequence[Claim]) -> pd.DataFrame:
    """claims.csv: one row per claim with its verdict and the numbers behind it."""
    return pd.DataFrame(
        [{"claim": c.text, "verdict": c.verdict, "evidence": c.evidence} for c in claims],
        columns=["claim", "verdict", "evidence"],
    )
