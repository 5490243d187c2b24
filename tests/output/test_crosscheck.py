"""No summary sentence contradicts its own tables: every cell of the summary of the default
report and of a small sweep, recomputed from the CSVs it came from (`crosscheck`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.output import crosscheck

pytestmark = pytest.mark.slow


def test_the_default_report_says_what_its_tables_say(default_report: Path):
    checked, answered = crosscheck.check_run(default_report)
    problems = pd.read_csv(default_report / "runs.csv")["problem"].nunique()
    assert problems == 12
    assert checked >= 3 * problems
    # The first screen answers "which is fastest" for at least 10 of the 12 problems: a named
    # method, or a tie of at most three that leads every other method in every seed.
    assert len(answered) >= 10, answered


def test_a_small_sweep_report_says_what_its_tables_say(small_sweep: Path):
    checked, _ = crosscheck.check_sweep(small_sweep)
    assert checked >= 10
    claims = pd.read_csv(small_sweep / "claims.csv")
    assert len(claims) == 8  # crops15 is swept, so the notebooks' claims ran


def test_the_cross_check_catches_a_report_that_contradicts_its_tables(
    tiny_report: Path, tmp_path: Path
):
    """The check can fail: swap the named method of the first speed cell for another."""
    crosscheck.check_run(tiny_report)
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("runs.csv", "epochs.csv"):
        (bad / name).write_bytes((tiny_report / name).read_bytes())
    md = (tiny_report / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| crops15 | "))
    cell = row.split("|")[2].strip()
    named = crosscheck.parse_cell(cell)["names"][0] if not cell.startswith("none") else None
    swapped = cell.replace(named, "adam" if named != "adam" else "gd") if named else "gd 1 (exact)"
    (bad / "report.md").write_text(md.replace(row, row.replace(cell, swapped, 1)))
    with pytest.raises(AssertionError):
        crosscheck.check_run(bad)
