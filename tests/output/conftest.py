"""Reports shared by the output tests: a tiny run (a few seconds), and the default suite and a
small sweep as a user gets them (about a minute each; marked slow where used)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cli

TINY = [
    "--datasets", "crops15", "--methods", "gd,sgd,momentum,adam", "--epochs", "5",
    "--seeds", "0,1,2", "--devices", "cpu", "--no-parity",
]  # fmt: skip
SMALL_SWEEP = [
    "--datasets", "crops15,diabetes", "--standardize", "--epochs", "30", "--decades", "1",
    "--points-per-decade", "1", "--select-seeds", "0", "--seeds", "0,1,2,3,4",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def default_report(tmp_path_factory) -> Path:
    """`python -m bench run` as `nox -s bench` runs it: the default suite, unchanged (its cost
    measured in 5 s instead of 20: the cross-check reads whatever was measured)."""
    out = tmp_path_factory.mktemp("default") / "out"
    assert cli.main(["run", "--timing-budget", "5", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> Path:
    """A sweep of crops15 and diabetes (so the notebooks' claims run), five rerun seeds."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    assert cli.main(["sweep", *SMALL_SWEEP, "--out", str(out)]) == 0
    return out
