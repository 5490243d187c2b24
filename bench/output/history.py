"""Output folders that keep history: what a command without `--out` writes.

Each such command writes a new folder `results/<kind>-<suite>-<UTC time>/` (`-2`, `-3`, ... when
two start in the same second: the folder is made with `mkdir`, which only one can win), and
once its output is complete points a link at it: `results/latest` for `run`, `results/sweep`
for `sweep`. Only a link optbench made is replaced (a relative symlink to a folder beside it);
a real folder of that name (an older optbench's output) or a user's link is left as it is, and
the command says where its output went instead. Finished runs are shared through one result
cache, `results/store.sqlite`, so repeating a command, or overlapping an earlier one, reuses
them; each folder still holds its own `store.sqlite` with exactly its runs and manifest, so
`python -m bench report DIR` and SQL work on a folder alone. A command that fails or is
interrupted before it published anything removes its new folder again (its finished runs are
in the shared cache).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import ConfigError
from bench.output.files import MARKER, TMP_PREFIX, OutputFolder, plain_name

RESULTS = Path("results")
SHARED_STORE = "store.sqlite"
LINKS = {"run": "latest", "sweep": "sweep"}
_MAX_SAME_SECOND = 1000


def slug(name: str) -> str:
    """`name` as a safe part of a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[:40] or "suite"


def stamp(now: datetime | None = None) -> str:
    """UTC time as `20261202T124800Z` (sorts in time order, no colons)."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def shared_store(root: Path = RESULTS) -> Path:
    """The shared result cache's path; `root` is made if missing."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {root}: {exc.strerror}") from None
    if not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    return root / SHARED_STORE


def new_folder(
    root: Path, label: str, kind: str, command: str, now: datetime | None = None
) -> OutputFolder:
    """A folder `root/<label>-<UTC time>[-N]` made by this call, opened for writing."""
    base = f"{label}-{stamp(now)}"
    for i in range(1, _MAX_SAME_SECOND + 1):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            return OutputFolder.open(path, kind, command, flag="output folder", new=True)
        except FileExistsError:
            continue
    raise ConfigError(f"{root} already holds {_MAX_SAME_SECOND} folders named {base}*")


@contextlib.contextmanager
def new_output(root: Path, label: str, kind: str, command: str) -> Iterator[OutputFolder]:
    """`new_folder`, removed again if the command fails before publishing into it."""
    folder = new_folder(root, label, kind, command)
    try:
        yield folder
    except BaseException:
        folder.discard()
        raise
    finally:
        folder.close()


def _made_by_optbench(link: Path) -> bool:
    """A symlink whose target is a plain name beside it: an output folder (marked) or
    nothing (a history folder someone deleted)."""
    target = os.readlink(link)
    if not plain_name(target):
        return False
    folder = link.parent / target
    return not os.path.lexists(folder) or (folder / MARKER).is_file()


def point(root: Path, kind: str, folder: Path) -> str:
    """Point `root/latest` (run) or `root/sweep` (sweep) at `folder`, replacing only a link
    optbench made, in one step; the line to tell the user."""
    link = root / LINKS[kind]
    try:
        st = os.lstat(link)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISLNK(st.st_mode):
        return (
            f"optbench: {link} is not a link optbench made (an older optbench's folder?); "
            f"left as it is: this output is in {folder}"
        )
    if st is not None and not _made_by_optbench(link):
        return (
            f"optbench: {link} is a symlink optbench did not make; left as it is: this output "
            f"is in {folder}"
        )
    tmp = root / f"{TMP_PREFIX}{LINKS[kind]}-{secrets.token_hex(6)}"
    os.symlink(folder.name, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return f"optbench: {link} -> {folder.name}"
