"""The one-screen summary (`bench.analysis.summary`) on tables made by hand."""

from __future__ import annotations

import math

import pandas as pd

from bench.analysis import summary


def tables(per_method: dict[str, list[float]], stars=(1.0, 2.0, 3.0), dataset="crops15",
           batch=None, n_train=12):  # fmt: skip
    """Runs and epochs of one problem: method m's seed i starts at 100 (epoch 0), stays at 50
    and reaches its seed's loss* exactly at the epoch listed (inf: never)."""
    runs, epochs = [], []
    for method, hits in per_method.items():
        for seed, hit in enumerate(hits):
            rid = f"{method}-{seed}"
            star = stars[seed]
            size = (batch or {}).get(method, 1 if method == "sgd" else n_train)
            runs.append(
                dict(run_id=rid, problem="p", dataset=dataset, model="linear", method=method,
                     impl="scratch", device="cpu", seed=seed, status="ok", loss_star=star,
                     final_train_loss=star if math.isfinite(hit) else 50.0,
                     final_holdout_loss=math.nan, n_train=n_train,
                     median_epoch_time_s=0.01 if method == "gd" else 0.04, batch_size=size,
                     epochs=10)
            )  # fmt: skip
            for e in range(11):
                loss = 100.0 if e == 0 else (star if e >= hit else 50.0)
                epochs.append(dict(run_id=rid, problem="p", epoch=e, train_loss=loss,
                                   elapsed_s=0.01 * e, method=method, impl="scratch",
                                   seed=seed, device="cpu", status="ok"))  # fmt: skip
    return pd.DataFrame(runs), pd.DataFrame(epochs)


def speed_row(out: summary.Summary) -> list[str]:
    return out.blocks[0].rows[0]


def test_each_seed_reaches_its_own_optimum_and_the_rule_names_the_first():
    runs, epochs = tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    out = summary.build(runs, epochs)
    assert speed_row(out) == ["p", "sgd 3 (suggestive)", "sgd 3 (suggestive)"]
    assert summary.answered(out.fastest["p"])
    timing = out.blocks[1]
    assert timing.rows[0][1] == "sgd 30 ms (suggestive)"
    assert timing.rows[0][2] == "4x"  # batch 1 / GD, every seed


def test_six_seeds_can_be_clear_and_disagreeing_seeds_are_a_tie():
    runs, epochs = tables({"gd": [8] * 6, "sgd": [2] * 6}, stars=(1.0,) * 6)
    assert speed_row(summary.build(runs, epochs))[1] == "sgd 2 (clear)"
    runs, epochs = tables({"gd": [3, 9, 4], "sgd": [2, 10, 5]})
    row = speed_row(summary.build(runs, epochs))
    assert row[1] == "gd 4 ~ sgd 5"  # the seeds disagree; no third method to lead


def test_nothing_reached_names_the_closest_and_never_a_loss_as_a_time():
    runs, epochs = tables({"gd": [math.inf] * 3, "sgd": [math.inf] * 3})
    out = summary.build(runs, epochs)
    assert speed_row(out)[1].startswith("none reached; closest: ")
    assert out.blocks[1].rows[0][1] == "none reached"
    assert out.fastest["p"] is None


def test_deterministic_problems_are_compared_directly_without_cost_rows():
    runs, epochs = tables(
        {"gd": [5], "momentum": [3], "adam": [7]}, stars=(0.0,), dataset="rosenbrock",
        batch={"gd": 1, "momentum": 1, "adam": 1}, n_train=1,
    )  # fmt: skip
    out = summary.build(runs, epochs)
    assert speed_row(out)[1] == "momentum 3 (exact)"
    assert out.intro.startswith("1 deterministic x 1 (p);")
    assert all(b.title.startswith(("Speed", "Generalisation")) for b in out.blocks)


def test_one_seed_of_a_random_problem_says_not_enough_seeds():
    runs, epochs = tables({"gd": [5], "sgd": [3]}, stars=(1.0,))
    assert speed_row(summary.build(runs, epochs))[1] == "sgd 3 (not enough seeds)"


def test_a_tie_of_many_methods_gets_no_verdict():
    hits = {"a": [2, 9, 9], "b": [9, 2, 9], "c": [9, 9, 2], "d": [3, 3, 3], "gd": [10, 10, 10]}
    out = summary.build(*tables(hits))
    assert speed_row(out)[1] == "d 3 ~ a 9 +2"
    assert not summary.answered(out.fastest["p"])


def test_edge_picks_are_marked_where_they_appear():
    runs, epochs = tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    out = summary.build(runs, epochs, edges={"p": {"sgd"}})
    assert speed_row(out)[:2] == ["p †", "sgd† 3 (suggestive)"]
    assert any(line.startswith("†:") for line in out.lines)


def test_summary_lists_divergence_as_an_anomaly():
    runs, epochs = tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    runs.loc[runs["run_id"] == "sgd-1", "status"] = "diverged"
    assert "Diverged runs: sgd on p (1 of 3)." in summary.build(runs, epochs).lines


def test_hold_out_accuracy_is_said_for_classification_problems_only():
    """A second problem with accuracy (classification) next to one without (regression): the
    generalisation table keeps three columns, and its note gives the classifier's accuracy."""
    runs, epochs = tables({"gd": [8, 9, 10], "sgd": [2, 3, 4]})
    runs["final_holdout_loss"] = runs["final_train_loss"] + 1.0
    runs["final_holdout_accuracy"] = math.nan
    clf = runs.assign(problem="c", run_id=runs["run_id"] + "-c")
    clf["final_holdout_accuracy"] = [0.5, 0.6, 0.7, 0.9, 0.92, 0.94]  # gd x 3, sgd x 3
    clf.loc[clf["method"] == "sgd", "final_holdout_loss"] -= 0.5  # sgd generalises best
    both = pd.concat([runs, clf], ignore_index=True)
    e2 = epochs.assign(problem="c", run_id=epochs["run_id"] + "-c")
    block = summary.build(both, pd.concat([epochs, e2])).blocks[2]
    assert block.header == ["problem", "lowest final hold-out loss", "its gap (hold-out − train)"]
    assert [r[0] for r in block.rows] == ["p", "c"]
    assert block.note.endswith("Its hold-out accuracy: c (sgd) 0.92 [0.9, 0.94].")


def test_primary_keeps_builtins_next_to_plugins_with_impl_torch():
    """`--impl torch` with a plug-in: the built-ins' only implementation is torch.optim's, and
    they stay in the summary next to the plug-in."""
    runs = pd.DataFrame(
        {
            "method": ["gd", "gd", "signsgd", "adam"],
            "impl": ["torch", "torch", "plugin", "torch-foreach"],
            "device": "cpu",
        }
    )
    assert sorted(summary.primary(runs)["method"]) == ["adam", "gd", "gd", "signsgd"]
    both = pd.concat([runs, runs.assign(impl="scratch")])
    assert set(summary.primary(both)["impl"]) == {"scratch"}
