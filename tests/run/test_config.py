"""Suite config: hyperparameter layering, problem names and selection, duplicates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.errors import ConfigError
from bench.run.config import (
    DEFAULT_SUITE,
    Overrides,
    Problem,
    Suite,
    apply_overrides,
    check_numbers,
    suite_from_dict,
    suite_from_toml,
)


def hp(spec) -> dict:
    return spec.hparams_dict


@pytest.fixture(scope="module")
def default_suite() -> Suite:
    return suite_from_toml(DEFAULT_SUITE)


LAYERED = {
    "name": "layers",
    "methods": ["gd", "momentum", "adam"],
    "seeds": [0],
    "hparams": {"lr": 0.1, "momentum": 0.5, "adam": {"lr": 0.2}},
    "problems": [
        {"dataset": "crops15", "hparams": {"lr": 0.3, "momentum": {"momentum": 0.7}}},
        {"dataset": "sales15"},
    ],
}


def test_layers_later_wins_method_defaults_suite_problem_tables():
    suite = suite_from_dict(LAYERED)
    by = {(s.problem, s.method): s for s in suite.expand() if s.impl == "scratch"}
    assert hp(by["crops15", "gd"]) == {"lr": 0.3}  # problem beats suite; momentum not applied
    assert hp(by["crops15", "momentum"]) == {"lr": 0.3, "momentum": 0.7}  # problem method table
    assert hp(by["crops15", "adam"])["lr"] == 0.2  # suite method table beats problem generic
    assert hp(by["sales15", "gd"]) == {"lr": 0.1}
    assert hp(by["sales15", "momentum"]) == {"lr": 0.1, "momentum": 0.5}


def test_command_line_flags_beat_every_layer_of_the_file():
    suite = apply_overrides(suite_from_dict(LAYERED), Overrides(lr=0.01, momentum=0.2))
    for s in suite.expand():
        assert s.lr == 0.01, s
        if s.method == "momentum":
            assert hp(s)["momentum"] == 0.2


def test_problem_names_are_the_dataset_for_linear_and_dataset_model_otherwise(default_suite):
    names = [p.label for p in default_suite.problems]
    assert {"crops15", "crops15-mlp"} <= set(names)
    assert len(names) == len(set(names))


def test_datasets_flag_means_the_linear_problem_with_its_own_learning_rates(default_suite):
    suite = apply_overrides(default_suite, Overrides(datasets=("crops15",)))
    (problem,) = suite.problems
    assert (problem.label, problem.model) == ("crops15", "linear")
    adam = next(s for s in suite.expand() if s.method == "adam")
    assert (adam.model, adam.lr, adam.problem) == ("linear", 0.1, "crops15")  # linear's adam lr


def test_datasets_with_model_takes_that_exact_problem(default_suite):
    suite = apply_overrides(default_suite, Overrides(datasets=("crops15",), model="mlp"))
    (problem,) = suite.problems
    assert problem.label == "crops15-mlp"
    adam = next(s for s in suite.expand() if s.method == "adam")
    assert (adam.model, adam.lr) == ("mlp", 0.01)  # the MLP problem's adam lr


def test_datasets_not_in_the_suite_is_a_fresh_problem(default_suite):
    suite = apply_overrides(default_suite, Overrides(datasets=("crops15",), model="mlp:hidden=8"))
    (problem,) = suite.problems
    assert (problem.label, problem.hparams) == ("crops15-mlp-hidden8", {})


def test_problems_flag_selects_by_name(default_suite):
    suite = apply_overrides(default_suite, Overrides(problems=("crops15-mlp", "sales5")))
    assert [p.label for p in suite.problems] == ["crops15-mlp", "sales5"]
    with pytest.raises(ConfigError, match=r"no problem named 'nope'.*known: crops5"):
        apply_overrides(default_suite, Overrides(problems=("nope",)))
    with pytest.raises(ConfigError, match="not both"):
        apply_overrides(default_suite, Overrides(problems=("sales5",), datasets=("crops5",)))


def test_duplicate_problem_names_in_a_suite_are_an_error():
    data = {"problems": [{"dataset": "crops15"}, {"dataset": "crops15"}]}
    with pytest.raises(ConfigError, match="duplicate problem names: crops15"):
        suite_from_dict(data)
    named = {"problems": [{"dataset": "crops15"}, {"dataset": "crops15", "name": "crops15-b"}]}
    assert [p.label for p in suite_from_dict(named).problems] == ["crops15", "crops15-b"]


@pytest.mark.parametrize(
    ("overrides", "what"),
    [
        (Overrides(seeds=(0, 1, 0)), "--seeds: 0"),
        (Overrides(datasets=("crops5", "crops5")), "--datasets: crops5"),
    ],
)
def test_duplicate_flag_values_are_an_error(default_suite, overrides, what):
    with pytest.raises(ConfigError, match=f"duplicate {what}"):
        check_numbers(overrides)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("methods", ["gd", "adam", "gd"], "duplicate methods: gd"),
        ("impl", ["scratch", "scratch"], "duplicate impl: scratch"),
        ("seeds", [1, 1], "duplicate seeds: 1"),
    ],
)
def test_duplicates_in_a_suite_file_are_an_error(key, value, message):
    with pytest.raises(ConfigError, match=message):
        suite_from_dict({key: value, "problems": [{"dataset": "crops5"}]})


def test_two_csv_files_with_one_stem_are_two_problems(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_text("u,v,y\n1,2,3\n2,1,4\n3,3,5\n4,0,6\n")
    paths = tuple(str(tmp_path / f / "x.csv") for f in ("a", "b"))
    suite = apply_overrides(Suite(methods=("gd",)), Overrides(datasets=paths, targets=("y",)))
    labels = [p.label for p in suite.problems]
    assert [label[-3:] for label in labels] == ["a/x", "b/x"]
    specs = suite.expand()
    assert {s.problem for s in specs} == set(labels)


def test_spec_problem_name_is_a_label_and_never_changes_the_run_id():
    suite = Suite(problems=(Problem("crops5"),), methods=("gd",), seeds=(0,), impls=("scratch",))
    spec = suite.expand()[0]
    assert replace(spec, problem="other").run_id == spec.run_id
    assert replace(spec, seed=1).run_id != spec.run_id
