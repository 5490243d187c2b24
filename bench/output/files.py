"""The one place that writes files: tables (CSV), env.json, text (reports), and the output
folder itself. A new output format is a function registered in `WRITERS`.

The output folder's rules (`OutputFolder`):
- optbench writes only into a folder that is new, empty, or marked as its own output (a
  `.optbench` file: JSON with tool, version, kind, command and the files it wrote with their
  sha256); anything else (a file, a non-empty folder without the marker, a dangling symlink, a
  place it cannot write to) is refused up front, before any run, with a ConfigError.
- Each output file is written into a private temporary folder inside the output folder, synced,
  then moved into place with `os.replace`: a reader never sees a half-written file, and a kill
  never leaves the folder missing. Files someone else put in the folder are never touched; a
  file of ours the new output no longer has is removed only if the marker lists it and its
  content is still what we wrote. An output name held by a file we did not write is an error.
- One optbench at a time per folder: a lock file (`fcntl.flock`, non-blocking); a second
  invocation is refused naming the first one's pid. Temporary files left by a killed
  invocation (`.optbench-tmp-*`) are removed when the folder is next opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
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
MARKER_VERSION = 1


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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step (temporary file in the same folder, fsync)."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# Outputs of optbench versions from before the marker, recognised so that their folders can be
# updated (a folder is adopted only if every entry has one of these names and it carries an
# env.json written by `python -m bench` or a perf.md of `nox -s perf`).
LEGACY_NAMES = {
    "report.md", "epochs.csv", "runs.csv", "parity.csv", "env.json", "loss_vs_epoch.png",
    "loss_vs_time.png", "epoch_time.png", "final_loss_scratch_vs_torch.png", "sweep.csv",
    "summary.csv", "selection.csv", "claims.csv", "sensitivity.png", "suboptimality.png",
    "profile.png", "generalization.png", "perf.csv", "perf.png", "perf.md", "benchmark.json",
}  # fmt: skip


def _legacy_output(folder: Path) -> bool:
    names = {p.name for p in folder.iterdir()}
    if not names <= LEGACY_NAMES:
        return False
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        if "env.json" in names:
            env = json.loads((folder / "env.json").read_text())
            return str(env.get("command", "")).startswith("python -m bench")
        if "perf.md" in names:
            return (folder / "perf.md").read_text().startswith("## Performance")
    return False


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's `.optbench` marker, None if it has none; ConfigError if it is not ours."""
    path = folder / MARKER
    if not path.exists() and not path.is_symlink():
        return None
    try:
        marker = json.loads(path.read_text())
        if marker.get("tool") != "optbench" or not isinstance(marker.get("files"), dict):
            raise ValueError
    except (OSError, ValueError, AttributeError):
        raise ConfigError(
            f"{path} is not an optbench marker; refusing to write into {folder}"
        ) from None
    return marker


class OutputFolder:
    """An output folder opened for writing under the rules of the module docstring.

    `open()` checks, creates, locks and marks it (all before any run); `staged()` yields a
    private folder to write outputs into and moves them into place on success; `own(name)`
    lists a file written directly (the result store); `close()` releases the lock.
    """

    def __init__(self, path: Path, kind: str, command: str, lock_fd: int, marker: dict) -> None:
        self.path, self.kind, self.command = path, kind, command
        self._lock_fd, self._marker = lock_fd, marker

    @classmethod
    def open(cls, out: str | Path, kind: str, command: str, flag: str = "--out") -> OutputFolder:
        text = str(out)
        if not text.strip():
            raise ConfigError(f"{flag} is empty")
        path = Path(text)
        if path.is_symlink() and not path.exists():
            raise ConfigError(f"{flag} {text} is a dangling symlink")
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{flag} {text} exists and is not a folder")
        created: list[Path] = []
        if path.is_dir():
            marker = read_marker(path)
            if marker is None:
                if _legacy_output(path):
                    marker = {"files": dict.fromkeys((p.name for p in path.iterdir()), None)}
                elif any(path.iterdir()):
                    raise ConfigError(
                        f"{flag} {text} is a non-empty folder that optbench did not create "
                        f"(no {MARKER} marker); choose a new or empty folder"
                    )
        else:
            missing = [p for p in (path, *path.parents) if not p.exists()]
            try:
                path.mkdir(parents=True)
            except OSError as exc:
                raise ConfigError(f"cannot create {flag} {text}: {exc.strerror}") from None
            created = missing
            marker = None
        try:
            folder = cls._claim(path, kind, command, flag, marker or {"files": {}})
        except BaseException:
            for p in created:  # only the folders this call created, deepest first
                with contextlib.suppress(OSError):
                    for child in p.iterdir():
                        child.unlink()
                    p.rmdir()
            raise
        return folder

    @classmethod
    def _claim(cls, path: Path, kind: str, command: str, flag: str, marker: dict) -> OutputFolder:
        try:  # writable? (access() lies on read-only mounts and for root)
            fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path)
            os.write(fd, b"probe")
            os.fsync(fd)
            os.close(fd)
            os.unlink(probe)
            lock_fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(f"cannot write to {flag} {path}: {exc.strerror}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(lock_fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(lock_fd)
            raise ConfigError(f"{path} is in use by another optbench (pid {pid})") from None
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
        for stale in path.glob(f"{TMP_PREFIX}*"):  # left by a killed invocation: ours
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        folder = cls(path, kind, command, lock_fd, marker)
        folder._write_marker()
        return folder

    def _write_marker(self) -> None:
        files = self._marker.get("files", {})
        self._marker = {
            "tool": "optbench",
            "version": MARKER_VERSION,
            "kind": self.kind,
            "command": self.command,
            "files": files,
        }
        atomic_write_text(self.path / MARKER, json.dumps(self._marker, indent=2) + "\n")

    def own(self, *names: str) -> None:
        """Record files written directly into the folder (never removed as stale)."""
        for name in names:
            self._marker["files"][name] = None
        self._write_marker()

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """A private folder to write this output's files into; on success each file replaces
        its namesake in the output folder in one step; on failure nothing changes."""
        stage = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.path))
        try:
            yield stage
            self._publish(stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _publish(self, stage: Path) -> None:
        listed: dict[str, str | None] = self._marker["files"]
        produced = sorted(p.name for p in stage.iterdir() if p.is_file())
        foreign = [n for n in produced if (self.path / n).exists() and n not in listed]
        if foreign:
            raise ConfigError(
                f"{self.path / foreign[0]} was not written by optbench; move it away and run "
                "again (finished runs are kept in the store)"
            )
        for name in produced:
            (stage / name).chmod(0o644)
            _fsync(stage / name)
        for name in produced:
            os.replace(stage / name, self.path / name)
            listed[name] = _sha256(self.path / name)
        for name, digest in list(listed.items()):
            if name in produced or digest is None:
                continue
            stale = self.path / name
            with contextlib.suppress(OSError):
                if stale.is_file() and not stale.is_symlink() and _sha256(stale) == digest:
                    stale.unlink()
            if not stale.exists():
                del listed[name]
        self._write_marker()
        _fsync(self.path)

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock; the lock file stays (it is ours)
            self._lock_fd = -1

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
