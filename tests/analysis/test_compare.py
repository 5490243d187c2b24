"""The clear-difference rule and the one-screen summary, on tables made by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.analysis import summary
from bench.analysis.compare import clearly_less, paired_ratio, ranked


def s(*values: float) -> pd.Series:
    return pd.Series(values, index=range(len(values)), dtype=float)


@pytest.mark.parametrize(
    ("a", "b", "clear"),
    [
        (s(1, 2, 3), s(4, 5, 6), True),  # intervals (seeds' ranges) do not overlap
        (s(1, 5, 3), s(2, 6, 4), True),  # overlap, but every seed is lower
        (s(1, 6, 3), s(2, 5, 4), False),  # overlap and one seed in three disagrees
        (s(1, 5), s(2, 6), False),  # two seeds agreeing is not enough
        (s(1), s(9), False),  # one seed: no interval, no claim
        (s(4, 5, 6), s(1, 2, 3), False),  # the other way round
        (s(1, 2, 3), s(math.inf, math.inf, math.inf), True),  # never is the worst
    ],
)
def test_clearly_less(a, b, clear):
    assert clearly_less(a, b) is clear


def test_ranked_names_the_ties():
    best, est, ties, clear = ranked({"gd": s(10, 11, 12), "sgd": s(9, 12, 13), "adam": s(1, 2, 3)})
    assert (best, est.median, ties, clear) == ("adam", 2.0, [], True)
    best, _, ties, clear = ranked({"gd": s(29.7, 29.8, 29.9), "sgd": s(29.4, 29.9, 29.5)})
    assert (best, ties, clear) == ("sgd", ["gd"], False)
    assert ranked({"gd": s(math.inf, math.inf)}) is None


def test_paired_ratio_is_per_seed():
    r = paired_ratio(s(2, 4, 6), s(1, 2, 3))
    assert (r.median, r.lo, r.hi) == (2.0, 2.0, 2.0)


def _tables(per_method: dict[str, list[float]], stars=(1.0, 2.0, 3.0)):
    """Runs and epochs of a 1-problem run: method m's seed i goes from 10 to its value at
    epoch 1, then reaches loss* x 1.005 at the epoch listed."""
    runs, epochs = [], []
    for method, hits in per_method.items():
        for seed, hit in enumerate(hits):
            rid = f"{method}-{seed}"
            star = stars[seed]
            runs.append(
                dict(run_id=rid, problem="p", method=method, impl="scratch", device="cpu",
                     seed=seed, status="ok", loss_star=star, final_train_loss=star * 1.005,
                     final_holdout_loss=math.nan, median_epoch_time_s=0.01 if method == "gd"
                     else 0.04, batch_size=1 if method == "sgd" else 10, epochs=10)
            )  # fmt: skip
            for e in range(11):
                loss = 10.0 if e < hit else star * 1.005
                epochs.append(dict(run_id=rid, problem="p", epoch=e, train_loss=loss,
                                   elapsed_s=0.01 * e, method=method, impl="scratch",
                                   seed=seed, device="cpu"))  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def test_summary_uses_each_seeds_own_optimum_and_states_only_clear_differences():
    runs, epochs = _tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    out = summary.build(runs, epochs)
    speed = out.blocks[0]
    assert speed.rows == [["p (2/2)", "sgd 3 [2, 4]", "sgd 30 ms [20 ms, 40 ms]"]]
    cost = out.blocks[1]
    assert cost.rows[0][2] == "4x, B=1"
    runs, epochs = _tables({"gd": [3, 9, 4], "sgd": [2, 10, 5]})
    row = summary.build(runs, epochs).blocks[0].rows[0]
    assert row[1] == "gd 4 [3, 9] ~ sgd"  # overlapping and the seeds disagree: a tie


def test_summary_lists_divergence_as_an_anomaly():
    runs, epochs = _tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    runs.loc[runs["run_id"] == "sgd-1", "status"] = "diverged"
    lines = summary.build(runs, epochs).lines
    assert "Diverged runs: sgd on p (1 of 3)." in lines


def test_hold_out_accuracy_is_said_for_classification_problems_only():
    """A second problem with accuracy (classification) next to one without (regression): the
    generalisation table keeps three columns, and its note gives the classifier's accuracy."""
    runs, epochs = _tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    runs["final_holdout_loss"] = runs["final_train_loss"] + 1.0
    runs["final_holdout_accuracy"] = math.nan
    clf = runs.assign(problem="c", run_id=runs["run_id"] + "-c")
    clf["final_holdout_accuracy"] = [0.5, 0.6, 0.7, 0.9, 0.92, 0.94]  # gd x 3, sgd x 3
    clf.loc[clf["method"] == "sgd", "final_holdout_loss"] -= 0.5  # sgd generalises best
    both = pd.concat([runs, clf], ignore_index=True)
    block = summary.build(both, pd.concat([epochs, epochs.assign(problem="c")])).blocks[2]
    assert block.header == ["problem", "lowest hold-out loss", "its gap (hold-out - train)"]
    assert [r[0] for r in block.rows] == ["p", "c"]
    assert block.note.endswith("Hold-out accuracy of that method: c (sgd) 0.92 [0.9, 0.94].")
