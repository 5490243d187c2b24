"""The output folder under kills and races: a SIGKILL before any step of opening or publishing
leaves a folder the same command then completes, with the outputs of an uninterrupted run; a
thousand racing opens lose nothing.

A kill is injected by standing in for the `os` module of `bench.output.files` (and of
`bench.output.history`) in a forked process: the k-th call that changes the disk kills the
process with SIGKILL before it happens. Every k is tried until the command completes.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import signal
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import cli
from bench.errors import ConfigError
from bench.output import files, history
from bench.output.files import LOCK, MARKER, TMP_PREFIX, OutputFolder
from bench.store import Store

MUTATING = {"mkdir", "rmdir", "write", "replace", "rename", "unlink", "ftruncate", "symlink"}
MAX_STEPS = 200


class KillAt:
    """`os`, except that the k-th call changing the disk (an `open` that may create counts)
    sends SIGKILL to this process instead of happening."""

    def __init__(self, k: int) -> None:
        self.k, self.n = k, 0

    def __getattr__(self, name: str):
        real = getattr(os, name)
        if name not in MUTATING and name != "open":
            return real

        def call(*args, **kwargs):
            flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
            if name != "open" or flags & os.O_CREAT:
                self.n += 1
                if self.n == self.k:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return call


def killed_at(k: int, command: Callable[[], object]) -> bool:
    """Run `command` in a forked process killed at the k-th step; True if it was killed,
    False if it completed first (k is past its last step)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            files.os = history.os = KillAt(k)  # type: ignore[assignment]
            command()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the command failed without being killed"
    return False


def dump(store: Path) -> bytes:
    """A store's rows, table by table, in a canonical order (its bytes also count the
    transactions that wrote them)."""
    with contextlib.closing(sqlite3.connect(store)) as db:
        tables = {
            table: sorted(map(repr, db.execute(f"SELECT * FROM {table}")))
            for table in ("runs", "epochs", "manifest", "meta")
        }
    return json.dumps(tables).encode()


def snapshot(folder: Path) -> dict[str, bytes]:
    """The folder's files (not the lock: it holds a pid and a journal; the store as its rows),
    timestamps and plotly's random element ids blanked, and its marker's file list."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.name in (LOCK, MARKER) or not path.is_file():
            continue
        data = dump(path) if path.suffix == ".sqlite" else path.read_bytes()
        if path.suffix in (".md", ".html", ".json"):
            data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", b"<time>", data)
            data = re.sub(rb"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", b"<uuid>", data)  # plotly
        out[path.name] = data
    out[MARKER] = json.dumps(sorted(json.loads((folder / MARKER).read_text())["files"])).encode()
    return out


def differences(expected: dict[str, bytes], got: dict[str, bytes]) -> str:
    """What differs between two snapshots: the lines of report.md and the names of the rest."""
    names = sorted(n for n in expected.keys() | got.keys() if expected.get(n) != got.get(n))
    lines = []
    if "report.md" in names:
        old, new = (s.get("report.md", b"").decode().splitlines() for s in (expected, got))
        lines = list(difflib.unified_diff(old, new, lineterm="", n=0))[2:]
    return f"differing: {names}; report.md: " + "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# An OutputFolder publishing over an earlier output, killed at every step


OLD = {"report.md": "one", "runs.csv": "a,b\n1,2\n", "old.png": "png"}
NEW = {"report.md": "two", "runs.csv": "a,b\n3,4\n", "new.csv": "c\n5\n"}


def publish(out: Path, contents: dict[str, str]) -> None:
    with OutputFolder.open(out, "run", "python -m bench run --test") as folder:
        folder.own("store.sqlite")
        with folder.staged() as stage:
            for name, text in contents.items():
                (stage / name).write_text(text)


@pytest.mark.parametrize("start", ["new-folder", "earlier-output"])
def test_a_kill_at_any_step_of_publishing_leaves_a_folder_the_same_command_completes(
    tmp_path, start
):
    def initial(out: Path) -> None:
        if start == "earlier-output":
            publish(out, OLD)
            (out / "notes.txt").write_text("user's")
            (out / f"{TMP_PREFIX}mine").write_text("user's")

    reference = tmp_path / "reference"
    initial(reference)
    publish(reference, NEW)
    expected = snapshot(reference)
    steps = 0
    for k in range(1, MAX_STEPS):
        out = tmp_path / f"k{k}"
        initial(out)
        if not killed_at(k, lambda out=out: publish(out, NEW)):
            break
        steps = k
        if out.exists():  # never a half file: each output is absent, the old or the new one
            for name in set(OLD) | set(NEW):
                if (out / name).exists():
                    assert (out / name).read_text() in (OLD.get(name), NEW.get(name)), (k, name)
        publish(out, NEW)  # the same command again
        assert snapshot(out) == expected, f"killed at step {k}"
        assert sorted(p.name for p in out.glob(f"{TMP_PREFIX}*")) == (
            [f"{TMP_PREFIX}mine"] if start == "earlier-output" else []
        ), k
    assert steps >= 10, "the kill must have landed at every step of opening and publishing"


# ---------------------------------------------------------------------------------------------
# `python -m bench run` killed at every step of opening, publishing and linking its folder

# No cost measurement: each command measures it afresh, so two outputs differ in it by design.
ARGS = [
    "run", "--datasets", "crops5", "--methods", "gd", "--impl", "scratch", "--epochs", "2",
    "--seeds", "0", "--devices", "cpu", "--no-parity", "--timing-budget", "0",
]  # fmt: skip
OUTPUTS = {"report.md", "report.html", "runs.csv", "epochs.csv", "env.json", "store.sqlite"}


@pytest.mark.slow
def test_a_killed_command_leaves_results_the_same_command_completes(tmp_path, monkeypatch):
    """Without --out: each command writes a new folder under results/ and links results/latest
    to it when complete. Killed at any step, results/latest still points at a complete output
    and the killed command's folder is accepted (opened, recovered, its store read); the same
    command then completes with outputs equal to an uninterrupted run's. (The rerun writes a
    folder of its own, so one rerun after all the kills stands for each.)"""
    monkeypatch.chdir(tmp_path)
    assert cli.main(ARGS) == 0  # computes the run into results/store.sqlite
    expected = snapshot(Path("results/latest").resolve())
    assert set(expected) >= OUTPUTS
    steps = 0
    for k in range(1, MAX_STEPS):
        before = set(Path("results").iterdir())
        if not killed_at(k, lambda: cli.main(ARGS)):
            break
        steps = k
        latest = Path("results/latest").resolve()
        assert {p.name for p in latest.iterdir()} >= OUTPUTS, f"latest incomplete at step {k}"
        for folder in set(Path("results").iterdir()) - before:
            if folder.name.startswith("run-") and folder.resolve() != latest:
                OutputFolder.open(folder, "run", "accepted?").close()  # valid, recovered
                Store(folder / "store.sqlite").close()
                shutil.rmtree(folder)
    assert steps >= 10
    assert cli.main(ARGS) == 0
    assert snapshot(Path("results/latest").resolve()) == expected


@pytest.mark.slow
def test_a_command_killed_while_updating_its_out_folder_is_completed_by_the_same_command(
    tmp_path, monkeypatch
):
    """`run --out out` over out's earlier output (its runs reused from out's store), killed at
    any step: the same command then completes, and out's outputs equal an uninterrupted
    run's. (On main, a kill after the files land wedged the folder: `error: out/env.json was
    not written by optbench`, for that command and for `report`.)"""
    command = [*ARGS, "--out", "out"]
    reference = tmp_path / "reference"
    reference.mkdir()
    monkeypatch.chdir(reference)
    assert cli.main(command) == 0
    assert cli.main(command) == 0  # the update, uninterrupted
    expected = snapshot(reference / "out")
    steps = 0
    for k in range(1, MAX_STEPS):
        here = tmp_path / f"k{k}"
        shutil.copytree(reference, here)
        monkeypatch.chdir(here)
        if not killed_at(k, lambda: cli.main(command)):
            break
        steps = k
        assert cli.main(command) == 0, f"the same command failed after a kill at step {k}"
        got = snapshot(here / "out")
        assert got == expected, (k, differences(expected, got))
        assert not list((here / "out").glob(f"{TMP_PREFIX}*")), k
        shutil.rmtree(here)
    assert steps >= 10


# ---------------------------------------------------------------------------------------------
# Racing opens


def test_a_thousand_racing_opens_lose_nothing(tmp_path):
    """20 rounds of 50 threads opening one new nested folder at once: exactly one wins each
    round and keeps its lock, marker and folder while every other one is refused as "in use"
    (it removes nothing), then publishes; the folder opens again afterwards."""
    rounds, racers = 20, 50
    for r in range(rounds):
        out = tmp_path / f"round{r}" / "a" / "b"
        start, tried = threading.Barrier(racers), threading.Barrier(racers)
        outcomes: list[str] = [""] * racers

        def race(i: int, out: Path = out, start=start, tried=tried, outcomes=outcomes) -> None:
            start.wait()
            try:
                folder = OutputFolder.open(out, "run", f"racer {i}")
            except ConfigError as exc:
                outcomes[i] = str(exc)
                tried.wait()
                return
            try:
                tried.wait()  # every other racer has tried while this one holds the folder
                lock = os.fstat(folder._lock_fd)
                now = os.lstat(out / LOCK)
                assert (now.st_dev, now.st_ino) == (lock.st_dev, lock.st_ino)
                assert json.loads((out / MARKER).read_text())["command"] == f"racer {i}"
                with folder.staged() as stage:
                    (stage / "report.md").write_text(f"racer {i}")
                outcomes[i] = "won"
            except BaseException as exc:  # reported by the assertions below
                outcomes[i] = f"winner failed: {exc!r}"
            finally:
                folder.close()

        threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, o in enumerate(outcomes) if o == "won"]
        assert len(winners) == 1, (r, sorted(set(outcomes)))
        others = {o for o in outcomes if o != "won"}
        assert all("is in use by another optbench" in o for o in others), (r, others)
        assert (out / "report.md").read_text() == f"racer {winners[0]}"
        OutputFolder.open(out, "run", "after").close()
