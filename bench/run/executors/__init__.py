"""Executors: how run specs are mapped to results. A run never depends on which one is used.

An executor is anything with `map(fn, tasks) -> iterator of fn(task)`, yielding each task's
result as it finishes, in any order, and `info()`, how its runs shared the machine (recorded in
env.json, stated next to every time figure). `run_all` hands it groups of specs
(`bench.run.engines.plan`: a vectorised group, or a single per-run spec), one task each, with
`bench.run.engines.run_group` as `fn`, and puts the results back in the order of the specs. It is a
context manager: what it starts (a cluster) lives until the block ends, whatever ends it, so
one `with` serves the several `run_all` calls of a sweep. Executors are registered by name in
`EXECUTORS` (`--executor NAME`); adding one is one file in this folder.
`serial` runs them one after another in this process, so nothing else competes for the clock;
`dask` (`dask.py`) runs them on a Dask cluster of single-threaded workers.

Every executor pins torch's intra-op threads (`threads`, default `DEFAULT_THREADS`) where the
runs execute, so serial and parallel runs of a spec give bitwise the same losses.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from tqdm import tqdm

from bench.errors import ConfigError
from bench.run.device import DEFAULT_THREADS, torch_threads
from bench.run.engines import DEFAULT_ENGINE, plan, run_group
from bench.run.runner import RunResult
from bench.run.spec import RunSpec


class Executor(Protocol):
    description: str

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        """fn(task) of every task, each as it finishes (in any order)."""
        ...

    def info(self) -> dict[str, Any]:
        """executor, workers, runs_per_worker, parallel_runs, torch_threads, cores."""
        ...

    def __enter__(self) -> Executor: ...
    def __exit__(self, *exc: object) -> None: ...


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


def check_count(name: str, value: Any) -> int:
    """An integer >= 1 (workers, threads), or a ConfigError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value


@register("serial")
class SerialExecutor:
    """One run after another in this process: nothing else competes for the clock."""

    description = "serial (one run at a time in this process)"

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.threads = check_count("threads", threads)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        with torch_threads(self.threads):  # restored when the last result has been taken
            yield from map(fn, tasks)

    def info(self) -> dict[str, Any]:
        return {
            "executor": "serial",
            "workers": 1,
            "runs_per_worker": 1,
            "parallel_runs": 1,
            "torch_threads": self.threads,
            "cores": os.cpu_count(),
        }

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def build(file: Mapping[str, Any], flags: Mapping[str, Any]) -> Executor:
    """The executor a command asks for: its flags (None = not given) over the suite file's keys
    (`executor`, `workers`, `scheduler`, `threads`), over the defaults (serial, DEFAULT_THREADS).

    `--workers`/`--scheduler` without any executor named mean dask (nothing else takes them).
    The file's `workers`/`scheduler` belong to the file's executor: a flag naming another one
    drops them, and `--workers` replaces the file's `scheduler` (and vice versa). Options the
    chosen executor does not take are a ConfigError, never silently ignored.
    """

    def named(table: dict[str, Any]) -> str | None:
        """The executor a table names, or implies (workers or scheduler: only dask takes them)."""
        name = table.pop("executor", None)
        return name or ("dask" if {"workers", "scheduler"} & set(table) else None)

    options = {k: v for k, v in file.items() if v is not None}
    given = {k: v for k, v in flags.items() if v is not None}
    in_file, in_flags = named(options), named(dict(given))
    given.pop("executor", None)
    name = in_flags or in_file or "serial"
    if name != (in_file or "serial"):
        options = {k: v for k, v in options.items() if k == "threads"}
    if "workers" in given or "scheduler" in given:
        options.pop("workers", None)
        options.pop("scheduler", None)
    options.update(given)
    if name == "serial" and ("workers" in options or "scheduler" in options):
        raise ConfigError("--workers and --scheduler apply to --executor dask, not serial")
    return get(name, **options)


class _Lines:
    """Progress for a log (stderr not a terminal): one short line every ~10% or ~30 s."""

    def __init__(self, batches: Iterable[list[RunResult]], total: int, desc: str) -> None:
        self.batches, self.total, self.desc = batches, total, desc

    def __iter__(self) -> Iterator[list[RunResult]]:
        start = last = time.monotonic()
        step = max(1, self.total // 10)
        done = 0
        for batch in self.batches:
            yield batch
            before, done = done, done + len(batch)
            now = time.monotonic()
            if done < self.total and (done // step > before // step or now - last >= 30):
                last = now
                print(
                    f"{self.desc}: {done}/{self.total} ({now - start:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )


def _bar(batches: Iterable[list[RunResult]], total: int, desc: str) -> Iterator[list[RunResult]]:
    bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr)
    try:
        for batch in batches:
            yield batch
            bar.update(len(batch))
    finally:
        bar.close()


def _progress(
    batches: Iterable[list[RunResult]], total: int, desc: str
) -> Iterable[list[RunResult]]:
    """A progress bar on a terminal; a line every ~10% or ~30 s in a log (CI, nohup), counting
    runs (a task of a vectorised group finishes many at once)."""
    if not sys.stderr.isatty():
        return _Lines(batches, total, desc) if total >= 20 else batches
    return _bar(batches, total, desc)


def one_run(fn: Callable[[RunSpec], RunResult], spec: RunSpec) -> list[RunResult]:
    """A task of one spec through `fn` (module level: it travels to Dask workers)."""
    return [fn(spec)]


def run_all(
    specs: Sequence[RunSpec],
    executor: Executor | None = None,
    fn: Callable[[RunSpec], RunResult] | None = None,
    desc: str = "runs",
    on_result: Callable[[RunResult], None] | None = None,
    engine: str = DEFAULT_ENGINE,
    on_group: Callable[[list[RunResult]], None] | None = None,
    timeout: float | None = None,
) -> list[RunResult]:
    """Every spec's result, in the order of `specs`, whatever order the executor finishes in.

    The distinct specs are planned into groups for `engine` (`bench.run.engines.plan`: what it
    cannot compute runs per-run), one executor task each; with `fn(spec) -> RunResult` instead,
    every spec is a task of its own (an instrumented runner, in tests). As each task's results
    arrive, in this process and before the next task's are taken, `on_group(results)` is
    called (the result store persists them in one transaction, so a kill loses only the groups
    in flight), then `on_result(result)` for each. A spec given twice is computed once.
    `timeout`: seconds a run may take (`runner.run`'s; the groups carry it).
    """
    distinct = list(dict.fromkeys(specs))
    if fn is None:
        tasks: Sequence[Any] = plan(distinct, engine, timeout=timeout)
        call: Callable[[Any], list[RunResult]] = run_group
    else:
        tasks, call = distinct, partial(one_run, fn)
    found: dict[RunSpec, RunResult] = {}
    batches = (executor or SerialExecutor()).map(call, tasks)
    for results in _progress(batches, len(distinct), desc):
        if on_group is not None:
            on_group(results)
        for result in results:
            if on_result is not None:
                on_result(result)
            found[result.spec] = result
    return [found[spec] for spec in specs]


# Registered last: it registers itself with the decorator above.
from bench.run.executors import dask as _dask  # noqa: E402, F401
