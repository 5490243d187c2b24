"""The output folder's rules: never touch a file optbench did not write, replace each output
file in one step, one optbench per folder, clean up after a killed invocation."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.output import files
from bench.output.files import LOCK, MARKER, TMP_PREFIX, OutputFolder

REPO = Path(__file__).resolve().parent.parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


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


def test_an_output_of_ours_the_user_edited_is_never_overwritten(tmp_path):
    """report.md written by optbench, then edited: its content is no longer the sha256 the
    marker records, so it is the user's now; the next output that would replace it is refused
    (one line) and publishes nothing."""
    out = tmp_path / "out"
    with _open(out) as folder:
        _publish(folder, {"report.md": "one", "runs.csv": "a"})
    (out / "report.md").write_text("one, with my notes")
    with (
        _open(out) as folder,
        pytest.raises(ConfigError, match=r"report\.md was changed since optbench wrote it") as e,
    ):
        _publish(folder, {"report.md": "two", "runs.csv": "b"})
    assert "\n" not in str(e.value)
    assert (out / "report.md").read_text() == "one, with my notes"
    assert (out / "runs.csv").read_text() == "a", "nothing published"
    (out / "report.md").write_text("one")  # the user's edit undone: ours again
    with _open(out) as folder:
        _publish(folder, {"report.md": "two", "runs.csv": "b"})
    assert (out / "report.md").read_text() == "two"


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


# ---------------------------------------------------------------------------------------------
# A folder someone else made: nothing read from it is trusted (issue 18)


def _user_file(tmp_path: Path, text: str = "my notes\n") -> tuple[Path, str]:
    """A user's file outside the output folder and its sha256 (what a hostile marker lists)."""
    path = tmp_path / "notes.txt"
    path.write_text(text)
    return path, hashlib.sha256(text.encode()).hexdigest()


def _marked(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    with _open(out) as folder:
        _publish(folder, {"report.md": "one"})
    return out


def _edit_marker(out: Path, **changes) -> None:
    marker = json.loads((out / MARKER).read_text())
    marker.update(changes)
    (out / MARKER).write_text(json.dumps(marker))


@pytest.mark.parametrize(
    "entry",
    ["../notes.txt", "ABSOLUTE", "sub/notes.txt", ".", "..", "", LOCK, MARKER, f"{TMP_PREFIX}x"],
    ids=[
        "dotdot",
        "absolute",
        "subfolder",
        "dot",
        "dotdot-alone",
        "empty",
        "lock",
        "marker",
        "tmp",
    ],
)
def test_a_marker_entry_that_is_not_a_plain_name_makes_the_folder_refused(tmp_path, entry):
    notes, digest = _user_file(tmp_path)
    out = _marked(tmp_path)
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_text(notes.read_text())
    name = str(notes) if entry == "ABSOLUTE" else entry
    marker = json.loads((out / MARKER).read_text())
    marker["files"][name] = digest
    (out / MARKER).write_text(json.dumps(marker))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="not a plain file name inside the folder") as err:
        _open(out)
    assert "\n" not in str(err.value)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda out: (out / MARKER).write_text("{not json"), "is not valid JSON"),
        (lambda out: (out / MARKER).write_text("[" * 100_000), "is not valid JSON"),
        (lambda out: _edit_marker(out, tool="other"), "is not an optbench marker"),
        (lambda out: _edit_marker(out, files=["report.md"]), "no valid 'files' table"),
        (lambda out: _edit_marker(out, files={"report.md": "abc"}), "malformed sha256"),
        (lambda out: _edit_marker(out, publishing={"../x": None}), "not a plain file name"),
        (lambda out: _edit_marker(out, kind=["run"]), "malformed 'kind'"),
    ],
    ids=["not-json", "deep-json", "other-tool", "files-list", "bad-digest", "publishing", "kind"],
)
def test_a_damaged_marker_is_one_line_and_changes_nothing(tmp_path, damage, message):
    out = _marked(tmp_path)
    damage(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConfigError, match=message) as err:
        _open(out)
    assert "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_marker_that_is_a_symlink_is_refused(tmp_path):
    out = _marked(tmp_path)
    elsewhere = tmp_path / "marker.json"
    elsewhere.write_bytes((out / MARKER).read_bytes())
    (out / MARKER).unlink()
    (out / MARKER).symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="is not a regular file"):
        _open(out)
    assert (out / MARKER).is_symlink()


@pytest.mark.parametrize("kind", ["symlink", "dangling", "hardlink"])
def test_a_lock_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, kind):
    precious, _ = _user_file(tmp_path, "precious\n")
    out = _marked(tmp_path)
    (out / LOCK).unlink()
    if kind == "symlink":
        (out / LOCK).symlink_to(precious)
    elif kind == "dangling":
        (out / LOCK).symlink_to(tmp_path / "would-be-created")
    else:
        os.link(precious, out / LOCK)
    with pytest.raises(ConfigError, match=f"{LOCK} is (a symlink|not a lock file optbench made)"):
        _open(out)
    assert precious.read_text() == "precious\n"
    assert not (tmp_path / "would-be-created").exists()


@pytest.mark.parametrize("listed", [False, True], ids=["unlisted", "listed"])
@pytest.mark.parametrize("dangling", [True, False], ids=["dangling", "to-a-user-file"])
def test_an_output_name_held_by_a_symlink_is_an_error_never_replaced(tmp_path, listed, dangling):
    notes, _ = _user_file(tmp_path)
    out = _marked(tmp_path)
    target = tmp_path / "nowhere" if dangling else notes
    (out / "runs.csv").symlink_to(target)
    if listed:  # a marker that lists it (as the folder's earlier output) changes nothing
        marker = json.loads((out / MARKER).read_text())
        marker["files"]["runs.csv"] = hashlib.sha256(b"ours").hexdigest()
        (out / MARKER).write_text(json.dumps(marker))
    with _open(out) as folder, pytest.raises(ConfigError, match=r"runs\.csv is a symlink") as err:
        _publish(folder, {"report.md": "two", "runs.csv": "ours"})
    assert "\n" not in str(err.value)
    assert (out / "runs.csv").is_symlink()
    assert os.readlink(out / "runs.csv") == str(target)
    assert notes.read_text() == "my notes\n"
    assert (out / "report.md").read_text() == "one", "nothing published"


def test_a_fifo_at_an_output_name_is_an_error_not_a_hang(tmp_path):
    out = _marked(tmp_path)
    os.mkfifo(out / "runs.csv")
    with _open(out) as folder, pytest.raises(ConfigError, match="was not written by optbench"):
        _publish(folder, {"runs.csv": "ours"})


def test_a_stale_entry_that_became_a_symlink_is_not_followed(tmp_path):
    """The marker lists old.png with the sha256 of a user's file the name now links to: the
    link is left alone (not removed as stale), and so is the file."""
    notes, digest = _user_file(tmp_path)
    out = _marked(tmp_path)
    (out / "old.png").symlink_to(notes)
    marker = json.loads((out / MARKER).read_text())
    marker["files"]["old.png"] = digest
    (out / MARKER).write_text(json.dumps(marker))
    with _open(out) as folder:
        _publish(folder, {"report.md": "two"})
    assert (out / "old.png").is_symlink()
    assert notes.read_text() == "my notes\n"


def test_a_users_tmp_named_file_is_left_alone(tmp_path):
    out = _marked(tmp_path)
    mine = out / f"{TMP_PREFIX}mine.txt"
    mine.write_text("user's")
    (out / f"{TMP_PREFIX}dir").mkdir()
    (out / f"{TMP_PREFIX}dir" / "x").write_text("user's")
    for _ in range(2):
        with _open(out) as folder:
            _publish(folder, {"report.md": "two"})
    assert mine.read_text() == "user's"
    assert (out / f"{TMP_PREFIX}dir" / "x").read_text() == "user's"


def test_temporaries_of_a_killed_invocation_are_removed_and_only_those(tmp_path):
    """A real process killed (SIGKILL) with a staging folder and a temporary file in flight:
    the next open removes exactly the temporaries that process recorded."""
    out = _marked(tmp_path)
    (out / f"{TMP_PREFIX}mine").write_text("user's")
    script = (
        "import os, signal, sys\n"
        "from bench.output import files\n"
        "folder = files.OutputFolder.open(sys.argv[1], 'run', 'python -m bench run --test')\n"
        "stage, _ = folder._temporary(folder=True)\n"
        "(stage / 'epochs.csv').write_text('half')\n"
        "path, fd = folder._temporary(folder=False)\n"
        "os.write(fd, b'half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)], cwd=REPO, env=_env(), capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = sorted(p.name for p in out.glob(f"{TMP_PREFIX}*"))
    assert len(left) == 3, left  # the staging folder, the temporary file, the user's
    _open(out).close()
    assert [p.name for p in out.glob(f"{TMP_PREFIX}*")] == [f"{TMP_PREFIX}mine"]
    assert (out / "report.md").read_text() == "one"
