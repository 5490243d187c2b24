"""Running specs through a store: stored runs are reused, the others computed by the executor
(in groups, `bench.run.engines`) and persisted group by group as they arrive, each group in one
transaction, here, in the process that consumes the results (an executor may run them in other
processes, in any order): a kill loses at most the groups in flight. Every result handed back
is read from the store, so tables built from it are the same whether a run was computed now or
reused from an interrupted invocation.

With a `shared` store (the result cache of the output folders that keep history, see
`bench.output.history`), runs are looked up in both, a computed run is stored in the shared
one first and then in the folder's, and a run reused from the shared store is copied into the
folder's: the folder's store ends up holding exactly the runs its output shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.run.engines import DEFAULT_ENGINE, engine_of, get
from bench.run.executors import Executor, run_all
from bench.run.runner import RunResult
from bench.run.spec import RunSpec
from bench.store.db import Store
from bench.store.keys import run_key


class CachedRuns:
    """`results(specs)` through `store` (and `shared`); `fresh` recomputes every run once per
    invocation; `timeout` stops a run after that many seconds (status timeout, never reused).

    `engine` computes what is missing (a spec it cannot compute goes per-run); a run is stored
    and looked up under the key of the engine that computes it (`key`), so a vectorised command
    never reuses a per-run result or the other way round."""

    def __init__(
        self,
        store: Store,
        executor: Executor | None = None,
        *,
        fresh: bool = False,
        say: Callable[[str], None] | None = None,
        timeout: float | None = None,
        shared: Store | None = None,
        engine: str = DEFAULT_ENGINE,
    ) -> None:
        get(engine)  # an unknown engine is a ConfigError here, before anything runs
        self.store, self.executor, self.fresh, self.engine = store, executor, fresh, engine
        self.timeout = timeout
        self.shared = shared
        self.source = store if shared is None else shared  # where runs are reused from
        self.say = say or (lambda _msg: None)
        self.computed: set[str] = set()  # keys computed by this invocation
        self.reused = 0
        self.phase: tuple[str, list[RunSpec]] = ("runs", [])  # what is in flight, for messages
        self._keys: dict[RunSpec, str] = {}

    def key(self, spec: RunSpec) -> str:
        """The store key of `spec` as this command computes it (see `bench.store.keys`)."""
        key = self._keys.get(spec)
        if key is None:
            key = self._keys[spec] = run_key(spec, engine_of(spec, self.engine))
        return key

    def _persist(self, results: list[RunResult]) -> None:
        """Store a group's finished runs in one transaction, each with how its epochs were
        timed (its own provenance: a run reused later keeps it, whatever executor the later
        command uses); in the shared store first, when there is one."""
        info = self.executor.info() if hasattr(self.executor, "info") else {}
        for result in results:
            result.summary["timed_by"] = info.get("executor", "serial")
            result.summary["parallel_runs"] = int(info.get("parallel_runs") or 1)
        keys = [self.key(r.spec) for r in results]
        if self.shared is not None:  # first: what the next invocation resumes from
            self.shared.put_many(results, keys)
        self.computed.update(self.store.put_many(results, keys))

    def results(self, specs: Sequence[RunSpec], desc: str = "runs") -> list[RunResult]:
        """Every spec's result, in order, from the store; the missing ones computed first."""
        self.phase = (desc, list(specs))
        distinct: dict[str, RunSpec] = {}
        for spec in specs:
            distinct.setdefault(self.key(spec), spec)
        local = self.store.reusable_keys()
        pool = self.shared.reusable_keys() if self.shared is not None and not self.fresh else set()
        usable = self.computed if self.fresh else local | pool | self.computed
        todo = [s for k, s in distinct.items() if k not in usable]
        reused = len(distinct) - len(todo)
        self.reused += reused
        if reused:
            self.say(
                f"optbench: {reused} of {len(distinct)} {desc} reused from {self.source.path}"
                + (f"; computing {len(todo)}" if todo else "")
            )
        if self.shared is not None:
            self.store.copy_from(self.shared, [k for k in distinct if k in pool - local])
        if todo:
            run_all(
                todo, self.executor, desc=desc, engine=self.engine, on_group=self._persist,
                timeout=self.timeout,
            )  # fmt: skip
        return self.store.load_keys([self.key(s) for s in specs], specs)

    def in_store(self) -> tuple[int, int, str]:
        """(stored, total, desc) of the specs in flight: what an interruption leaves."""
        desc, specs = self.phase
        distinct = {self.key(s) for s in specs}
        with Store(self.source.path) as store:  # ours may be closed by the unwinding
            usable = self.computed if self.fresh else store.keys()
        return len(distinct & usable), len(distinct), desc
