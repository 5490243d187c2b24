"""The output folder's rules: never touch a file optbench did not write, replace each output
file in one step, one optbench per folder, clean up after a killed invocation."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.output import files
from bench.output.files import LOCK, MARKER, TMP_PREFIX, OutputFolder


def _open(path: Path | str, kind: str = "run") -> OutputFolder:
    return OutputFolder.open(path, kind, "python -m bench run --test")


def _publish(folder: OutputFolder, contents: dict[str, str]) -> None:
    with folder.staged() as stage:
        for name, text in contents.items():
            (stage / name).write_text(text)


def test_a_new_folder_is_created_marked_and_locked(tmp_path):
    out = tmp_path / "a" / "b"
    with _open(out) as folder:
        marker = json.loads((out / MARKER).read_text())
        assert marker["tool"] == "optbench"
        assert marker["kind"] == "run"
        assert marker["command"] == "python -m bench run --test"
        assert (out / LOCK).read_text().splitlines()[0] == str(os.getpid())
        _publish(folder, {"report.md": "one"})
    assert (out / "report.md").read_text() == "one"
    assert oct((out / "report.md").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, LOCK, "report.md"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("notes"), "exists and is not a folder"),
        (lambda p: (p.mkdir(), (p / "analysis.py").write_text("x = 1")), "non-empty folder"),
        (lambda p: p.symlink_to(p.parent / "nowhere"), "dangling symlink"),
    ],
    ids=["file", "user-folder", "dangling-symlink"],
)
def test_anything_not_ours_is_refused_and_left_alone(tmp_path, make, message):
    target = tmp_path / "out"
    make(target)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=message):
        _open(target)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_empty_and_current_folder_are_refused(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="--out is empty"):
        _open("")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("mine")
    with pytest.raises(ConfigError, match="non-empty folder"):
        _open(".")


def test_a_place_that_cannot_be_written_is_refused_up_front(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="cannot create"):
        _open("/proc/optbench-out")

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "write", full)
    with pytest.raises(ConfigError, match="No space left"):
        _open(tmp_path / "new")
    assert not (tmp_path / "new").exists(), "the folder this call created is removed again"


def test_ours_is_updated_in_place_user_files_survive_stale_ours_go(tmp_path):
    out = tmp_path / "out"
    with _open(out) as folder:
        _publish(folder, {"report.md": "one", "old.png": "png", "edited.csv": "a"})
    (out / "notes.txt").write_text("user's")
    (out / "edited.csv").write_text("edited by the user")  # ours, but changed since
    with _open(out) as folder:
        _publish(folder, {"report.md": "two"})
    assert (out / "report.md").read_text() == "two"
    assert (out / "notes.txt").read_text() == "user's"
    assert not (out / "old.png").exists(), "ours, unchanged, no longer produced: removed"
    assert (out / "edited.csv").read_text() == "edited by the user"


def test_an_output_name_held_by_a_user_file_is_an_error_and_the_file_survives(tmp_path):
    out = tmp_path / "out"
    with _open(out) as folder:
        _publish(folder, {"report.md": "one"})
        (out / "runs.csv").write_text("user's table")
        with pytest.raises(ConfigError, match=r"runs\.csv was not written by optbench"):
            _publish(folder, {"report.md": "two", "runs.csv": "ours"})
    assert (out / "runs.csv").read_text() == "user's table"
    assert (out / "report.md").read_text() == "one"


def test_a_failure_while_writing_changes_nothing(tmp_path):
    out = tmp_path / "out"
    with _open(out) as folder:
        _publish(folder, {"report.md": "one"})

        def fail_midway() -> None:
            with folder.staged() as stage:
                (stage / "report.md").write_text("half")
                raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            fail_midway()
    assert (out / "report.md").read_text() == "one"
    assert not list(out.glob(f"{TMP_PREFIX}*"))


def test_a_second_invocation_on_the_folder_is_refused_with_the_pid(tmp_path):
    out = tmp_path / "out"
    with (
        _open(out),
        pytest.raises(ConfigError, match=rf"is in use by another optbench \(pid {os.getpid()}\)"),
    ):
        _open(out)
    _open(out).close()  # free again once the first one is done


def test_a_folder_written_before_markers_is_adopted_only_if_it_is_clearly_ours(tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "report.md").write_text("old")
    (legacy / "env.json").write_text(json.dumps({"command": "python -m bench run"}))
    _open(legacy).close()
    assert (legacy / MARKER).exists()
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "report.md").write_text("the user's own report")
    with pytest.raises(ConfigError, match="non-empty folder"):
        _open(lookalike)
