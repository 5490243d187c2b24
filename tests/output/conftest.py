"""A tiny run through the CLI, shared by the report tests (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cli

TINY = [
    "--datasets", "crops15", "--methods", "gd,sgd,momentum,adam", "--epochs", "5",
    "--seeds", "0,1,2", "--devices", "cpu", "--no-parity",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    return out
