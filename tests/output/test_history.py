"""Output folders that keep history (issue 20): a command without --out writes its own new
folder under results/, links results/latest (run) or results/sweep (sweep) to it once complete,
and shares finished runs with every such command through results/store.sqlite; each folder's
own store holds exactly its runs, so it can be reported and queried alone."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from bench import cli
from bench.output import history
from bench.output.files import MARKER
from bench.schema import TIMING_COLUMNS
from tests.interrupting import Interrupting

# No cost measurement: each command measures it afresh, so two outputs differ in it by design.
ONE = [
    "--datasets", "crops5", "--methods", "gd", "--impl", "scratch", "--epochs", "2",
    "--devices", "cpu", "--no-parity", "--timing-budget", "0",
]  # fmt: skip


def run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def folders(kind: str = "run") -> list[Path]:
    return sorted(p for p in Path("results").iterdir() if p.name.startswith(f"{kind}-"))


def store_keys(path: Path) -> tuple[set[str], list[str]]:
    """(keys of the runs table, keys of the manifest) of a store file."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        runs = {k for (k,) in db.execute("SELECT key FROM runs")}
        manifest = [k for (k,) in db.execute("SELECT key FROM manifest ORDER BY position")]
    return runs, manifest


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "results"


def test_each_command_writes_its_own_folder_and_latest_follows(results, capsys):
    code, err = run(capsys, "run", *ONE, "--seeds", "0,1")
    assert code == 0, err
    (first,) = folders()
    assert first.name.startswith("run-default-")
    assert (results / "latest").is_symlink()
    assert (results / "latest").resolve() == first.resolve()
    assert f"optbench: results/latest -> {first.name}" in err
    code, err = run(capsys, "run", *ONE, "--seeds", "1,2")  # overlaps the first
    assert code == 0, err
    assert "optbench: 1 of 2 runs reused from results/store.sqlite; computing 1" in err
    first_, second = folders()
    assert first_ == first, "the earlier output is kept"
    assert (results / "latest").resolve() == second.resolve()
    assert set(pd.read_csv(first / "runs.csv")["seed"]) == {0, 1}
    assert set(pd.read_csv(second / "runs.csv")["seed"]) == {1, 2}
    shared, _ = store_keys(results / "store.sqlite")
    for folder in (first, second):  # each folder's store: exactly its runs, all in the cache
        runs, manifest = store_keys(folder / "store.sqlite")
        assert runs == set(manifest)
        assert len(runs) == 2
        assert runs <= shared
    assert len(shared) == 3


def test_a_history_folder_stands_alone(results, capsys, tmp_path):
    assert run(capsys, "run", *ONE, "--seeds", "0")[0] == 0
    (folder,) = folders()
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(folder, moved)
    shutil.rmtree(results)  # the shared cache and the link are gone
    expected = pd.read_csv(moved / "epochs.csv")
    (moved / "epochs.csv").unlink()
    code, err = run(capsys, "report", str(moved))
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(moved / "epochs.csv"), expected, check_exact=True)


def test_repeating_a_command_reuses_every_run_and_equals_the_first_output(results, capsys):
    assert run(capsys, "run", *ONE, "--seeds", "0,1")[0] == 0
    code, err = run(capsys, "run", *ONE, "--seeds", "0,1")
    assert code == 0, err
    assert "optbench: 2 of 2 runs reused from results/store.sqlite" in err
    first, second = folders()
    for name in ("epochs.csv", "runs.csv"):
        a, b = (pd.read_csv(f / name) for f in (first, second))
        pd.testing.assert_frame_equal(a, b, check_exact=True)  # timings too: the same rows
    code, err = run(capsys, "run", *ONE, "--seeds", "0,1", "--fresh")
    assert code == 0, err
    assert "reused from" not in err


def test_two_commands_in_the_same_second_get_their_own_folders(tmp_path):
    now = datetime(2026, 12, 2, 12, 48, 0, tzinfo=timezone.utc)
    opened = []
    lock = threading.Lock()

    def one() -> None:
        folder = history.new_folder(tmp_path, "run-default", "run", "python -m bench run", now)
        with lock:
            opened.append(folder)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(f.path.name for f in opened)
    base = "run-default-20261202T124800Z"
    assert names == sorted([base] + [f"{base}-{i}" for i in range(2, 9)])
    for folder in opened:
        folder.close()


def test_a_sweep_links_results_sweep_and_leaves_latest(results, capsys):
    assert run(capsys, "run", *ONE, "--seeds", "0")[0] == 0
    latest = (results / "latest").resolve()
    argv = [
        "sweep", "--datasets", "crops15", "--methods", "gd", "--epochs", "2", "--seeds", "0",
        "--select-seeds", "0", "--decades", "0.5", "--points-per-decade", "1", "--no-claims",
    ]  # fmt: skip
    code, err = run(capsys, *argv)
    assert code == 0, err
    (sweep,) = folders("sweep")
    assert (results / "sweep").resolve() == sweep.resolve()
    assert (results / "latest").resolve() == latest
    assert (results / "sweep" / "sweep.csv").is_file()


def test_a_real_folder_at_the_link_name_is_never_touched(results, capsys):
    """A results/latest from an older optbench (a marked folder, not a link) stays as it is;
    the new output goes to its own folder and the command says where."""
    old = results / "latest"
    assert run(capsys, "run", *ONE, "--seeds", "0", "--out", str(old))[0] == 0
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    code, err = run(capsys, "run", *ONE, "--seeds", "0")
    assert code == 0, err
    (folder,) = folders()
    assert (
        f"optbench: results/latest is not a link optbench made (an older optbench's folder?); "
        f"left as it is: this output is in {folder}"
    ) in err
    assert not old.is_symlink()
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before


def test_a_users_link_is_never_replaced_and_a_dangling_one_of_ours_is(results, capsys, tmp_path):
    results.mkdir()
    mine = tmp_path / "mine"
    mine.mkdir()
    (results / "latest").symlink_to(mine)
    code, err = run(capsys, "run", *ONE, "--seeds", "0")
    assert code == 0, err
    assert "results/latest is a symlink optbench did not make; left as it is" in err
    assert (results / "latest").resolve() == mine.resolve()
    (results / "latest").unlink()
    (results / "latest").symlink_to("run-default-20000101T000000Z")  # ours; folder deleted
    assert run(capsys, "run", *ONE, "--seeds", "0")[0] == 0
    assert (results / "latest").resolve() == folders()[-1].resolve()


def test_an_interrupted_command_leaves_no_folder_and_resumes_from_the_cache(
    results, capsys, monkeypatch
):
    assert run(capsys, "run", *ONE, "--seeds", "9")[0] == 0
    latest = (results / "latest").resolve()
    monkeypatch.setitem(cli.executors.EXECUTORS, "interrupting", Interrupting)
    code, err = run(capsys, "run", *ONE, "--seeds", "0,1,2", "--executor", "interrupting")
    assert code == 130
    assert err.splitlines()[-1] == (
        "interrupted (Ctrl-C): 1 of 3 runs are in results/store.sqlite; "
        "run the same command again to finish"
    )
    assert len(folders()) == 1, "the interrupted command's folder is removed"
    assert (results / "latest").resolve() == latest
    code, err = run(capsys, "run", *ONE, "--seeds", "0,1,2")
    assert code == 0, err
    assert "optbench: 1 of 3 runs reused from results/store.sqlite; computing 2" in err
    runs, manifest = store_keys(folders()[-1] / "store.sqlite")
    assert runs == set(manifest)
    assert len(runs) == 3


def test_out_keeps_its_own_rules(results, capsys, tmp_path):
    out = tmp_path / "mine"
    assert run(capsys, "run", *ONE, "--seeds", "0", "--out", str(out))[0] == 0
    assert not results.exists(), "--out neither writes nor reads results/"
    code, err = run(capsys, "run", *ONE, "--seeds", "0,1", "--out", str(out))
    assert code == 0, err
    assert f"optbench: 1 of 2 runs reused from {out / 'store.sqlite'}" in err


def test_a_foreign_shared_store_is_refused_before_any_folder(results, capsys):
    results.mkdir()
    with contextlib.closing(sqlite3.connect(results / "store.sqlite")) as db:
        db.execute("CREATE TABLE contacts (name TEXT)")
        db.commit()
    code, err = run(capsys, "run", *ONE, "--seeds", "0")
    assert code == 2
    assert err == (
        "error: results/store.sqlite is an SQLite database optbench did not make (tables: "
        "contacts); move it away (the runs it held are then computed again)\n"
    )
    assert sorted(p.name for p in results.iterdir()) == ["store.sqlite"]


def test_the_readme_sql_selects_the_runs_of_one_output(results, capsys):
    """`--out DIR` accumulates runs of different settings in DIR's store; joined on the
    manifest, a query sees only those of the latest output."""
    out = Path("results/mine")
    assert run(capsys, "run", *ONE, "--seeds", "0", "--out", str(out))[0] == 0
    assert run(capsys, "run", *ONE, "--seeds", "0", "--epochs", "3", "--out", str(out))[0] == 0
    with contextlib.closing(sqlite3.connect(out / "store.sqlite")) as db:
        every = db.execute("SELECT count(*) FROM runs").fetchone()[0]
        shown = db.execute(
            "SELECT count(*), max(r.epochs) FROM runs r JOIN manifest m ON r.key = m.key"
        ).fetchone()
    assert every == 2
    assert shown == (1, 3)
    timing = [c for c in TIMING_COLUMNS if c in pd.read_csv(out / "runs.csv")]
    assert timing, "runs.csv has timing columns"
    assert (out / MARKER).is_file()
