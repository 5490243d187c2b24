"""The one place that writes files: tables (CSV), env.json, text (reports), and the output
folder itself. A new output format is a function registered in `WRITERS`.

All-or-nothing output: files are written into a staging folder that replaces --out at the end.
A failure or Ctrl-C before the swap leaves --out exactly as it was (the staging folder is
removed); the swap itself is two renames on the same filesystem.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

Writer = Callable[[Any, Path], Path]
WRITERS: dict[str, Writer] = {}


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


@contextlib.contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    stage.chmod(0o755)  # mkdtemp's 0700 would make the results private after the swap
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{stage.name.rsplit('-', 1)[-1]}"
    if out.exists():
        out.rename(old)
    stage.rename(out)
    shutil.rmtree(old, ignore_errors=True)
