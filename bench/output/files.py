"""The one place that writes files: tables (CSV), env.json, text (reports), and the output
folder itself. A new output format is a function registered in `WRITERS`.

The output folder's rules (`OutputFolder`); it trusts nothing it reads from disk:
- optbench writes only into a folder that is new, empty, or marked as its own output (a
  `.optbench` file: JSON with tool, version, kind, command and the files it wrote with their
  sha256); anything else (a file, a non-empty folder without the marker, a dangling symlink, a
  place it cannot write to, a marker that is not a regular file or lists anything but plain
  file names inside the folder) is refused up front, before any run, with a ConfigError.
- Symlinks are never followed nor replaced inside the folder: the marker, the lock and every
  output are opened with `O_NOFOLLOW` or checked with `lstat` first; an output name held by a
  symlink (dangling or not), or by a file we did not write, is an error.
- Each output is written into a private staging folder inside the output folder, synced, then
  moved into place with `os.replace`. Publishing is crash-safe: before the first rename the
  marker records the new files' sha256 (`publishing`), so a kill at any instant leaves a folder
  the next invocation accepts: a listed file holding the recorded content is ours. Files
  someone else put in the folder are never touched; a file of ours someone edited (its content
  no longer the recorded sha256) is refused up front, never overwritten; a file of ours the new
  output no longer has is removed only if its content is still what we wrote.
- One optbench at a time per folder: a lock file (`fcntl.flock`, non-blocking, checked to be
  the file at the lock's name after locking); a second invocation is refused naming the first
  one's pid. The lock file is also the invocation's journal: each temporary's name is recorded
  there before it is created, and the next invocation removes exactly those, so a user's own
  `.optbench-tmp-*` file is left alone. A loser of a race to create a folder removes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import ConfigError

Writer = Callable[[Any, Path], Path]
WRITERS: dict[str, Writer] = {}
MARKER = ".optbench"
LOCK = ".optbench.lock"
TMP_PREFIX = ".optbench-tmp-"
MARKER_VERSION = 2
RESERVED = frozenset({MARKER, LOCK})
_HEX = frozenset("0123456789abcdef")


def register(suffix: str):
    """Decorator: `write(obj, path)` for files ending in `suffix`."""

    def deco(fn: Writer) -> Writer:
        if suffix in WRITERS:
            raise ValueError(f"a writer for {suffix!r} is already registered")
        WRITERS[suffix] = fn
        return fn

    return deco


def write(obj: Any, path: Path) -> Path:
    """Write `obj` to `path` with the writer its suffix selects."""
    try:
        writer = WRITERS[path.suffix]
    except KeyError:
        raise ValueError(f"no writer for {path.name}; known: {', '.join(WRITERS)}") from None
    return writer(obj, path)


@register(".csv")
def write_csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False, float_format="%.9g")
    return path


@register(".json")
def write_json(obj: Any, path: Path) -> Path:
    path.write_text(json.dumps(obj, indent=2) + "\n")
    return path


@register(".md")
def write_text(text: str, path: Path) -> Path:
    path.write_text(text)
    return path


@register(".html")
def write_html(text: str, path: Path) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# Reading what is on disk, never through a symlink

# O_NONBLOCK: opening a FIFO someone put at an output's name must not hang; no effect on files.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _read_regular(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file (a symlink is not followed), else None."""
    try:
        fd = os.open(path, _READ)
    except OSError:  # absent, a symlink (ELOOP), unreadable
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _digest(path: Path, sync: bool = False) -> str | None:
    """sha256 of `path` if it is a regular file (not through a symlink), else None; `sync`
    flushes it to disk first."""
    try:
        fd = os.open(path, _READ)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if sync:
            os.fsync(fd)
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_name(name: object) -> bool:
    """A file name directly inside the folder: no separator, not `.` or `..`, not optbench's
    own marker, lock or temporaries."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and name not in RESERVED
        and not name.startswith(TMP_PREFIX)
    )


def _temp_name(name: str) -> bool:
    return name.startswith(TMP_PREFIX) and len(name) > len(TMP_PREFIX) and "/" not in name


def _parse_journal(data: bytes) -> tuple[str, set[str]]:
    """(pid, temporaries) recorded in a lock file: its first line is the pid, then one line
    `tmp NAME` before each temporary is created (`not NAME` if the name was taken)."""
    lines = data.decode(errors="replace").split("\n")
    made: set[str] = set()
    for line in lines[1:]:
        verb, _, name = line.partition(" ")
        if _temp_name(name) and verb == "tmp":
            made.add(name)
        elif verb == "not":
            made.discard(name)
    return lines[0].strip(), made


# Outputs of optbench versions from before the marker, recognised so that their folders can be
# updated (a folder is adopted only if every entry is a regular file with one of these names
# and it carries an env.json written by `python -m bench` or a perf.md of `nox -s perf`).
LEGACY_NAMES = {
    "report.md", "epochs.csv", "runs.csv", "parity.csv", "env.json", "loss_vs_epoch.png",
    "loss_vs_time.png", "epoch_time.png", "final_loss_scratch_vs_torch.png", "sweep.csv",
    "summary.csv", "selection.csv", "claims.csv", "sensitivity.png", "suboptimality.png",
    "profile.png", "generalization.png", "perf.csv", "perf.png", "perf.md", "benchmark.json",
}  # fmt: skip


def _legacy_output(folder: Path, names: set[str]) -> bool:
    if not names <= LEGACY_NAMES:
        return False
    for name in names:
        st = _lstat(folder / name)
        if st is None or not stat.S_ISREG(st.st_mode):
            return False
    with contextlib.suppress(ValueError, AttributeError, TypeError, RecursionError):
        if "env.json" in names:
            env = json.loads(_read_regular(folder / "env.json") or b"")
            return str(env.get("command", "")).startswith("python -m bench")
        if "perf.md" in names:
            return (_read_regular(folder / "perf.md") or b"").startswith(b"## Performance")
    return False


def _marker_problem(marker: object) -> str | None:
    """What makes `marker` invalid, or None."""
    if not isinstance(marker, dict) or marker.get("tool") != "optbench":
        return "is not an optbench marker"
    for key in ("kind", "command"):
        if key in marker and not isinstance(marker[key], str):
            return f"has a malformed {key!r}"
    for key in ("files", "publishing"):
        entries = marker.get(key, {} if key == "publishing" else None)
        if not isinstance(entries, dict):
            return f"has no valid {key!r} table"
        for name, digest in entries.items():
            if not plain_name(name):
                return f"lists {name!r}, which is not a plain file name inside the folder"
            valid = isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX
            if digest is not None and not valid:
                return f"gives {name!r} a malformed sha256"
    return None


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's `.optbench` marker, None if it has none; ConfigError if it is not a valid
    one (not a regular file, not JSON, not optbench's, or an entry that is not a plain file
    name inside the folder: `../x`, `/etc/x`, `sub/x`)."""
    path = folder / MARKER
    st = _lstat(path)
    if st is None:
        return None
    data = _read_regular(path) if stat.S_ISREG(st.st_mode) else None
    if data is None:
        problem: str | None = "is not a regular file"
    else:
        try:
            marker = json.loads(data)
        except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
            problem = "is not valid JSON"
        else:
            problem = _marker_problem(marker)
    if problem is not None:
        raise ConfigError(
            f"{path} {problem}: not a valid optbench marker; refusing to write into {folder}"
        )
    return marker


class OutputFolder:
    """An output folder opened for writing under the rules of the module docstring.

    `open()` checks, creates, locks and marks it (all before any run); `staged()` yields a
    private folder to write outputs into and moves them into place on success; `own(name)`
    lists a file written directly (the result store); `close()` releases the lock.
    """

    def __init__(
        self, path: Path, kind: str, command: str, lock_fd: int, marker: dict, created: list
    ) -> None:
        self.path, self.kind, self.command = path, kind, command
        self._lock_fd, self._marker = lock_fd, marker
        self._created: list[Path] = created  # folders this invocation made, deepest first

    @classmethod
    def open(
        cls, out: str | Path, kind: str, command: str, flag: str = "--out", *, new: bool = False
    ) -> OutputFolder:
        """Open `out` for writing. `new`: the folder must be made by this call (a name the
        caller chose to be unique); FileExistsError if it exists."""
        text = str(out)
        if not text.strip():
            raise ConfigError(f"{flag} is empty")
        path = Path(text)
        created = cls._make(path, flag, new)
        if not created:  # a user's folder is refused before anything is written into it
            cls._contents(path, flag, None)
        lock_fd = -1
        try:
            lock_fd = cls._lock(path, flag)
            _, temporaries = _parse_journal(os.pread(lock_fd, 1 << 20, 0))
            marker = cls._contents(path, flag, temporaries)  # again, now that it is ours
            folder = cls(path, kind, command, lock_fd, marker, created)
            folder._start(temporaries, flag)
        except BaseException:
            if lock_fd >= 0:  # held by us: what this call created goes, nothing else
                if created:
                    for name in (MARKER, LOCK):
                        with contextlib.suppress(OSError):
                            os.unlink(path / name)
                os.close(lock_fd)
            cls._remove_created(created)
            raise
        return folder

    @staticmethod
    def _make(path: Path, flag: str, new: bool) -> list[Path]:
        """The folder's missing parts, made; returns those this call made, deepest first."""
        st = _lstat(path)
        if st is not None and stat.S_ISLNK(st.st_mode):
            try:
                st = os.stat(path)
            except OSError:
                raise ConfigError(f"{flag} {path} is a dangling symlink") from None
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                raise ConfigError(f"{flag} {path} exists and is not a folder")
            if new:
                raise FileExistsError(errno.EEXIST, "exists", str(path))
            return []
        created: list[Path] = []
        missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
        try:
            for part in reversed(missing):  # outermost first
                try:
                    os.mkdir(part)
                except FileExistsError:  # made by someone else meanwhile: not ours
                    continue
                created.insert(0, part)
        except OSError as exc:
            OutputFolder._remove_created(created)
            raise ConfigError(f"cannot create {flag} {path}: {exc.strerror}") from None
        if new and path not in created:
            OutputFolder._remove_created(created)
            raise FileExistsError(errno.EEXIST, "exists", str(path))
        if not created and not path.is_dir():
            raise ConfigError(f"{flag} {path} exists and is not a folder")
        return created

    @staticmethod
    def _remove_created(created: list[Path]) -> None:
        for part in created:  # deepest first; rmdir: only while empty, never anyone's files
            with contextlib.suppress(OSError):
                os.rmdir(part)

    @staticmethod
    def _contents(path: Path, flag: str, temporaries: set[str] | None) -> dict[str, Any]:
        """The folder's marker; for a folder without one, an empty marker if it holds nothing
        but the lock and optbench's temporaries (`temporaries`: those the lock's journal
        names; None before locking: any of that name, maybe another optbench's in flight),
        or the files of an adopted pre-marker output. A user's folder is a ConfigError."""
        try:  # listed before the marker is read: one written meanwhile is then read
            names = set(os.listdir(path)) - {LOCK, MARKER}
        except OSError as exc:
            raise ConfigError(f"cannot read {flag} {path}: {exc.strerror}") from None
        marker = read_marker(path)
        if marker is not None:
            return marker
        if temporaries is None:
            names = {n for n in names if not n.startswith(TMP_PREFIX)}
        else:
            names -= temporaries
        if not names:
            return {"files": {}}
        if _legacy_output(path, names):
            return {"files": dict.fromkeys(names, None)}
        raise ConfigError(
            f"{flag} {path} is a non-empty folder that optbench did not create "
            f"(no {MARKER} marker); choose a new or empty folder"
        )

    @staticmethod
    def _lock(path: Path, flag: str) -> int:
        """A descriptor holding the flock of the folder's lock file (never a symlink, never
        a file with other hard links); ConfigError naming the pid if another optbench has it."""
        lock = path / LOCK
        for _ in range(100):
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise ConfigError(
                        f"{lock} is a symlink; optbench never writes through one: move it away"
                    ) from None
                raise ConfigError(f"cannot write to {flag} {path}: {exc.strerror}") from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                    raise ConfigError(
                        f"{lock} is not a lock file optbench made (not a regular file, or it "
                        "has other hard links): move it away"
                    )
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pid = _parse_journal(os.pread(fd, 64, 0))[0] or "unknown"
                    raise ConfigError(f"{path} is in use by another optbench (pid {pid})") from None
                now = _lstat(lock)
                if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                    return fd  # the file at the lock's name, not one removed while we waited
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise ConfigError(f"cannot lock {lock}: it keeps being replaced")

    def _start(self, temporaries: set[str], flag: str) -> None:
        """Under the lock: remove the temporaries a killed invocation recorded (exactly those),
        record our pid, finish a publication a kill interrupted, and write the marker."""
        for name in sorted(temporaries):
            target = self.path / name
            st = _lstat(target)
            if st is not None and stat.S_ISDIR(st.st_mode):
                shutil.rmtree(target, ignore_errors=True)
            elif st is not None and stat.S_ISREG(st.st_mode):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(target)
        try:  # also the check that the folder can be written (access() lies on read-only mounts)
            os.ftruncate(self._lock_fd, 0)
            os.lseek(self._lock_fd, 0, os.SEEK_SET)
            os.write(self._lock_fd, f"{os.getpid()}\n".encode())
            os.fsync(self._lock_fd)
        except OSError as exc:
            raise ConfigError(f"cannot write to {flag} {self.path}: {exc.strerror}") from None
        files = self._marker["files"]
        for name, digest in self._marker.pop("publishing", {}).items():
            if _digest(self.path / name) == digest:  # renamed into place before the kill
                files[name] = digest
        for name in [n for n, d in files.items() if d and not os.path.lexists(self.path / n)]:
            del files[name]  # an output someone removed
        self._write_marker()

    # ------------------------------------------------------------------------------------------
    # Temporaries: recorded in the lock's journal before they exist

    def _journal(self, line: str) -> None:
        os.write(self._lock_fd, f"{line}\n".encode())

    def _temporary(self, folder: bool) -> tuple[Path, int]:
        """A new temporary in the folder: (path, fd of the file opened for writing, or -1)."""
        while True:
            name = f"{TMP_PREFIX}{secrets.token_hex(8)}"
            self._journal(f"tmp {name}")
            path = self.path / name
            try:
                if folder:
                    os.mkdir(path, 0o700)
                    return path, -1
                return path, os.open(path, _CREATE, 0o600)
            except FileExistsError:
                self._journal(f"not {name}")

    def _write_atomic(self, name: str, data: bytes) -> None:
        """Replace `name` in the folder with `data` in one step (a synced temporary, renamed)."""
        tmp, fd = self._temporary(folder=False)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), 0o644)
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _write_marker(self) -> None:
        marker = {
            "tool": "optbench",
            "version": MARKER_VERSION,
            "kind": self.kind,
            "command": self.command,
            "files": self._marker.get("files", {}),
        }
        if "publishing" in self._marker:
            marker["publishing"] = self._marker["publishing"]
        self._marker = marker
        self._write_atomic(MARKER, (json.dumps(marker, indent=2) + "\n").encode())

    def own(self, *names: str) -> None:
        """Record files written directly into the folder (never removed as stale)."""
        for name in names:
            if not plain_name(name):
                raise ValueError(f"not a plain file name: {name!r}")
            self._marker["files"][name] = None
        self._write_marker()

    # ------------------------------------------------------------------------------------------
    # Publishing

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """A private folder to write this output's files into; on success each file replaces
        its namesake in the output folder in one step; on failure nothing changes."""
        stage, _ = self._temporary(folder=True)
        try:
            yield stage
            self._publish(stage)
        finally:
            self._remove_stage(stage)

    @staticmethod
    def _remove_stage(stage: Path) -> None:
        with contextlib.suppress(OSError):
            for name in os.listdir(stage):
                st = os.lstat(stage / name)
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(stage / name, ignore_errors=True)
                else:
                    os.unlink(stage / name)
            os.rmdir(stage)

    def _check_destination(self, name: str) -> None:
        """An output may replace only a regular file the marker lists, or nothing."""
        target = self.path / name
        st = _lstat(target)
        if st is None:
            return
        again = "move it away and run again (finished runs are kept in the store)"
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(
                f"{target} is a symlink; optbench never replaces or writes through one: {again}"
            )
        if not stat.S_ISREG(st.st_mode) or name not in self._marker["files"]:
            raise ConfigError(f"{target} was not written by optbench; {again}")
        self._check_unchanged(name)

    def _check_unchanged(self, name: str) -> None:
        """A listed output must still hold what optbench wrote (its recorded sha256): one
        someone edited is theirs, never overwritten nor removed."""
        digest = self._marker["files"].get(name)
        if digest is not None and _digest(self.path / name) != digest:
            raise ConfigError(
                f"{self.path / name} was changed since optbench wrote it (its content is not "
                f"what {MARKER} records) and optbench never overwrites an edited file: move it "
                "away and run again (finished runs are kept in the store)"
            )

    def _publish(self, stage: Path) -> None:
        """Move the staged files into place. The marker records their sha256 first
        (`publishing`), so a kill between two renames leaves files the next open recognises."""
        produced = sorted(n for n in os.listdir(stage) if stat.S_ISREG(os.lstat(stage / n).st_mode))
        for name in produced:
            if not plain_name(name):
                raise ValueError(f"a writer produced {name!r}, which optbench may not publish")
            self._check_destination(name)
        digests = {}
        for name in produced:
            os.chmod(stage / name, 0o644)
            digests[name] = _digest(stage / name, sync=True)
        self._marker["publishing"] = digests
        self._write_marker()
        for name in produced:
            os.replace(stage / name, self.path / name)
        listed: dict[str, str | None] = self._marker["files"]
        listed.update(digests)
        for name, digest in list(listed.items()):
            if name in digests or digest is None:
                continue
            stale = self.path / name
            if _digest(stale) == digest:  # ours, unchanged, no longer produced
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            if not os.path.lexists(stale):
                del listed[name]
        del self._marker["publishing"]
        self._write_marker()
        _fsync_dir(self.path)

    # ------------------------------------------------------------------------------------------

    def discard(self) -> bool:
        """Remove the folder if this invocation made it and published nothing into it (it
        holds only the marker, the lock and files `own` lists). True if it is gone."""
        files = self._marker["files"]
        if not self._created or self._lock_fd < 0 or any(d is not None for d in files.values()):
            return False
        try:
            names = set(os.listdir(self.path))
        except OSError:
            return False
        if not names <= set(files) | RESERVED:
            return False
        for name in [*sorted(names - {LOCK}), LOCK]:
            st = _lstat(self.path / name)
            if st is not None and stat.S_ISREG(st.st_mode):
                os.unlink(self.path / name)
        self.close()
        self._remove_created(self._created)
        return not os.path.lexists(self.path)

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock; the lock file stays (it is ours)
            self._lock_fd = -1

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
