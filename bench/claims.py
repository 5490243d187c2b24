"""The notebooks' claims, tested on their own experiment.

Notebook 002 (exercises 4 and 5) trains the 15-row crops table with lr 1e-5 for 100 epochs
from one initial weight draw shared by all methods, and says: SGD (batch 1) reaches a better
loss than full-batch GD but each epoch is slower; minibatch trades between the two; momentum
and Nesterov (0.1 in the notebook) improve on plain SGD. We rerun exactly that (all 15 rows for
training, batch 1 for the momentum variants as in exercise 5, plus momentum 0.9) over several
seeds and state each claim as confirmed or not, with the numbers behind the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.report import fmt, fmt_time
from bench.spec import RunSpec, get_method
from bench.stats import median_ci

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


def claim_specs(seeds: Sequence[int]) -> list[tuple[str, RunSpec]]:
    """(label, spec) for every variant and seed of the notebooks' experiment."""
    from bench.problem import split_sizes

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
                hparams=tuple(sorted(params.items())),
                batch_size=size,
                epochs=CLAIM_EPOCHS,
                seed=seed,
                holdout=0.0,
            )
            out.append((label, spec))
    return out


@dataclass(frozen=True)
class Claim:
    text: str
    confirmed: bool
    evidence: str

    def markdown(self) -> str:
        verdict = "**confirmed**" if self.confirmed else "**not confirmed**"
        return f"{self.text}: {verdict}. {self.evidence}"


def _per_seed(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """label x seed table; a diverged or missing final loss counts as +inf (worst)."""
    table = runs.pivot_table(index="seed", columns="label", values=column, aggfunc="first")
    return table.astype(float).fillna(math.inf).replace(-math.inf, math.inf)


def _lower(loss: pd.DataFrame, a: str, b: str) -> tuple[bool, str]:
    ea, eb = median_ci(loss[a]), median_ci(loss[b])
    wins = int((loss[a] < loss[b]).sum())
    return ea.median < eb.median, (
        f"final training loss {a} {ea} vs {b} {eb} (median [95% interval] over "
        f"{len(loss)} seeds); {a} is lower in {wins} of {len(loss)} seeds"
    )


def _costlier(time: pd.DataFrame, a: str, b: str) -> tuple[bool, str]:
    ea, eb = median_ci(time[a]), median_ci(time[b])
    return ea.median > eb.median, (
        f"median epoch time {a} {_t(ea)} vs {b} {_t(eb)}, {ea.median / eb.median:.1f}x"
    )


def _t(est: Any) -> str:
    return f"{fmt_time(est.median)} [{fmt_time(est.lo)}, {fmt_time(est.hi)}]"


def evaluate(runs: pd.DataFrame) -> list[Claim]:
    """The notebooks' claims against a runs table with `label` and `seed` columns."""
    loss = _per_seed(runs, "final_train_loss")
    time = _per_seed(runs, "median_epoch_time_s")
    claims: list[Claim] = []

    ok, ev = _lower(loss, "sgd", "gd")
    claims.append(Claim("SGD (batch 1) ends lower than full-batch GD after 100 epochs", ok, ev))
    ok, ev = _costlier(time, "sgd", "gd")
    claims.append(Claim("An SGD epoch costs more than a full-batch GD epoch", ok, ev))

    m, g, s = (median_ci(loss[k]).median for k in ("minibatch", "gd", "sgd"))
    claims.append(
        Claim(
            "Minibatch (batch 4) ends between GD and SGD",
            min(g, s) < m < max(g, s),
            f"median final loss: gd {fmt(g)}, minibatch {fmt(m)}, sgd {fmt(s)}",
        )
    )
    m, g, s = (median_ci(time[k]).median for k in ("minibatch", "gd", "sgd"))
    claims.append(
        Claim(
            "A minibatch epoch costs between a GD and an SGD epoch",
            min(g, s) < m < max(g, s),
            f"median epoch time: gd {fmt_time(g)}, minibatch {fmt_time(m)}, sgd {fmt_time(s)}",
        )
    )
    for variant in ("momentum 0.1", "momentum 0.9", "nesterov 0.1", "nesterov 0.9"):
        ok, ev = _lower(loss, variant, "sgd")
        diverged = int(np.isinf(loss[variant]).sum())
        if diverged:
            ev += f"; {variant} diverged in {diverged} seeds"
        name = variant.replace("momentum", "Momentum").replace("nesterov", "Nesterov")
        claims.append(Claim(f"{name} (batch 1) ends lower than plain SGD", ok, ev))
    return claims
