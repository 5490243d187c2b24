"""`--executor dask`: runs on a Dask cluster of long-lived, single-threaded worker processes.

Without `scheduler`, a `distributed.LocalCluster` of `workers` processes (default: the machine's
cores) is started on 127.0.0.1, without a dashboard, and closed with the executor. With
`scheduler="tcp://host:port"` an existing cluster is used (`dask scheduler` + `dask worker
--nthreads 1`, or dask-jobqueue's `SLURMCluster`, see the README) and only the client is closed.

The items `map` is given are `run_all`'s groups (`bench.run.engines.plan`: one per-run spec,
or a vectorised group of many); a group is never split across tasks. Each Dask task is a few
items, one after another: `_run_tasks(fn, items, plugins, threads)`. Dask spends ~17 ms of CPU
on every task (client, scheduler and worker together, measured with no-op tasks on this 2-core
machine), as much as a tenth of a typical run here, and on a machine whose cores all run
workers that overhead is taken from the runs. So items are handed out in chunks sized by guided
self-scheduling (`chunk_size`): about `TASK_SECONDS` of work each (estimated from the items
finished so far; `tally` counts items as "runs"), but never more than the remaining items / (4 x
the parallel slots), so chunks shrink toward the end of a batch and no worker is left alone with
a long tail. A spec is a frozen dataclass and pickles as is, and names its plug-ins by import
path: nothing else travels, and a worker started before a plug-in was loaded rebuilds it from
the spec. Each worker pins torch to `threads` intra-op threads (a worker plugin at start-up,
and again in the task's own thread): the same count as the serial path, so the same losses.

Results are yielded as their task finishes (`distributed.as_completed`), at most `in_flight`
tasks submitted at a time, so a suite of thousands of runs never floods the scheduler and a
crash of the client loses only the runs in flight (the chunks being run: whole groups, at
most about `TASK_SECONDS` of work per worker). A worker that dies mid-task (killed, out of
memory) loses its chunk: the scheduler reschedules it on another worker (up to
`distributed.scheduler.allowed-failures` times), and `retries` resubmits a task that raised. The
cluster and client are closed on every way out: the end of the `with` block, an error,
KeyboardInterrupt.

With a per-run `--timeout`, each task is one run and at most one task per slot is in flight,
so a task's clock starts when it is submitted; a task still running `TIMEOUT_SLACK_S` after its
timeout (a plug-in stuck where no signal reaches it, in the worker's task thread) is cancelled,
the worker running it restarted by its nanny, and its run recorded as `timeout`.

`distributed` is imported when the executor starts, not when optbench starts (it takes ~1.5 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bench.errors import ConfigError
from bench.run.device import DEFAULT_THREADS, set_threads
from bench.run.engines import PER_RUN, with_engine
from bench.run.executors import check_count, register
from bench.run.runner import stopped
from bench.schema import Status

RETRIES = 2  # resubmissions of a task that raised (a worker lost mid-transfer, say)
CONNECT_TIMEOUT_S = 30  # to reach an existing scheduler
WAIT_FOR_WORKERS_S = 300  # an existing cluster's first worker (a batch job may be queued)
IN_FLIGHT_PER_SLOT = 4  # submitted-but-unfinished tasks per parallel slot: workers never idle
TASK_SECONDS = 1.0  # the work a task is sized for: Dask's ~17 ms per task is then ~2% of it
MAX_RUNS_PER_TASK = 64
TASKS_PER_SLOT = 4  # guided self-scheduling: a task takes at most remaining / (4 x slots) runs
POLL_S = 1.0  # with --timeout: how often the clocks of the tasks in flight are read
TIMEOUT_SLACK_S = 30.0  # a run's --timeout, plus a task's hand-over and a new worker's imports
RESTART_TIMEOUT_S = 120  # a hung worker's restart (its nanny kills the process)
# Dask's workers sample their task's stack every 10 ms by default (for the dashboard's profile):
# measured at 15-20% of a worker's CPU on these runs, and it holds the GIL while it samples.
# Its housekeeping (event-loop health ticks every 20 ms, system monitor every 0.5 s, memory
# monitor every 0.1 s) costs an idle 2-worker LocalCluster 10.6% of a core (client 5.5%,
# workers 2.5% each); at 1 s / 5 s / 1 s it costs 1.6% (measured here over 20 s), cores that
# go back to the runs. Nothing here reads those metrics (no dashboard); memory limits are
# still enforced, checked once a second.
LOCAL_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def chunk_size(remaining: int, slots: int, run_seconds: float | None) -> int:
    """How many of the `remaining` runs the next task takes (guided self-scheduling).

    About TASK_SECONDS of work at `run_seconds` per run (1 while no run has finished: nothing
    is known yet), capped by remaining / (TASKS_PER_SLOT x slots), so that the last tasks of
    a batch are single runs and the workers finish together, and by MAX_RUNS_PER_TASK.
    """
    guided = remaining // (TASKS_PER_SLOT * max(1, slots))
    wanted = 1 if not run_seconds else int(TASK_SECONDS / max(run_seconds, 1e-6))
    return max(1, min(wanted, guided, MAX_RUNS_PER_TASK, remaining))


def _run_tasks(
    fn: Callable[[Any], Any], items: Sequence[Any], threads: int
) -> tuple[list[Any], float]:
    """Items in a worker, one after another, torch's threads pinned (a spec names its plug-ins:
    nothing else travels). Returns fn(item) of each and the seconds they took (for sizing)."""
    set_threads(threads)
    start = time.perf_counter()
    results = [fn(item) for item in items]
    return results, time.perf_counter() - start


def _worker_plugin(threads: int) -> Any:
    from distributed.diagnostics.plugin import WorkerPlugin

    class PinTorchThreads(WorkerPlugin):
        """Pins torch's intra-op threads when a worker starts (or restarts after a crash)."""

        idempotent = False  # a new client's count replaces the old one
        name = "optbench-torch-threads"

        def __init__(self, n: int) -> None:
            self.n = n

        def setup(self, worker: Any) -> None:
            set_threads(self.n)
            worker.optbench_torch_threads = self.n  # recorded on the worker, for inspection

    return PinTorchThreads(threads)


@register("dask")
class DaskExecutor:
    """Runs on Dask: a LocalCluster of `workers` processes, or the cluster at `scheduler`."""

    def __init__(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        threads: int = DEFAULT_THREADS,
        retries: int = RETRIES,
        in_flight: int | None = None,
        runs_per_task: int | None = None,
    ) -> None:
        """`in_flight` tasks submitted at a time (default IN_FLIGHT_PER_SLOT per slot);
        `runs_per_task` fixes the chunk size (default: `chunk_size`, adaptive)."""
        if workers is not None and scheduler is not None:
            raise ConfigError(
                "give --workers (a local cluster) or --scheduler (an existing one), not both"
            )
        if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
            raise ConfigError(f"scheduler must be an address (tcp://host:port), got {scheduler!r}")
        self.workers = check_count("workers", workers if workers is not None else _cores())
        self.scheduler = scheduler.strip() if scheduler else None
        self.threads = check_count("threads", threads)
        self.retries = retries
        self.in_flight = in_flight
        self.runs_per_task = (
            None if runs_per_task is None else check_count("runs_per_task", runs_per_task)
        )
        # What the runs cost, across batches (a sweep's phases): sizes the chunks.
        self.tally = {"tasks": 0, "runs": 0, "seconds": 0.0}
        self._client: Any = None
        self._cluster: Any = None
        self._info: dict[str, Any] = {}

    @property
    def description(self) -> str:
        where = self.scheduler or f"a local cluster of {self.workers} workers"
        return f"dask ({where}, single-threaded workers)"

    # -- lifetime --------------------------------------------------------------------------------

    def __enter__(self) -> DaskExecutor:
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self._client is not None:
            return
        import dask
        from distributed import Client, LocalCluster

        try:
            if self.scheduler is None:
                with dask.config.set(LOCAL_CONFIG):  # the workers take it with them
                    self._cluster = self._local_cluster(LocalCluster)
                self._client = Client(self._cluster)
            else:
                try:
                    self._client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError, ValueError) as exc:
                    raise ConfigError(
                        f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
                    ) from None
                try:
                    self._client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
                except TimeoutError:
                    raise ConfigError(
                        f"the Dask scheduler at {self.scheduler} has no workers "
                        f"(waited {WAIT_FOR_WORKERS_S} s)"
                    ) from None
            try:  # the plug-in is optbench code: the first thing a worker must import
                self._client.register_plugin(_worker_plugin(self.threads))
            except Exception as exc:
                raise ConfigError(
                    f"the Dask workers cannot load optbench ({exc}); start the scheduler and the "
                    "workers with the optbench checkout on their path: PYTHONPATH=/path/to/optbench"
                ) from None
            self._info = self._describe()
        except BaseException:
            self.close()
            raise

    def _local_cluster(self, cls: Any) -> Any:
        return cls(
            n_workers=self.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,  # no dashboard, and:
            # its bare HTTP endpoint (health checks) on any free local port, not 8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            worker_dashboard_address=None,
            # Shutdown races (a heartbeat to a closing scheduler) log errors that mean nothing;
            # a real failure reaches the client as the task's exception.
            silence_logs=logging.CRITICAL,
        )

    def close(self) -> None:
        """Close the client, and the cluster if this executor started it (idempotent)."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    def _describe(self) -> dict[str, Any]:
        workers = self._client.scheduler_info(n_workers=-1)["workers"].values()
        nthreads = [w.get("nthreads", 1) for w in workers]
        return {
            "executor": "dask",
            "scheduler": self.scheduler or "local cluster on 127.0.0.1",
            "workers": len(nthreads),
            "runs_per_worker": max(nthreads, default=1),
            "parallel_runs": sum(nthreads),
            "torch_threads": self.threads,
            "cores": os.cpu_count(),
        }

    def info(self) -> dict[str, Any]:
        """How the runs shared the machine; the worker count is what the scheduler reported at
        the start (for a LocalCluster, `workers` until started)."""
        if self._info:
            return dict(self._info)
        return {
            "executor": "dask",
            "scheduler": self.scheduler or "local cluster on 127.0.0.1",
            "workers": self.workers,
            "runs_per_worker": 1,
            "parallel_runs": self.workers,
            "torch_threads": self.threads,
            "cores": os.cpu_count(),
        }

    # -- work ------------------------------------------------------------------------------------

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Any]:
        """fn(item) of every item, as each finishes; outside a `with` block the cluster is
        started here and closed when the iteration ends (or is abandoned)."""
        owned = self._client is None
        self._start()
        try:
            yield from self._map(fn, items)
        finally:
            if owned:
                self.close()

    def _map(self, fn: Callable[[Any], Any], specs: Sequence[Any]) -> Iterator[Any]:
        from distributed import as_completed

        slots = max(1, self._info["parallel_runs"])
        timeout = max((t for t in (getattr(s, "timeout", None) for s in specs) if t), default=None)
        # With a timeout a task must start when it is submitted (its clock starts then): one
        # run per task, one task per slot.
        limit = slots if timeout else self.in_flight or IN_FLIGHT_PER_SLOT * slots
        taken = 0
        started: dict[Any, tuple[list[Any], float]] = {}

        def submit_next() -> Any:
            """The next chunk of items as one task (None when every item is submitted)."""
            nonlocal taken
            if taken == len(specs):
                return None
            runs, seconds = self.tally["runs"], self.tally["seconds"]
            size = 1 if timeout else self.runs_per_task or chunk_size(
                len(specs) - taken, slots, seconds / runs if runs else None
            )  # fmt: skip
            chunk = list(specs[taken : taken + size])
            taken += len(chunk)
            future = self._client.submit(
                _run_tasks, fn, chunk, self.threads, retries=0 if timeout else self.retries,
                pure=False,
            )  # fmt: skip
            started[future] = (chunk, time.monotonic())
            return future

        first = [submit_next() for _ in range(limit)]
        futures = as_completed([f for f in first if f is not None])
        try:
            while futures.count():
                if timeout:  # wake up to check the clocks of the tasks in flight
                    done = futures.next_batch(block=False) or self._wait(futures, POLL_S)
                    expired = [
                        f for f in list(futures.futures) if f not in done and f in started
                        and time.monotonic() - started[f][1] > timeout + TIMEOUT_SLACK_S
                    ]  # fmt: skip
                else:
                    done, expired = [next(futures)], []
                for future in done:
                    if future not in started:  # cancelled when it timed out: already recorded
                        continue
                    yield from self._take(future, started.pop(future)[0])
                    nxt = submit_next()
                    if nxt is not None:
                        futures.add(nxt)
                for future in expired:
                    chunk = started.pop(future)[0]
                    yield from self._stop(future, chunk, timeout)
                    nxt = submit_next()
                    if nxt is not None:
                        futures.add(nxt)
        finally:
            # Interrupted or failed: nothing is left running for a result nobody will read.
            left = list(futures.futures)
            futures.clear()
            if left and self._client is not None:
                self._client.cancel(left)

    @staticmethod
    def _wait(futures: Any, seconds: float) -> list[Any]:
        from distributed import wait

        pending = list(futures.futures)
        if pending:
            with contextlib.suppress(TimeoutError):  # none finished in `seconds`: look again
                wait(pending, timeout=seconds, return_when="FIRST_COMPLETED")
        return futures.next_batch(block=False)

    def _take(self, future: Any, chunk: list[Any]) -> Iterator[Any]:
        """A finished task's results (and its tally, for sizing the next chunks)."""
        try:
            results, seconds = future.result()
        except RuntimeError as exc:  # the scheduler unpickles specs: it needs optbench
            if "deserialization of the task graph" not in str(exc):
                raise
            raise ConfigError(
                f"the Dask scheduler at {self.scheduler} cannot load optbench; start it "
                "with the optbench checkout on its path: PYTHONPATH=/path/to/optbench"
            ) from None
        future.release()
        self.tally["tasks"] += 1
        self.tally["runs"] += len(results)
        self.tally["seconds"] += seconds
        yield from results

    def _stop(self, future: Any, chunk: list[Any], timeout: float) -> Iterator[Any]:
        """A task past its runs' timeout: cancelled, the worker running it restarted (a thread
        stuck in a plug-in cannot be stopped otherwise), its runs recorded as timed out."""
        processing = self._client.processing()
        workers = [w for w, keys in processing.items() if future.key in keys]
        self._client.cancel([future], force=True)
        if workers:
            self._client.restart_workers(workers, timeout=RESTART_TIMEOUT_S, raise_for_error=False)
        why = f"stopped after {timeout:g} s (--timeout): its Dask worker was restarted"
        for group in chunk:
            yield [with_engine(stopped(spec, Status.TIMEOUT, why), PER_RUN) for spec in group.specs]


def _cores() -> int:
    return os.cpu_count() or 1
