"""`per-run`: `bench.run.runner.run`, one spec after another (any spec: the fallback engine)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from bench.run.engines import PER_RUN, register, with_engine
from bench.run.runner import RunResult, run
from bench.run.spec import RunSpec


@register
class PerRun:
    name = PER_RUN

    def key(self, spec: RunSpec) -> Hashable:
        return spec

    def capacity(self, spec: RunSpec) -> int:
        return 1

    def run(self, specs: Sequence[RunSpec], timeout: float | None = None) -> list[RunResult]:
        return [with_engine(run(spec, timeout=timeout), PER_RUN) for spec in specs]
