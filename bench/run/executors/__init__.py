"""Executors: how run specs are mapped to results. A run never depends on which one is used.

An executor is anything with `map(fn, specs) -> iterator of results`, yielding results as they
finish, in any order (`run_all` puts them back in the order of the specs). Executors are
registered by name in `EXECUTORS` (`--executor NAME`); adding one is one file in this folder.
`serial` runs them one after another in this process, so nothing else competes for the clock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from tqdm import tqdm

from bench.errors import ConfigError
from bench.run.runner import RunResult, run
from bench.run.spec import RunSpec


class Executor(Protocol):
    def map(
        self, fn: Callable[[RunSpec], RunResult], specs: Sequence[RunSpec]
    ) -> Iterator[RunResult]: ...


EXECUTORS: dict[str, Callable[..., Executor]] = {}


def register(name: str):
    """Class decorator: the executor is built by `get(name, **options)`."""

    def deco(cls):
        if name in EXECUTORS:
            raise ValueError(f"executor {name!r} is already registered")
        EXECUTORS[name] = cls
        return cls

    return deco


def get(name: str, **options: Any) -> Executor:
    """The named executor built with its options, or a ConfigError listing the known ones."""
    try:
        cls = EXECUTORS[name]
    except KeyError:
        raise ConfigError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}") from None
    return cls(**options)


@register("serial")
class SerialExecutor:
    """One run after another in this process: nothing else competes for the clock."""

    description = "serial (one run at a time in this process)"

    def map(
        self, fn: Callable[[RunSpec], RunResult], specs: Sequence[RunSpec]
    ) -> Iterator[RunResult]:
        return map(fn, specs)


class _Lines:
    """Progress for a log (stderr not a terminal): one short line every ~10% or ~30 s."""

    def __init__(self, results: Iterable[RunResult], total: int, desc: str) -> None:
        self.results, self.total, self.desc = results, total, desc

    def __iter__(self) -> Iterator[RunResult]:
        start = last = time.monotonic()
        step = max(1, self.total // 10)
        for done, result in enumerate(self.results, 1):
            yield result
            now = time.monotonic()
            if done < self.total and (done % step == 0 or now - last >= 30):
                last = now
                print(
                    f"{self.desc}: {done}/{self.total} ({now - start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )


def _progress(results: Iterable[RunResult], total: int, desc: str) -> Iterable[RunResult]:
    """A progress bar on a terminal; a line every ~10% or ~30 s in a log (CI, nohup)."""
    if not sys.stderr.isatty():
        return _Lines(results, total, desc) if total >= 20 else results
    return tqdm(results, total=total, desc=desc, unit="run", file=sys.stderr)


def run_all(
    specs: Sequence[RunSpec],
    executor: Executor | None = None,
    fn: Callable[[RunSpec], RunResult] = run,
    desc: str = "runs",
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Every spec's result, in the order of `specs`, whatever order the executor finishes in.

    `on_result(result)` is called in this process as each result arrives, before the next one
    is taken (the result store persists each run there, so a kill loses only runs in flight).
    """
    slots: dict[RunSpec, list[int]] = {}
    for i, spec in enumerate(specs):
        slots.setdefault(spec, []).append(i)
    out: list[RunResult | None] = [None] * len(specs)
    for result in _progress((executor or SerialExecutor()).map(fn, specs), len(specs), desc):
        if on_result is not None:
            on_result(result)
        out[slots[result.spec].pop(0)] = result
    return out  # type: ignore[return-value]
