"""Running specs through a store: stored runs are reused, the others computed by the executor
and persisted one by one as they arrive, here, in the process that consumes the results (an
executor may run them in other processes, in any order). Every result handed back is read
from the store, so tables built from it are the same whether a run was computed now or
reused from an interrupted invocation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from bench.run.executors import Executor, run_all
from bench.run.runner import RunResult, run
from bench.run.spec import RunSpec
from bench.store.db import Store
from bench.store.keys import run_key


class CachedRuns:
    """`results(specs)` through `store`; `fresh` recomputes every run once per invocation;
    `timeout` stops a run after that many seconds (status timeout, never reused later)."""

    def __init__(
        self,
        store: Store,
        executor: Executor | None = None,
        *,
        fresh: bool = False,
        say: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.store, self.executor, self.fresh = store, executor, fresh
        self.fn = functools.partial(run, timeout=timeout) if timeout is not None else run
        self.say = say or (lambda _msg: None)
        self.computed: set[str] = set()  # keys computed by this invocation
        self.reused = 0
        self.phase: tuple[str, list[RunSpec]] = ("runs", [])  # what is in flight, for messages

    def _persist(self, result: RunResult) -> None:
        """Store a finished run with how its epochs were timed (its own provenance: a run
        reused later keeps it, whatever executor the later command uses)."""
        info = self.executor.info() if hasattr(self.executor, "info") else {}
        result.summary["timed_by"] = info.get("executor", "serial")
        result.summary["parallel_runs"] = int(info.get("parallel_runs") or 1)
        self.computed.add(self.store.put(result))

    def results(self, specs: Sequence[RunSpec], desc: str = "runs") -> list[RunResult]:
        """Every spec's result, in order, from the store; the missing ones computed first."""
        self.phase = (desc, list(specs))
        distinct: dict[str, RunSpec] = {}
        for spec in specs:
            distinct.setdefault(run_key(spec), spec)
        usable = self.computed if self.fresh else self.store.reusable_keys() | self.computed
        todo = [s for k, s in distinct.items() if k not in usable]
        reused = len(distinct) - len(todo)
        self.reused += reused
        if reused:
            self.say(
                f"optbench: {reused} of {len(distinct)} {desc} reused from {self.store.path}"
                + (f"; computing {len(todo)}" if todo else "")
            )
        if todo:
            run_all(todo, self.executor, self.fn, desc=desc, on_result=self._persist)
        return self.store.load(specs)

    def in_store(self) -> tuple[int, int, str]:
        """(stored, total, desc) of the specs in flight: what an interruption leaves."""
        desc, specs = self.phase
        distinct = {run_key(s) for s in specs}
        with Store(self.store.path) as store:  # ours may be closed by the unwinding
            usable = self.computed if self.fresh else store.keys()
        return len(distinct & usable), len(distinct), desc
