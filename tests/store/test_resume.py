"""Kill a real `python -m bench run` mid-suite (SIGKILL, SIGTERM), run the same command again:
the tables equal an uninterrupted run's and only the unfinished runs are recomputed."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import cli
from bench.schema import TIMING_COLUMNS

REPO = Path(__file__).resolve().parent.parent.parent
ARGS = [
    "run", "--datasets", "crops15", "--methods", "gd,sgd,adam", "--impl", "scratch,torch",
    "--epochs", "80", "--seeds", "0,1", "--devices", "cpu", "--no-parity",
]  # fmt: skip
TOTAL = 12
TIMING = TIMING_COLUMNS


def stored(out: Path) -> int:
    try:
        with sqlite3.connect(out / "store.sqlite", timeout=30) as db:
            return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    read = [pd.read_csv(out / name) for name in ("epochs.csv", "runs.csv")]
    return tuple(t.drop(columns=[c for c in TIMING if c in t]) for t in read)  # type: ignore


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "uninterrupted"
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    return out


def interrupt(out: Path, sig: int) -> tuple[int, str]:
    """Start the command, wait until 2 runs are stored, send `sig`; (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", *ARGS, "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while stored(out) < 2:
            assert proc.poll() is None, f"ended before it could be interrupted: {proc.stderr}"
            assert time.monotonic() < deadline, "no run stored within 240 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_an_interrupted_suite_resumes_to_the_uninterrupted_tables(sig, reference, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = interrupt(out, sig)
    done = stored(out)
    assert 2 <= done < TOTAL, "the signal must land mid-suite"
    if sig == signal.SIGTERM:
        assert code == 143, err
        assert err.strip().splitlines()[-1] == (
            f"interrupted (SIGTERM): {done} of {TOTAL} runs are in {out / 'store.sqlite'}; "
            "run the same command again to finish"
        )
    else:
        assert code == -signal.SIGKILL
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    message = capsys.readouterr().err
    assert f"optbench: {done} of {TOTAL} runs reused from {out / 'store.sqlite'}" in message
    assert re.search(rf"{TOTAL} runs \(0 diverged; {done} reused\)", message)
    for resumed, uninterrupted in zip(tables(out), tables(reference), strict=True):
        pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True)
    assert not list(out.glob(".optbench-tmp-*"))
