"""The Dask executor against the serial one: same losses bitwise, nothing lost when a worker
dies mid-suite, an existing scheduler reached through the CLI, plug-ins shipped to workers.

One LocalCluster (2 single-threaded workers on 127.0.0.1, `conftest.cluster`) serves the
session; the sweep test starts its own through `--executor dask --workers 2`, as a user would.
Every test runs under a deadline, and everything started here is closed here.
"""

from __future__ import annotations

import json
import os
import signal
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from bench import cli
from bench.run.config import Problem, Suite
from bench.run.executors import SerialExecutor, run_all
from bench.run.executors import dask as dask_executor
from bench.run.executors.dask import (
    MAX_RUNS_PER_TASK,
    TASK_SECONDS,
    TASKS_PER_SLOT,
    DaskExecutor,
    chunk_size,
)
from bench.run.runner import RunResult, run
from bench.run.spec import RunSpec
from tests.run.conftest import DEADLINE_S, deadline

distributed = pytest.importorskip("distributed", reason="the dask executor needs distributed")


def suite_specs() -> list[RunSpec]:
    suite = Suite(
        problems=(
            Problem("crops5", hparams={"lr": 1e-5}, method_hparams={"adam": {"lr": 0.1}}),
            Problem("synthetic:n=500", hparams={"lr": 0.05}, batch_size=32),
        ),
        methods=("gd", "minibatch", "adam"),
        impls=("scratch",),
        seeds=(0,),
        epochs=4,
    )
    return suite.expand()


def losses(results: list[RunResult]) -> dict[str, list[float]]:
    return {r.spec.run_id: [row["train_loss"] for row in r.rows] for r in results}


def _kill_worker_once(spec: RunSpec, victim: str, marker: str) -> RunResult:
    """The victim's first attempt kills its own worker process (as the OOM killer would);
    the retry, on a live worker, finds the marker and runs normally."""
    if spec.run_id == victim and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    result = run(spec)
    return RunResult(result.spec, result.rows, {**result.summary, "pid": os.getpid()})


@pytest.mark.parametrize("runs_per_task", [None, 3], ids=["one-run-tasks", "three-run-tasks"])
def test_a_killed_worker_loses_nothing(cluster, tmp_path, runs_per_task):
    """The worker dies in the middle of a task; with three runs per task the run before the
    victim, finished in the dead worker, is lost with it and redone too."""
    specs = suite_specs()
    victim, marker = specs[4].run_id, tmp_path / "killed"
    fn = partial(_kill_worker_once, victim=victim, marker=str(marker))
    executor = DaskExecutor(scheduler=cluster.scheduler_address, runs_per_task=runs_per_task)
    with deadline(DEADLINE_S), distributed.Client(cluster) as client:
        client.wait_for_workers(2)  # a worker killed by an earlier test is back
    with deadline(DEADLINE_S), executor:
        info = executor.info()
        results = run_all(specs, executor, fn=fn)
    assert marker.exists(), "the victim never ran, so no worker was killed"
    killed = int(marker.read_text())
    assert [r.spec for r in results] == specs
    (redone,) = [r for r in results if r.spec.run_id == victim]
    assert redone.summary["pid"] != killed
    if runs_per_task == 3:  # specs 3, 4, 5 are one task: all three ran again, elsewhere
        assert {r.summary["pid"] for r in results[3:]} == {redone.summary["pid"]}
    assert {r.summary["torch_threads"] for r in results} == {1}
    assert losses(results) == losses(run_all(specs, SerialExecutor()))
    assert (info["workers"], info["parallel_runs"], info["torch_threads"]) == (2, 2, 1)
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")


PLUGIN = '''
import torch


class Halving(torch.optim.SGD):
    """SGD at half the rate: a plug-in no worker has ever imported."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr=lr / 2)
'''


def test_a_plugin_spec_runs_on_workers_that_never_loaded_it(cluster, tmp_path):
    """A spec names its plug-in by path: the workers rebuild it from the spec alone (no
    registry travels with the tasks)."""
    path = tmp_path / "halving.py"
    path.write_text(PLUGIN)
    specs = [
        RunSpec(dataset="crops5", method="halving", optimizer=f"{path}:Halving",
                hparams=(("lr", 1e-5),), batch_size=1, epochs=3, seed=seed)
        for seed in (0, 1)
    ]  # fmt: skip
    with deadline(DEADLINE_S), DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        results = run_all(specs, executor)
    assert [r.summary["status"] for r in results] == ["ok", "ok"]
    assert losses(results) == losses(run_all(specs, SerialExecutor()))


SLEEPER = """
import time
import torch


class Sleeper(torch.optim.SGD):
    def step(self, closure=None):
        time.sleep(3600)  # blocked in C: no signal or exception reaches a worker's task thread
"""


def test_a_hung_run_on_a_dask_worker_is_stopped_and_the_others_finish(
    cluster, tmp_path, monkeypatch
):
    path = tmp_path / "sleeper.py"
    path.write_text(SLEEPER)
    monkeypatch.setattr(dask_executor, "TIMEOUT_SLACK_S", 15.0)  # a loaded machine
    monkeypatch.setattr(dask_executor, "POLL_S", 0.2)
    common = dict(dataset="crops5", hparams=(("lr", 1e-5),), batch_size=1, epochs=2)
    specs = [
        RunSpec(method="gd", **common),
        RunSpec(method="sleeper", optimizer=f"{path}:Sleeper", **common),
        RunSpec(method="gd", seed=1, **common),
    ]
    with deadline(DEADLINE_S), distributed.Client(cluster) as client:
        client.wait_for_workers(2)
    with deadline(DEADLINE_S), DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        results = run_all(specs, executor, timeout=1.0)
    assert [r.summary["status"] for r in results] == ["ok", "timeout", "ok"]
    assert "its Dask worker was restarted" in results[1].summary["error"]
    with deadline(DEADLINE_S), distributed.Client(cluster) as client:
        client.wait_for_workers(2)  # the restarted worker is back for the next tests


def test_cli_runs_on_an_existing_scheduler(cluster, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", "--datasets", "crops5", "--methods", "gd,adam", "--epochs", "3"]
    argv += ["--seeds", "0", "--devices", "cpu", "--no-parity", "--out", str(out)]
    with deadline(DEADLINE_S):
        with distributed.Client(cluster) as client:  # a worker killed earlier is back
            client.wait_for_workers(2)
        code = cli.main([*argv, "--scheduler", cluster.scheduler_address])
    assert code == 0, capsys.readouterr().err
    env = json.loads((out / "env.json").read_text())
    assert env["executor"] == "dask"
    assert env["scheduler"] == cluster.scheduler_address
    assert (env["workers"], env["parallel_runs"], env["torch_threads"]) == (2, 2, 1)
    report = (out / "report.md").read_text()
    assert "timed with 2 runs in parallel on" in report
    serial = tmp_path / "serial"
    assert cli.main([*argv[:-1], str(serial)]) == 0
    keys = ["run_id", "epoch"]
    a = pd.read_csv(out / "epochs.csv").sort_values(keys)["train_loss"].tolist()
    b = pd.read_csv(serial / "epochs.csv").sort_values(keys)["train_loss"].tolist()
    assert a == b
    assert len(a) == 2 * 2 * 4  # methods x impls x (epochs + initial)
    assert "in parallel" not in (serial / "report.md").read_text()


def test_sweep_on_a_local_dask_cluster_equals_the_serial_sweep(tmp_path, capsys):
    """`sweep --executor dask --workers 2` starts (and stops) its own LocalCluster."""
    argv = ["sweep", "--problems", "synthetic:n=500", "--methods", "gd,adam", "--epochs", "3"]
    argv += ["--decades", "1", "--points-per-decade", "1", "--seeds", "100", "--no-claims"]
    argv += ["--select-seeds", "0"]
    with deadline(DEADLINE_S):
        assert cli.main([*argv, "--out", str(tmp_path / "serial")]) == 0
        dask_argv = [*argv, "--out", str(tmp_path / "dask"), "--executor", "dask"]
        assert cli.main([*dask_argv, "--workers", "2"]) == 0, capsys.readouterr().err
    frames = {}
    for name in ("serial", "dask"):
        runs = pd.read_csv(tmp_path / name / "sweep.csv").set_index("run_id").sort_index()
        epochs = pd.read_csv(tmp_path / name / "epochs.csv").sort_values(["run_id", "epoch"])
        frames[name] = (runs["final_train_loss"], epochs["train_loss"].tolist())
    # grid (3 lrs, plus any point added at a grid edge) + tuned and default reruns
    assert len(frames["serial"][0]) >= 2 * 3 + 2 * 2
    assert frames["dask"][0].equals(frames["serial"][0])  # same run keys, bitwise
    assert frames["dask"][1] == frames["serial"][1]
    env = json.loads((tmp_path / "dask" / "env.json").read_text())
    assert (env["executor"], env["workers"], env["scheduler"]) == (
        "dask",
        2,
        "local cluster on 127.0.0.1",
    )


def test_chunks_are_about_task_seconds_of_work_and_shrink_toward_the_end():
    """Guided self-scheduling: one run per task until a run's cost is known, then about
    TASK_SECONDS of work, never more than remaining / (TASKS_PER_SLOT x slots) runs."""
    assert chunk_size(1000, 2, None) == 1
    assert chunk_size(1000, 2, TASK_SECONDS / 10) == 10
    assert chunk_size(1000, 2, TASK_SECONDS * 5) == 1  # a run longer than a task: alone
    assert chunk_size(10**6, 2, 1e-9) == MAX_RUNS_PER_TASK
    assert chunk_size(40, 2, TASK_SECONDS / 10) == 40 // (TASKS_PER_SLOT * 2)
    assert chunk_size(3, 2, TASK_SECONDS / 10) == 1
    # A whole batch handed out: every run exactly once, the last tasks single runs.
    sizes, left = [], 2015
    while left:
        sizes.append(chunk_size(left, 2, TASK_SECONDS / 10))
        left -= sizes[-1]
    assert sum(sizes) == 2015
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-TASKS_PER_SLOT * 2 :] == [1] * (TASKS_PER_SLOT * 2)
    assert max(sizes) == 10


def test_chunked_tasks_give_every_result_once_in_order(cluster):
    """Many runs on two workers in tasks of several runs: each spec's result, in order,
    equal to the serial executor's; the executor measured what a run costs."""
    suite = Suite(
        problems=(Problem("crops5", hparams={"lr": 1e-5}),),
        methods=("gd", "sgd"),
        impls=("scratch",),
        seeds=tuple(range(12)),
        epochs=2,
    )
    specs = suite.expand()
    with deadline(DEADLINE_S), DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        first = run_all(specs, executor)
        tally = dict(executor.tally)
        second = run_all(specs, executor)  # run costs known: several runs per task from the start
    assert tally["runs"] == executor.tally["runs"] - tally["runs"] == len(specs)
    assert tally["seconds"] > 0
    assert executor.tally["tasks"] - tally["tasks"] < len(specs)  # some tasks ran several
    assert [r.spec for r in first] == [r.spec for r in second] == specs
    serial = losses(run_all(specs, SerialExecutor()))
    assert losses(first) == losses(second) == serial
