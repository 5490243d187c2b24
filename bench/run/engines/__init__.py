"""Engines: how a group of run specs is computed. A spec's numbers never depend on its group.

An engine is a name in `ENGINES` with `key(spec)` (specs with equal keys may be computed
together; None: this engine cannot compute the spec), `capacity(spec)` (at most that many runs
in one group) and `run(specs) -> list[RunResult]`, one result per spec, in order. Adding one is
one module in this folder with a `@register`-ed class.

- `per-run` (`per_run.py`): `bench.run.runner.run`, one spec after another.
- `vectorised` (`vectorised/`): a group of compatible specs (same problem, model, method,
  batch size, epochs, dtype; any learning rates, momenta, betas, eps, weight decays, seeds) as
  one program over parameters stacked along a leading run axis. What it cannot compute
  (plug-in optimizers, torch implementations, plug-in models, other devices) goes to `per-run`.

`plan(specs, engine)` partitions specs into `Group`s (a vectorisable group, or a per-run
singleton) and `run_group(group)` computes one: one group is one executor task. Every result
says which engine computed it (`engine` in its rows and summary); `engine_of` says it before
anything runs (the result store keys a run by it, see `bench.store.keys.run_key`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.errors import ConfigError
from bench.run.runner import RunResult
from bench.run.spec import RunSpec

PER_RUN = "per-run"
VECTORISED = "vectorised"
DEFAULT_ENGINE = PER_RUN


class Engine(Protocol):
    name: str

    def key(self, spec: RunSpec) -> Hashable | None:
        """Specs with equal keys can be computed together; None: not by this engine."""
        ...

    def capacity(self, spec: RunSpec) -> int:
        """At most this many runs of `spec`'s key in one group."""
        ...

    def run(self, specs: Sequence[RunSpec], timeout: float | None = None) -> list[RunResult]:
        """One result per spec, in order (the specs share one key); a run still going after
        `timeout` seconds is stopped (status timeout)."""
        ...


ENGINES: dict[str, Engine] = {}


def register(cls: type) -> type:
    """Class decorator: one instance of the engine is `ENGINES[cls.name]`."""
    if cls.name in ENGINES:
        raise ValueError(f"engine {cls.name!r} is already registered")
    ENGINES[cls.name] = cls()
    return cls


def get(name: str) -> Engine:
    """The registered engine, or a ConfigError listing the known ones."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None


@dataclass(frozen=True)
class Group:
    """Specs one engine computes together (one executor task)."""

    engine: str
    specs: tuple[RunSpec, ...]
    timeout: float | None = None  # seconds a run may take (the per-run engine enforces it)

    def __len__(self) -> int:
        return len(self.specs)


def engine_of(spec: RunSpec, engine: str = DEFAULT_ENGINE) -> str:
    """The engine that computes `spec` when `engine` is asked for (falls back to per-run)."""
    return engine if get(engine).key(spec) is not None else PER_RUN


def plan(
    specs: Sequence[RunSpec],
    engine: str = DEFAULT_ENGINE,
    max_runs: int | None = None,
    timeout: float | None = None,
) -> list[Group]:
    """The distinct specs as groups, in order of first appearance: specs the engine can compute
    grouped by its key (at most `capacity` or `max_runs` runs a group), every other spec a
    per-run singleton."""
    chosen = get(engine)
    fallback = get(PER_RUN)
    keyed: dict[Any, list[RunSpec]] = {}
    for spec in dict.fromkeys(specs):
        key = chosen.key(spec)
        which = chosen if key is not None else fallback
        key = (which.name, key if key is not None else fallback.key(spec))
        keyed.setdefault(key, []).append(spec)
    groups = []
    for (name, _), members in keyed.items():
        limit = ENGINES[name].capacity(members[0])
        if max_runs is not None:
            limit = min(limit, max_runs)
        limit = max(1, limit)
        for i in range(0, len(members), limit):
            groups.append(Group(name, tuple(members[i : i + limit]), timeout))
    return groups


def run_group(group: Group) -> list[RunResult]:
    """Every spec's result, in the group's order."""
    results = get(group.engine).run(group.specs, group.timeout)
    if len(results) != len(group.specs):
        raise RuntimeError(f"engine {group.engine!r} returned {len(results)} results "
                           f"for {len(group.specs)} specs")  # fmt: skip
    return results


def with_engine(result: RunResult, name: str) -> RunResult:
    """The result with `engine` (after `impl`) in its rows and summary."""
    return RunResult(
        result.spec, [tag(row, name) for row in result.rows], tag(result.summary, name)
    )


def tag(record: dict[str, Any], name: str) -> dict[str, Any]:
    """`record` with `engine: name` after its `impl`."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key != "engine":
            out[key] = value
        if key == "impl":
            out["engine"] = name
    out.setdefault("engine", name)
    return out


# Registered last: each registers itself with the decorator above.
from bench.run.engines import per_run as _per_run  # noqa: E402, F401
from bench.run.engines import vectorised as _vectorised  # noqa: E402, F401
