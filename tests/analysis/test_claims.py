"""The notebooks' claims, judged from the data by the one rule (`bench.analysis.claims`)."""

from __future__ import annotations

import math

import pandas as pd

from bench.analysis import claims


def claim_runs(loss: dict[str, list[float]], time: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "label": label,
                "seed": s,
                "final_train_loss": v,
                "median_epoch_time_s": time[label] * (1 + 0.01 * s),
            }
            for label, values in loss.items()
            for s, v in enumerate(values)
        ]
    )


LOSS = {  # five seeds: a one-sided sign test can reach p <= 0.05 (1/32)
    "gd": [100, 120, 90, 110, 95],
    "sgd": [2, 3, 2.5, 2.2, 2.8],
    "minibatch": [20, 25, 30, 22, 24],
    "momentum 0.1": [1.5, 2.5, 2, 2.1, 2.7],
    "momentum 0.9": [math.inf, 1, 1, 1, 1],  # one seed diverged: 4 of 5, p = 0.19
    "nesterov 0.1": [1.4, 2.4, 2.1, 2.1, 2.6],
    "nesterov 0.9": [5, 6, 7, 5, 6],
}
TIME = {
    "gd": 1e-4,
    "sgd": 4e-3,
    "minibatch": 1e-3,
    "momentum 0.1": 4e-3,
    "momentum 0.9": 4e-3,
    "nesterov 0.1": 4e-3,
    "nesterov 0.9": 4e-3,
}


def test_claims_are_judged_by_the_rule():
    verdicts = {c.text: c.verdict for c in claims.evaluate(claim_runs(LOSS, TIME))}
    assert verdicts == {
        "SGD (batch 1) ends lower than full-batch GD after 100 epochs": "confirmed",
        "An SGD epoch costs more than a full-batch GD epoch": "confirmed",
        "Minibatch (batch 4) ends between GD and SGD": "confirmed",
        "A minibatch epoch costs between a GD and an SGD epoch": "confirmed",
        "Momentum 0.1 (batch 1) ends lower than plain SGD": "confirmed",
        # median 1 < 2.5, but one seed diverged: 4 of 5 agree, p = 6/32 > 0.05
        "Momentum 0.9 (batch 1) ends lower than plain SGD": "not confirmed",
        "Nesterov 0.1 (batch 1) ends lower than plain SGD": "confirmed",
        "Nesterov 0.9 (batch 1) ends lower than plain SGD": "not confirmed",
    }


def test_three_seeds_are_at_best_suggestive():
    three = {k: v[:3] for k, v in LOSS.items()}
    result = {c.text: c for c in claims.evaluate(claim_runs(three, TIME))}
    sgd = result["SGD (batch 1) ends lower than full-batch GD after 100 epochs"]
    assert sgd.verdict == "suggestive"
    assert "sgd lower in 3 of 3 seeds, sign test p = 0.12 (one-sided)" in sgd.evidence
    assert "median [seeds' range] over 3 seeds" in sgd.evidence


def test_claims_table_carries_each_verdict():
    table = claims.to_frame(claims.evaluate(claim_runs(LOSS, TIME)))
    assert list(table.columns) == ["claim", "verdict", "evidence"]
    assert list(table["verdict"]).count("confirmed") == 6
    assert set(table["verdict"]) == {"confirmed", "not confirmed"}


def test_flipping_the_data_flips_the_verdicts():
    flipped_loss = {**LOSS, "gd": [1] * 5, "minibatch": [200] * 5}
    flipped_time = {**TIME, "gd": 1.0}
    result = {c.text: c for c in claims.evaluate(claim_runs(flipped_loss, flipped_time))}
    assert not result["SGD (batch 1) ends lower than full-batch GD after 100 epochs"].confirmed
    assert not result["An SGD epoch costs more than a full-batch GD epoch"].confirmed
    assert not result["Minibatch (batch 4) ends between GD and SGD"].confirmed
    assert not result["A minibatch epoch costs between a GD and an SGD epoch"].confirmed
    evidence = result["SGD (batch 1) ends lower than full-batch GD after 100 epochs"].evidence
    assert "sgd lower in 0 of 5 seeds" in evidence


def test_claim_runs_reproduce_the_notebook_setting():
    specs = claims.claim_specs([0, 1])
    assert len(specs) == 2 * len(claims.CLAIM_RUNS)
    by_label = {label: spec for label, spec in specs if spec.seed == 0}
    assert by_label["gd"].batch_size == 15  # all 15 rows, no hold-out
    assert by_label["sgd"].batch_size == 1
    assert by_label["minibatch"].batch_size == 4
    assert by_label["nesterov 0.1"].hparams_dict == {"lr": 1e-5, "momentum": 0.1, "nesterov": True}
    assert {s.epochs for _, s in specs} == {100}
    assert {s.holdout for _, s in specs} == {0.0}
    assert {(s.impl, s.device) for _, s in specs} == {("scratch", "cpu")}
    torch_specs = claims.claim_specs([0], impl="torch")
    assert {s.impl for _, s in torch_specs} == {"torch"}


def test_claims_apply_only_where_their_problem_is():
    assert claims.applies(["crops15", "diabetes"])
    assert not claims.applies(["diabetes", "path/to/table.csv", "crops5"])
