"""Suite files are type-checked against one constraint table per record: every type error is
one ConfigError naming the key; a string is never taken for a boolean or a number."""

from __future__ import annotations

import pytest

from bench import cli
from bench.errors import ConfigError
from bench.run.config import PROBLEM_KEYS, SUITE_KEYS, suite_from_dict

P = {"dataset": "crops5"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"standardize": "false"}, "standardize must be true or false (a TOML boolean"),
        ({"problems": [{**P, "standardize": "false"}]}, "#1: standardize must be true or false"),
        ({"problems": [{**P, "hparams": 5}]}, "[[problems]] #1: hparams must be a table, got 5"),
        ({"problems": [{**P, "holdout": "abc"}]}, "holdout must be a number in [0, 1), got 'abc'"),
        ({"holdout": 1.5}, "holdout must be a number in [0, 1), got 1.5"),
        ({"epochs": 10.0}, "epochs must be an integer in [1, 1000000], got 10.0"),
        ({"epochs": True}, "epochs must be an integer in [1, 1000000], got True"),
        ({"epochs": 10**7}, "epochs must be an integer in [1, 1000000]"),
        ({"problems": [{**P, "batch_size": "4"}]}, "batch_size must be an integer >= 1"),
        ({"seeds": [0, "1"]}, "seeds must be a list of at most 1000 distinct integers"),
        ({"seeds": 3}, "seeds must be a list"),
        ({"seeds": [-1]}, "seeds must be a list"),
        ({"problems": 5}, "problems must be an array of tables"),
        ({"problems": [5]}, "problems must be an array of tables"),
        ({"sweep": 3}, "sweep must be a table"),
        ({"name": 3}, "name must be a string, got 3"),
        ({"methods": 3}, "methods must be a list of names, a comma-separated string or a table"),
        ({"hparams": {"lr": "0.1"}}, "[hparams]: lr must be a finite number, got '0.1'"),
        ({"hparams": {"nesterov": "yes"}}, "nesterov must be true or false"),
        ({"hparams": {"adam": {"betas": [0.9]}}}, "adam.betas must be a list of 2 numbers"),
        ({"hparams": {"adam": {"batch_size": 0}}}, "adam.batch_size must be an integer >= 1"),
        ({"problems": [{"model": "linear"}]}, "[[problems]] #1: needs a dataset"),
        ({"problems": [{**P, "colour": 1}]}, "[[problems]] #1: unknown key colour"),
    ],
)
def test_type_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        suite_from_dict(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_key_has_a_constraint_and_good_values_pass():
    assert {"standardize", "holdout", "hparams", "seeds"} <= set(SUITE_KEYS)
    assert {"dataset", "hparams", "holdout"} <= set(PROBLEM_KEYS)
    suite = suite_from_dict(
        {
            "standardize": True,
            "seeds": [0, 1],
            "epochs": 5,
            "hparams": {"lr": 1e-3, "nesterov": False, "adam": {"betas": [0.8, 0.99]}},
            "problems": [{**P, "holdout": 0, "standardize": False, "hparams": {"lr": 1}}],
        }
    )
    assert suite.standardize is True
    assert suite.problems[0].standardize is False


def test_a_toml_type_error_is_one_line_exit_2(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[[problems]]\ndataset = "crops5"\nhparams = 5\n')
    code = cli.main(["run", "--config", str(cfg), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {cfg}: [[problems]] #1: hparams must be a table, got 5\n"
    assert not (tmp_path / "o").exists()
