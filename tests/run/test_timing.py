"""Trustworthy timing: pinned threads, CPU time, disturbed epochs flagged and excluded, and the
report saying so (parallel timing, excluded epochs). No Dask here (tests/run/test_executors.py)."""

from __future__ import annotations

import itertools
import math
import statistics
import time

import pytest
import torch

from bench import cli
from bench.analysis.tables import tables
from bench.analysis.timing import disturbed_counts, parallel_note
from bench.errors import ConfigError
from bench.output import run_report
from bench.output.doc import markdown
from bench.run import envinfo, executors
from bench.run.config import suite_from_dict
from bench.run.device import DEFAULT_THREADS, CpuBackend, PerfCounterStopwatch, torch_threads
from bench.run.executors import SerialExecutor, run_all
from bench.run.runner import (
    DISTURBED_OVER_CPU,
    DISTURBED_OVER_MEDIAN,
    DISTURBED_SLACK_S,
    disturbed_epochs,
    run,
)
from bench.run.spec import RunSpec

STALL_S = 0.1  # ~300x a crops15 gd epoch (~0.3 ms): a descheduled process; 10x what a busy
# machine can make such an epoch cost in CPU time (measured up to 3.3 ms at load 5 on 2 cores)


class StallingBackend(CpuBackend):
    """CPU backend whose stopwatch sleeps inside the timed region of the chosen epochs (1-based):
    wall time goes up, the process's CPU time does not, as when another process takes the core."""

    def __init__(self, stall_epochs: set[int], stall_s: float = STALL_S) -> None:
        self.stall_epochs, self.stall_s = stall_epochs, stall_s

    def stopwatch(self):
        backend = self

        class Watch(PerfCounterStopwatch):
            epoch = 0

            def start(self) -> None:
                super().start()
                self.epoch += 1
                if self.epoch in backend.stall_epochs:
                    time.sleep(backend.stall_s)

        return Watch()


def gd_spec(**kw) -> RunSpec:
    base = dict(dataset="crops15", method="gd", hparams=(("lr", 1e-5),), batch_size=12, epochs=12)
    base.update(kw)
    return RunSpec(**base)


M, C, S = DISTURBED_OVER_MEDIAN, DISTURBED_OVER_CPU, DISTURBED_SLACK_S


@pytest.mark.parametrize(
    ("walls", "cpus", "cpu_meaningful", "expected"),
    [
        ([1e-3] * 5, [1e-3] * 5, True, [False] * 5),  # quiet
        ([1e-3, 1e-3, 1e-3 * M * 1.01, 1e-3], [1e-3, 1e-3, 1e-3 * M * 1.01, 1e-3], True,
         [False, False, True, False]),  # slow though on the CPU: far above the median
        ([1e-3, 1e-3, 1e-3 * M * 0.99, 1e-3], [1e-3, 1e-3, 1e-3 * M * 0.99, 1e-3], True,
         [False] * 4),  # just under the median bound, on the CPU throughout
        ([1e-3, 2.6e-3, 1e-3], [1e-3, 1e-3, 1e-3], True, [False, True, False]),  # off the CPU
        ([1e-3, 2.4e-3, 1e-3], [1e-3, 1e-3, 1e-3], True, [False, False, False]),  # within slack
        ([1e-3, 2.6e-3, 1e-3], [1e-3, 1e-3, 1e-3], False, [False, False, False]),  # CUDA: no CPU
        ([10e-6, C * 10e-6 + S * 0.9, 10e-6, 10e-6, 10e-6], [10e-6] * 5, True,
         [False, True, False, False, False]),  # tiny epoch: the median rule still sees 50x
        ([1e-3, math.nan], [1e-3, math.nan], True, [False, False]),  # an overflow is not judged
    ],
)  # fmt: skip
def test_disturbed_rule(walls, cpus, cpu_meaningful, expected):
    assert disturbed_epochs(walls, cpus, cpu_meaningful) == expected


def test_injected_stalls_are_flagged_excluded_and_not_drawn_as_plateaus():
    stalls = {4, 9}
    result = run(gd_spec(), backend=StallingBackend(stalls))
    rows, s = result.rows, result.summary
    flagged = {r["epoch"] for r in rows if r["disturbed"]}
    assert stalls <= flagged
    for r in rows[1:]:
        assert r["epoch_cpu_s"] > 0
        if r["epoch"] in stalls:  # raw wall time kept; the CPU never saw the stall
            assert r["epoch_time_s"] >= STALL_S > 10 * r["epoch_cpu_s"]
    clean = [r["epoch_time_s"] for r in rows[1:] if not r["disturbed"]]
    assert s["disturbed_epochs"] == len(flagged)
    assert s["time_stats_exclude_disturbed"] is True
    assert s["median_epoch_time_s"] == statistics.median(clean) < STALL_S / 10
    assert s["total_time_s"] == pytest.approx(sum(r["epoch_time_s"] for r in rows[1:]))
    # elapsed_s: a disturbed epoch counts at the median, so no plateau of STALL_S appears
    steps = [b["elapsed_s"] - a["elapsed_s"] for a, b in itertools.pairwise(rows)]
    for r, step in zip(rows[1:], steps, strict=True):
        expected = s["median_epoch_time_s"] if r["disturbed"] else r["epoch_time_s"]
        assert step == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert rows[-1]["elapsed_s"] < STALL_S


def test_a_run_with_every_epoch_disturbed_says_its_median_includes_them():
    result = run(gd_spec(epochs=3), backend=StallingBackend({1, 2, 3}, stall_s=0.005))
    s = result.summary
    assert s["disturbed_epochs"] == 3
    assert s["time_stats_exclude_disturbed"] is False
    walls = [r["epoch_time_s"] for r in result.rows[1:]]
    assert s["median_epoch_time_s"] == statistics.median(walls)


def test_serial_executor_pins_threads_records_them_and_restores():
    with torch_threads(2):
        results = run_all([gd_spec(epochs=2)], SerialExecutor())  # default: DEFAULT_THREADS
        assert torch.get_num_threads() == 2
        three = run_all([gd_spec(epochs=2)], SerialExecutor(threads=3))
    assert results[0].summary["torch_threads"] == DEFAULT_THREADS
    assert three[0].summary["torch_threads"] == 3
    info = SerialExecutor(threads=1).info()
    assert (info["executor"], info["parallel_runs"], info["torch_threads"]) == ("serial", 1, 1)


# ----------------------------------------------------------------------------------------------
# Choosing the executor: flags over the suite file over the defaults


def test_build_executor_from_file_and_flags():
    none = {"executor": None, "workers": None, "scheduler": None, "threads": None}
    assert isinstance(executors.build({}, none), SerialExecutor)
    dask = executors.build({"executor": "dask", "workers": 2}, none)
    assert (type(dask).__name__, dask.workers, dask.threads) == ("DaskExecutor", 2, 1)
    flagged = executors.build({"executor": "dask", "workers": 2}, {**none, "workers": 3})
    assert flagged.workers == 3
    remote = executors.build({"executor": "dask", "workers": 2}, {**none, "scheduler": "tcp://x:1"})
    assert remote.scheduler == "tcp://x:1"
    # A flag naming another executor drops the file's dask options but keeps its threads.
    serial = executors.build({"executor": "dask", "workers": 2, "threads": 2},
                             {**none, "executor": "serial"})  # fmt: skip
    assert isinstance(serial, SerialExecutor)
    assert serial.threads == 2
    from_file = executors.build({"workers": 2}, none)  # workers alone: dask, in a file too
    assert (type(from_file).__name__, from_file.workers) == ("DaskExecutor", 2)
    implied = executors.build({}, {**none, "scheduler": "tcp://x:1"})  # only dask takes it
    assert (type(implied).__name__, implied.scheduler) == ("DaskExecutor", "tcp://x:1")
    with pytest.raises(ConfigError, match="apply to --executor dask"):
        executors.build({}, {**none, "executor": "serial", "workers": 2})
    with pytest.raises(ConfigError, match="not both"):
        executors.build({}, {**none, "executor": "dask", "workers": 2, "scheduler": "tcp://x:1"})
    with pytest.raises(ConfigError, match="unknown executor 'ray'; known: serial, dask"):
        executors.build({}, {**none, "executor": "ray"})
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        executors.build({}, {**none, "threads": 0})


def test_suite_file_execution_keys():
    suite = suite_from_dict({"executor": "dask", "workers": 2, "threads": 1})
    assert dict(suite.execution) == {"executor": "dask", "workers": 2, "threads": 1}
    for bad in ({"workers": "two"}, {"workers": 0}, {"threads": True}, {"scheduler": 8786}):
        with pytest.raises(ConfigError):
            suite_from_dict(bad)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--executor", "serial", "--workers", "2"], "error: --workers and --scheduler apply"),
        (["--executor", "dask", "--workers", "0"], "error: workers must be an integer >= 1"),
        (["--threads", "x"], "error: --threads must be an integer"),
    ],
)
def test_cli_rejects_bad_execution_options(argv, message, capsys, tmp_path):
    out = tmp_path / "out"
    code = cli.main(["run", "--datasets", "crops5", "--methods", "gd", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# What the report says


def _report(results, **execution) -> str:
    env = {**envinfo.collect([]), **SerialExecutor().info(), **execution}
    epochs, runs = tables(results)
    return markdown(run_report.build_doc(runs, epochs, env, figures=[], parity=None))


def _section(report: str, heading: str) -> str:
    """The section's text with line breaks folded (the report wraps prose at 100 columns)."""
    return " ".join(report.split(heading, 1)[1].split("\n## ", 1)[0].split())


def test_report_time_tables_say_how_many_epochs_were_excluded():
    stalled = run(gd_spec(), backend=StallingBackend({4, 9}))
    quiet = run(gd_spec(method="adam", hparams=(("lr", 0.1),)))
    results = [stalled, quiet]
    bad, timed, n_runs = disturbed_counts(tables(results)[0])
    assert bad >= 2
    assert timed == 24
    assert n_runs >= 1
    wall = _section(_report(results), "## Wall time per epoch (cpu)")
    assert f"{bad} of {timed} timed epochs" in wall
    assert "excluded from the time medians" in wall
    assert "in parallel" not in wall


def test_report_says_parallel_timings_are_not_comparable_next_to_time_figures():
    results = [run(gd_spec(epochs=3))]
    parallel = {"executor": "dask", "workers": 2, "parallel_runs": 2, "cores": 2}
    report = _report(results, **parallel)
    note = "timed with 2 runs in parallel on 2 cores (dask executor): not comparable with serial"
    assert note in parallel_note(parallel)
    assert note in _section(report, "## Wall time per epoch (cpu)")
    assert note in " ".join(report.split("- Total training time", 1)[1].split("\n- ")[0].split())
    assert "| execution | dask: 2 worker(s) x 1 run(s) at a time" in report
    assert note not in _report(results)
