"""The engines (`bench.run.engines`): the vectorised engine against `runner.run` on every task x
built-in model x built-in method (bitwise where claimed, bounded elsewhere), a run's numbers
independent of its group, divergence mid-group, fallback of what it cannot compute, groups as
Dask tasks, the store keyed by engine and written group by group, resume after a kill."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import datasets
import optimizers
from bench.analysis.tables import tables
from bench.run.device import DEFAULT_THREADS, torch_threads
from bench.run.engines import (
    ENGINES,
    PER_RUN,
    VECTORISED,
    Group,
    engine_of,
    plan,
    run_group,
)
from bench.run.executors import SerialExecutor, run_all
from bench.run.executors.dask import DaskExecutor
from bench.run.runner import RunResult, run
from bench.run.spec import RunSpec
from bench.schema import TIMING_COLUMNS, freeze_hparams
from bench.store import CachedRuns, Store, run_key
from tests.run.conftest import DEADLINE_S, deadline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Runs here as every executor runs them: one intra-op thread (two threads on a busy
    2-core machine made these runs 25x slower, measured)."""
    with torch_threads(DEFAULT_THREADS):
        yield


VEC = ENGINES[VECTORISED]
METHODS = optimizers.names()[:9]
ADAMS = {"adam", "adamw", "adam_l2"}
assert set(METHODS) == {"gd", "sgd", "minibatch", "momentum", "nesterov", *ADAMS, "sgd_wd"}


def hp(**values) -> tuple:
    return freeze_hparams(values)


def differences(a: RunResult, b: RunResult) -> tuple[bool, float]:
    """(bitwise equal, max relative difference) of two results: every non-timing column of every
    row (the losses, metrics and records the summary's figures come from) and of the summary;
    keys, statuses, ids, loss* and every other non-float must be equal. The relative difference
    is taken over the rows (the summary's gap to the optimum is a difference of nearly equal
    numbers: its relative difference says nothing about the engines)."""
    assert [r["epoch"] for r in a.rows] == [r["epoch"] for r in b.rows], (a.spec, b.spec)
    same, worst = True, 0.0
    for x, y in [*zip(a.rows, b.rows, strict=True), (a.summary, b.summary)]:
        assert [k for k in x if k != "engine"] == [k for k in y if k != "engine"]
        for key, u in x.items():
            if key in TIMING_COLUMNS or key in ("engine", "torch_threads"):
                continue
            v = y[key]
            if not (isinstance(u, float) and isinstance(v, float)):
                assert u == v, (key, u, v)
            elif not (u == v or (math.isnan(u) and math.isnan(v))):
                same = False
                assert math.isfinite(u), (key, u, v)
                assert math.isfinite(v), (key, u, v)
                if x is not a.summary:
                    worst = max(worst, abs(u - v) / max(abs(u), abs(v)))
    assert a.summary["loss_star"] == b.summary["loss_star"] or math.isnan(a.summary["loss_star"])
    return same, worst


def classification_csv(path: Path) -> str:
    """A small 3-class problem (30 rows, 3 features), deterministic."""
    rows = ["a,b,c,label"]
    for i in range(30):
        a, b, c = (i * 7) % 11 / 5 - 1, (i * 5) % 13 / 6 - 1, (i * 3) % 7 / 3 - 1
        rows.append(f"{a:.3f},{b:.3f},{c:.3f},{'xyz'[(i * 2 + i // 5) % 3]}")
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> str:
    return classification_csv(tmp_path_factory.mktemp("engines") / "three.csv")


# Every task x built-in model: (spec keywords, lr of the SGD family, lr of the Adam family,
# batch size of the mini-batch methods, full batch).
PROBLEMS = {
    "regression-linear": (dict(dataset="crops15", holdout=0.2), 1e-5, 0.1, 4, 12),
    "regression-mlp": (dict(dataset="crops15", holdout=0.2, model="mlp"), 1e-5, 0.01, 4, 12),
    "classification-linear": (
        dict(task="classification", targets=("label",), holdout=0.2),
        0.1,
        0.05,
        4,
        24,
    ),
    "classification-mlp": (
        dict(task="classification", targets=("label",), holdout=0.2, model="mlp:hidden=5"),
        0.1,
        0.05,
        4,
        24,
    ),
    "quadratic_deep-theta": (
        dict(dataset="quadratic_deep", task="quadratic_deep", model="theta", holdout=896 / 1896),
        0.01,
        0.01,
        128,
        1000,
    ),
    "function2d-theta": (
        dict(dataset="beale", task="function2d", model="theta"),
        datasets.function_2d("beale").lr,
        0.05,
        1,
        1,
    ),
}


def problem_specs(problem: str, method: str, csv: str, epochs: int = 4) -> list[RunSpec]:
    """Two seeds x two learning rates of `method` on `problem`."""
    kw, lr_sgd, lr_adam, mini, full = PROBLEMS[problem]
    kw = {"dataset": csv, **kw} if "targets" in kw else kw
    regime = optimizers.get(method).batch
    batch = {"full": full, "single": 1 if full < 1000 else 128, "mini": mini}[regime]
    lr = lr_adam if method in ADAMS else lr_sgd
    seeds = (0,) if kw.get("task") == "function2d" else (0, 1)
    return [
        RunSpec(method=method, hparams=hp(lr=lr * f), batch_size=batch, epochs=epochs, seed=s, **kw)
        for s in seeds
        for f in (1.0, 0.5)
    ]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_vectorised_equals_per_run_bitwise(problem, method, csv_path):
    """Every task x built-in model x built-in method: one group, bitwise runner.run."""
    specs = problem_specs(problem, method, csv_path)
    (group,) = plan(specs, VECTORISED)
    assert group.engine == VECTORISED
    assert set(group.specs) == set(specs)
    for vec in run_group(group):
        same, worst = differences(vec, run(vec.spec))
        assert same, f"{problem} {method} {vec.spec.hparams}: max relative difference {worst:.3g}"
        assert {r["engine"] for r in vec.rows} == {vec.summary["engine"]} == {VECTORISED}


# Where torch's batched product sums in another order than the per-run GEMM (products under 400
# multiply-adds with long dot products: 10 features at batch 32 or 1), the runs differ by
# rounding: measured here at most 1.4e-6 relative over 100 epochs; held below 1e-5.
BOUNDED = {
    "diabetes": dict(dataset="diabetes", holdout=0.2, standardize=True, batch_size=32),
    "synthetic": dict(dataset="synthetic:n=500", holdout=0.2, batch_size=32),
}


@pytest.mark.parametrize("method", [m for m in METHODS if optimizers.get(m).batch == "mini"])
@pytest.mark.parametrize("problem", list(BOUNDED))
def test_vectorised_is_within_1e_5_of_per_run_over_100_epochs(problem, method):
    lr = 1.0 if (method in ADAMS and problem == "diabetes") else 0.05
    spec = RunSpec(method=method, hparams=hp(lr=lr), epochs=100, **BOUNDED[problem])
    (vec,) = VEC.run([spec])
    _, worst = differences(vec, run(spec))
    assert worst <= 1e-5


def _losses(result: RunResult) -> list[str]:
    """The run's losses and accuracy per epoch, exactly (as hex: NaN equals NaN)."""
    cols = ("train_loss", "holdout_loss", "train_accuracy")
    return [" ".join(float.hex(float(r[c])) for c in cols) for r in result.rows]


@pytest.mark.parametrize(
    "kw",
    [
        dict(dataset="diabetes", standardize=True, method="gd", batch_size=354),  # split GEMMs
        dict(dataset="diabetes", standardize=True, method="adam", batch_size=32),  # torch's loop
        dict(dataset="crops15", model="mlp", method="momentum", batch_size=4),
        dict(
            dataset="quadratic_deep",
            task="quadratic_deep",
            model="theta",
            method="nesterov",
            batch_size=128,
            holdout=896 / 1896,
        ),
    ],
    ids=["diabetes-gd", "diabetes-adam", "crops15-mlp", "quadratic"],
)
def test_a_runs_numbers_do_not_depend_on_its_group(kw):
    """Alone, in a group, in reverse order, among other runs: the same numbers."""
    kw = {"holdout": 0.2, "epochs": 3, **kw}
    lr = 0.05 if kw["method"] == "adam" else 0.01 if kw["dataset"] != "crops15" else 1e-5
    specs = [RunSpec(hparams=hp(lr=lr * f), seed=s, **kw) for s in (0, 1, 2) for f in (1, 0.5)]
    together = {r.spec: _losses(r) for r in VEC.run(specs)}
    reverse = {r.spec: _losses(r) for r in VEC.run(specs[::-1])}
    others = [replace(s, hparams=hp(lr=s.lr * 0.7)) for s in specs]
    mixed = {r.spec: _losses(r) for r in VEC.run(others[:3] + specs + others[3:])}
    for spec in specs:
        alone = _losses(VEC.run([spec])[0])
        assert together[spec] == reverse[spec] == mixed[spec] == alone


def test_a_group_mixing_seeds_and_every_hyperparameter_is_one_group_bitwise():
    momentum = [
        RunSpec(
            dataset="crops15",
            method="momentum",
            holdout=0.2,
            batch_size=4,
            epochs=5,
            seed=s,
            hparams=hp(lr=lr, momentum=m, dampening=d),
        )
        for s, lr, m, d in [(0, 1e-5, 0.9, 0.0), (1, 3e-6, 0.5, 0.3), (2, 1e-5, 0.2, 0.1)]
    ]
    adamw = [
        RunSpec(
            dataset="crops15",
            method="adamw",
            holdout=0.2,
            batch_size=4,
            epochs=5,
            seed=s,
            hparams=hp(lr=lr, betas=b, eps=e, weight_decay=w),
        )
        for s, lr, b, e, w in [
            (0, 0.1, (0.9, 0.999), 1e-8, 1e-2),
            (1, 0.03, (0.8, 0.99), 1e-6, 1e-3),
            (2, 0.1, (0.5, 0.9), 1e-4, 0.1),
        ]
    ]
    groups = plan(momentum + adamw, VECTORISED)
    assert [g.specs for g in groups] == [tuple(momentum), tuple(adamw)]
    for group in groups:
        for vec in run_group(group):
            assert differences(vec, run(vec.spec))[0]
    # A different branch of the update (Nesterov, weight decay on or off) is another group.
    branches = [
        *momentum[:1],
        replace(momentum[0], method="nesterov"),
        replace(momentum[0], hparams=hp(lr=1e-5, momentum=0.9, weight_decay=0.1)),
    ]
    assert len(plan(branches, VECTORISED)) == 3


def test_divergence_mid_group_stops_only_that_run_where_runner_run_stops_it():
    """Non-finite losses at different epochs, an overflowing learning rate (float32: torch
    raises at the first step) and healthy runs in one group."""
    lrs = [1e-5, 1.0, 3e-3, 1e39, 1e-6]
    specs = [
        RunSpec(
            dataset="crops15", method="gd", hparams=hp(lr=lr), batch_size=12, holdout=0.2, epochs=25
        )
        for lr in lrs
    ]
    (group,) = plan(specs, VECTORISED)
    results = {r.spec.lr: r for r in run_group(group)}
    assert [results[lr].summary["status"] for lr in lrs] == [
        "ok",
        "diverged",
        "diverged",
        "diverged",
        "ok",
    ]
    assert results[1e39].summary["diverged_epoch"] == 1
    assert results[1.0].summary["diverged_epoch"] < results[3e-3].summary["diverged_epoch"] < 25
    for vec in results.values():
        per_run = run(vec.spec)
        assert differences(vec, per_run)[0]
        assert len(vec.rows) == (
            26 if vec.summary["status"] == "ok" else vec.summary["diverged_epoch"] + 1
        )
        assert [r["status"] for r in vec.rows] == [r["status"] for r in per_run.rows]
    adam = [
        RunSpec(dataset="crops5", method="adam", hparams=hp(lr=lr), epochs=3) for lr in (1e38, 0.1)
    ]
    bad, good = VEC.run(adam)
    assert (bad.summary["status"], bad.summary["diverged_epoch"], good.summary["status"]) == (
        "diverged",
        1,
        "ok",
    )
    assert differences(bad, run(bad.spec))[0]
    assert differences(good, run(good.spec))[0]


def test_rows_and_summaries_have_runner_runs_keys_and_no_epoch_time():
    spec = problem_specs("function2d-theta", "adam", "", epochs=3)[0]
    (vec,) = VEC.run([spec])
    (per,) = ENGINES[PER_RUN].run([spec])
    assert [list(r) for r in vec.rows] == [list(r) for r in per.rows]
    assert list(vec.summary) == list(per.summary)
    assert list(vec.rows[0])[list(vec.rows[0]).index("impl") + 1] == "engine"
    assert (per.summary["engine"], vec.summary["engine"]) == (PER_RUN, VECTORISED)
    assert (vec.rows[0]["epoch_time_s"], vec.rows[0]["elapsed_s"]) == (0.0, 0.0)
    for row in vec.rows[1:]:
        assert all(math.isnan(row[c]) for c in ("epoch_time_s", "epoch_cpu_s", "elapsed_s"))
        assert row["disturbed"] is False
    for key in ("median_epoch_time_s", "iqr_epoch_time_s", "total_time_s", "total_cpu_s"):
        assert math.isnan(vec.summary[key])
    assert vec.rows[-1]["theta_0"] == per.rows[-1]["theta_0"]


def test_what_the_vectorised_engine_cannot_compute_runs_per_run(monkeypatch, tmp_path):
    plugin = optimizers.method_from_path("torch.optim:SGD", name="engines_test_sgd")
    monkeypatch.setitem(optimizers.METHODS, plugin.name, plugin)
    factory = tmp_path / "factory.py"
    factory.write_text("import torch\ndef make(d, k):\n    return torch.nn.Linear(d, k)\n")
    base = dict(dataset="crops5", hparams=hp(lr=1e-5), batch_size=5, epochs=2)
    vectorisable = [RunSpec(method="gd", seed=s, **base) for s in (0, 1)]
    others = [
        RunSpec(method="gd", impl="torch", **base),
        RunSpec(method=plugin.name, impl="plugin", **base),
        RunSpec(method="gd", model=f"{factory}:make", **base),
        RunSpec(method="gd", dtype="float64", device="cuda", **base),
    ]
    groups = plan([*vectorisable, *others], VECTORISED)
    assert groups == [Group(VECTORISED, tuple(vectorisable))] + [
        Group(PER_RUN, (s,)) for s in others
    ]
    assert [engine_of(s, VECTORISED) for s in others] == [PER_RUN] * 4
    assert [engine_of(s, VECTORISED) for s in vectorisable] == [VECTORISED] * 2
    assert plan(vectorisable, PER_RUN) == [Group(PER_RUN, (s,)) for s in vectorisable]
    results = run_all(others[:3] + vectorisable, engine=VECTORISED)
    assert [r.summary["engine"] for r in results] == [PER_RUN] * 3 + [VECTORISED] * 2
    assert {r["engine"] for r in results[0].rows} == {PER_RUN}


def test_the_store_keys_vectorised_runs_apart_and_writes_a_group_at_once(tmp_path):
    specs = [
        RunSpec(dataset="crops5", method="adam", hparams=hp(lr=lr), batch_size=1, epochs=3)
        for lr in (0.1, 0.05, 0.01)
    ]
    spec = specs[0]
    assert run_key(spec, PER_RUN) == run_key(spec) != run_key(spec, VECTORISED)
    written: list[int] = []
    with Store(tmp_path / "s.sqlite") as store:
        original = store.put_many
        store.put_many = lambda results, keys=None: (
            written.append(len(results)),
            original(results, keys),
        )[1]
        vec = CachedRuns(store, SerialExecutor(), engine=VECTORISED).results(specs)
        assert written == [3]  # one group, one transaction
        assert store.keys() == {run_key(s, VECTORISED) for s in specs}
        assert store.count(specs, VECTORISED) == 3
        assert store.count(specs) == 0
        messages: list[str] = []
        per = CachedRuns(store, SerialExecutor(), say=messages.append).results(specs)
        assert messages == []  # nothing of the per-run engine's was there to reuse
        again = CachedRuns(store, SerialExecutor(), engine=VECTORISED, say=messages.append)
        assert again.results(specs)[0].rows == vec[0].rows
        assert messages == [f"optbench: 3 of 3 runs reused from {store.path}"]
    assert [r.summary["engine"] for r in per] == [PER_RUN] * 3
    epochs_vec, epochs_per = tables(vec)[0], tables(per)[0]
    pd.testing.assert_series_equal(epochs_vec["train_loss"], epochs_per["train_loss"])


# ----------------------------------------------------------------------------------------------
# Dask: a group is one task


def test_groups_run_as_dask_tasks_with_the_serial_numbers(cluster):
    """A vectorised group is one Dask task (never split); the numbers are the serial ones."""
    distributed = pytest.importorskip("distributed", reason="the dask executor needs distributed")

    specs = [
        RunSpec(
            dataset="crops15",
            method=m,
            holdout=0.2,
            batch_size=4,
            epochs=4,
            seed=s,
            hparams=hp(lr=0.1 if m == "adam" else 1e-5),
        )
        for m in ("minibatch", "adam", "momentum")
        for s in (0, 1, 2)
    ]
    specs.append(replace(specs[0], impl="torch"))  # a per-run singleton among the groups
    with deadline(DEADLINE_S), distributed.Client(cluster) as client:
        client.wait_for_workers(2)  # a worker killed by another test is back
    with deadline(DEADLINE_S), DaskExecutor(scheduler=cluster.scheduler_address) as executor:
        remote = run_all(specs, executor, engine=VECTORISED)
        tally = dict(executor.tally)
    assert tally["runs"] == len(plan(specs, VECTORISED)) == 4  # items: 3 groups + 1 run
    serial = run_all(specs, SerialExecutor(), engine=VECTORISED)
    assert [r.spec for r in remote] == specs
    assert [_losses(r) for r in remote] == [_losses(r) for r in serial]
    assert [r.summary["engine"] for r in remote] == [VECTORISED] * 9 + [PER_RUN]


# ----------------------------------------------------------------------------------------------
# Resume after a kill mid-group

CHILD = textwrap.dedent(
    """
    import sys
    from bench.run.executors import SerialExecutor
    from bench.store import CachedRuns, Store
    from tests.run.test_engines import resume_specs
    CachedRuns(Store(sys.argv[1]), SerialExecutor(), engine="vectorised").results(resume_specs())
    """
)
GROUP_SIZE = 6


def resume_specs() -> list[RunSpec]:
    """Six groups of six runs, each group a few tenths of a second."""
    return [
        RunSpec(
            dataset="crops15",
            method=m,
            holdout=0.2,
            batch_size=1,
            epochs=60,
            seed=s,
            hparams=hp(lr=(0.02 if m in ADAMS else 1e-6) * f),
        )
        for m in ("sgd", "adam", "minibatch", "momentum", "nesterov", "adamw")
        for s in (0, 1, 2)
        for f in (1.0, 0.5)
    ]


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    with Store(path) as store:
        return len(store)


def test_a_kill_mid_group_loses_only_groups_in_flight_and_resumes_to_the_same_tables(tmp_path):
    specs = resume_specs()
    assert [len(g) for g in plan(specs, VECTORISED)] == [GROUP_SIZE] * 6
    path = tmp_path / "store.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
    )
    try:
        end = time.monotonic() + 120
        while _stored(path) < GROUP_SIZE:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < end, "no group stored within 120 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.stderr.close()
    done = _stored(path)
    assert done % GROUP_SIZE == 0, done  # whole groups only
    assert GROUP_SIZE <= done < len(specs), done
    with Store(path) as store:
        epochs = store._db.execute("SELECT key, count(*) FROM epochs GROUP BY key").fetchall()
        assert {n for _, n in epochs} == {61}  # every stored run whole
        messages: list[str] = []
        cache = CachedRuns(store, SerialExecutor(), engine=VECTORISED, say=messages.append)
        resumed = cache.results(specs)
    assert messages == [
        f"optbench: {done} of {len(specs)} runs reused from {path}; computing {len(specs) - done}"
    ]
    with Store(":memory:") as fresh:
        uninterrupted = CachedRuns(fresh, SerialExecutor(), engine=VECTORISED).results(specs)
    for a, b in zip(tables(resumed), tables(uninterrupted), strict=True):
        keep = [c for c in a.columns if c not in TIMING_COLUMNS]
        pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)


def test_the_readme_engine_example_runs(capsys):
    text = (REPO / "README.md").read_text()
    (block,) = [b for b in text.split("```python\n")[1:] if "bench.run.engines" in b]
    exec(compile(block.split("```", 1)[0], "README.md", "exec"), {})
    planned, result = capsys.readouterr().out.splitlines()
    assert planned == "[('vectorised', 9)]"
    assert result.startswith("vectorised ")


@pytest.mark.parametrize(
    ("method", "values"),
    [
        ("adam", dict(lr=0.05, amsgrad=True)),
        ("adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
        ("momentum", dict(lr=1e-5, maximize=True)),
        ("nesterov", dict(lr=1e-5, momentum=0.5, weight_decay=0.01)),
    ],
    ids=["amsgrad", "adam-decoupled", "maximize", "nesterov-decay"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_branch_of_the_scratch_optimizers_in_both_dtypes(method, values, dtype):
    specs = [
        RunSpec(
            dataset="crops15",
            method=method,
            holdout=0.2,
            batch_size=4,
            epochs=6,
            seed=s,
            dtype=dtype,
            hparams=hp(**{**values, "lr": values["lr"] * f}),
        )
        for s in (0, 1)
        for f in (1.0, 0.3)
    ]
    (group,) = plan(specs, VECTORISED)
    for vec in run_group(group):
        assert differences(vec, run(vec.spec))[0]
