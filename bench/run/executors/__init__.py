"""Executors: how run specs are mapped to results. A run never depends on which one is used.

An executor is anything with `map(fn, specs) -> iterator of results`, yielding results as they
finish, in any order (`run_all` puts them back in the order of the specs). Executors are
registered by name in `EXECUTORS` (`--executor NAME`); adding one is one file in this folder.
`serial` runs them one after another in this process, so nothing else competes for the clock.
"""

from __future__ import annotations

import sys
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


def _progress(results: Iterable[RunResult], total: int, desc: str) -> Iterable[RunResult]:
    """A progress bar on a terminal, nothing when stderr is a file or a pipe (CI logs)."""
    if not sys.stderr.isatty():
        return results
    return tqdm(results, total=total, desc=desc, unit="run", file=sys.stderr)


def run_all(
    specs: Sequence[RunSpec],
    executor: Executor | None = None,
    fn: Callable[[RunSpec], RunResult] = run,
    desc: str = "runs",
) -> list[RunResult]:
    """Every spec's result, in the order of `specs`, whatever order the executor finishes in."""
    slots: dict[RunSpec, list[int]] = {}
    for i, spec in enumerate(specs):
        slots.setdefault(spec, []).append(i)
    out: list[RunResult | None] = [None] * len(specs)
    for result in _progress((executor or SerialExecutor()).map(fn, specs), len(specs), desc):
        out[slots[result.spec].pop(0)] = result
    return out  # type: ignore[return-value]
