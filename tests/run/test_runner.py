"""The runner: same start, same batches, deterministic, honest timing, divergence recorded."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import torch.nn.functional as F

import optimizers
from bench.errors import ConfigError
from bench.run import runner
from bench.run.config import Problem, Suite
from bench.run.data import device_tensors, problem_data
from bench.run.device import CpuBackend, get_backend, resolve_devices
from bench.run.executors import SerialExecutor, run_all
from bench.run.models import ModelSpec
from bench.run.runner import run
from bench.run.spec import RunSpec
from bench.run.tasks.base import initial_weights
from tests.devices import DEVICES


def tiny_suite(**kw) -> Suite:
    defaults = dict(
        problems=(Problem("crops5", hparams={"lr": 1e-5}, method_hparams={"adam": {"lr": 0.1}}),),
        methods=("gd", "sgd", "minibatch", "momentum", "adam"),
        impls=("scratch", "torch"),
        seeds=(0, 1),
        epochs=4,
    )
    defaults.update(kw)
    return Suite(**defaults)


def spec(**kw) -> RunSpec:
    base = dict(
        dataset="crops15", method="minibatch", hparams=(("lr", 1e-5),), batch_size=4, holdout=0.2
    )
    base.update(kw)
    return RunSpec(**base)


def test_every_run_of_a_seed_starts_from_the_same_weights():
    results = run_all(tiny_suite().expand())
    hashes = {}
    for r in results:
        hashes.setdefault(r.spec.seed, set()).add(r.rows[0]["init_hash"])
        assert {row["init_hash"] for row in r.rows} == {r.rows[0]["init_hash"]}
    assert all(len(h) == 1 for h in hashes.values()), hashes
    assert hashes[0] != hashes[1], "different seeds must start from different weights"
    # Same start -> same epoch-0 loss, for every method and implementation.
    for seed in (0, 1):
        losses = {r.rows[0]["train_loss"] for r in results if r.spec.seed == seed}
        assert len(losses) == 1


def test_init_hash_is_the_same_in_float64():
    r32 = run(spec(epochs=1))
    r64 = run(spec(epochs=1, dtype="float64"))
    assert r32.rows[0]["init_hash"] == r64.rows[0]["init_hash"]


def test_same_seed_gives_identical_loss_columns():
    a, b = run(spec(epochs=5)), run(spec(epochs=5))
    for col in ("train_loss", "holdout_loss"):
        left = [row[col] for row in a.rows]
        right = [row[col] for row in b.rows]
        assert left == right or all(
            (x == y) or (math.isnan(x) and math.isnan(y)) for x, y in zip(left, right, strict=True)
        )


def test_different_seeds_differ():
    a, b = run(spec(epochs=3, seed=0)), run(spec(epochs=3, seed=1))
    assert [r["train_loss"] for r in a.rows] != [r["train_loss"] for r in b.rows]


@pytest.mark.parametrize("method", ["sgd", "minibatch", "momentum", "nesterov", "adam", "adamw"])
def test_scratch_and_torch_see_the_same_batches(method):
    """Bitwise-equal optimizers + same init + same batch order -> identical losses every epoch."""
    lr = 0.05 if method.startswith("adam") else 1e-5
    m = optimizers.get(method)
    bs = 1 if m.batch == "single" else 4
    kw = dict(method=method, hparams=(("lr", lr),), batch_size=bs, epochs=6)
    a, b = run(spec(impl="scratch", **kw)), run(spec(impl="torch", **kw))
    assert [r["train_loss"] for r in a.rows] == [r["train_loss"] for r in b.rows]


def test_shuffle_order_depends_on_seed_and_batch_size_only():
    assert runner.shuffle_seed("crops15", 0, 4) == runner.shuffle_seed("crops15", 0, 4)
    assert runner.shuffle_seed("crops15", 0, 4) != runner.shuffle_seed("crops15", 1, 4)
    assert runner.shuffle_seed("crops15", 0, 4) != runner.shuffle_seed("crops15", 0, 5)


def test_epoch_zero_is_the_loss_at_the_initial_weights():
    s = spec(epochs=2)
    result = run(s)
    data = problem_data(*s.problem_key)
    model = ModelSpec.parse("linear").build(data.d, data.k)
    model.load_state_dict(initial_weights(data.name, "linear", data.d, data.k, s.seed))
    X, Y, Xh, Yh = device_tensors(s.problem_key, "cpu", "float32")
    with torch.no_grad():
        expected = F.mse_loss(model(X), Y).item()
        expected_hold = F.mse_loss(model(Xh), Yh).item()
    row0 = result.rows[0]
    assert row0["epoch"] == 0
    assert row0["train_loss"] == expected
    assert row0["holdout_loss"] == expected_hold
    assert row0["epoch_time_s"] == 0.0
    assert [r["epoch"] for r in result.rows] == [0, 1, 2]


def test_dataset_default_holdout_applies_and_crops5_has_none():
    suite = tiny_suite(
        problems=(Problem("crops5", hparams={"lr": 1e-5}), Problem("crops15")),
        methods=("gd",),
        impls=("scratch",),
        seeds=(0,),
        epochs=1,
    )
    small, larger = suite.expand()
    assert (small.holdout, larger.holdout) == (0.0, 0.2)
    result = run(small)
    assert result.summary["n_holdout"] == 0
    assert all(math.isnan(r["holdout_loss"]) for r in result.rows)


def test_divergence_is_recorded_and_stops_only_that_run():
    suite = Suite(
        problems=(Problem("crops15", hparams={"lr": 1e-5}, method_hparams={"gd": {"lr": 1.0}}),),
        methods=("gd", "minibatch"),
        impls=("scratch",),
        seeds=(0,),
        epochs=30,
    )
    results = {r.spec.method: r for r in run_all(suite.expand())}
    bad, good = results["gd"], results["minibatch"]
    assert bad.summary["status"] == "diverged"
    assert bad.rows[-1]["status"] == "diverged"
    assert not math.isfinite(bad.rows[-1]["train_loss"])
    assert all(math.isfinite(r["train_loss"]) for r in bad.rows[:-1])
    assert bad.summary["diverged_epoch"] == bad.rows[-1]["epoch"] < 30
    assert good.summary["status"] == "ok"
    assert len(good.rows) == 31


def test_warm_up_does_not_change_the_trajectory(monkeypatch):
    s = spec(method="adam", hparams=(("lr", 0.05),), epochs=4)
    with_warmup = run(s)
    monkeypatch.setattr(runner, "_warm_up", lambda *a, **k: None)
    without = run(s)
    assert [r["train_loss"] for r in with_warmup.rows] == [r["train_loss"] for r in without.rows]


class RecordingBackend(CpuBackend):
    """CPU backend that logs barriers, clock reads and forward passes in order."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def synchronize(self) -> None:
        self.log.append("sync")

    def stopwatch(self):
        log = self.log

        class Watch:
            def start(self) -> None:
                log.append("start")

            def stop(self) -> float:
                log.append("stop")
                return 0.001

        return Watch()


def test_only_training_steps_are_timed_and_clock_reads_follow_a_barrier(monkeypatch):
    log: list[str] = []
    real_eval, real_train = runner._evaluate, runner.train_epoch
    monkeypatch.setattr(
        runner, "_evaluate", lambda *a, **k: (log.append("eval"), real_eval(*a, **k))[1]
    )
    monkeypatch.setattr(runner, "train_epoch", lambda *a: (log.append("train"), real_train(*a))[1])
    monkeypatch.setattr(runner, "_warm_up", lambda *a: log.append("warmup"))
    result = run(spec(epochs=3), backend=RecordingBackend(log))
    assert log == ["warmup", "eval"] + ["sync", "start", "train", "stop", "eval"] * 3
    assert [r["epoch_time_s"] for r in result.rows] == [0.0, 0.001, 0.001, 0.001]
    assert result.rows[-1]["elapsed_s"] == pytest.approx(0.003)


def test_summary_has_time_statistics_and_the_optimum():
    result = run(spec(epochs=5))
    s = result.summary
    times = [r["epoch_time_s"] for r in result.rows[1:]]
    clean = [r["epoch_time_s"] for r in result.rows[1:] if not r["disturbed"]]
    assert s["median_epoch_time_s"] == pytest.approx(statistics.median(clean or times))
    assert s["iqr_epoch_time_s"] >= 0
    assert s["total_time_s"] == pytest.approx(sum(times))
    assert 0 < s["loss_star"] <= s["final_train_loss"] * (1 + 1e-6)
    assert s["gap_to_optimum"] == pytest.approx(s["final_train_loss"] - s["loss_star"])
    assert s["steps_per_epoch"] == math.ceil(s["n_train"] / 4)


def test_executor_can_be_replaced_without_changing_runs():
    class Reversed:
        def map(self, fn, specs):
            return reversed([fn(s) for s in reversed(specs)])

    specs = tiny_suite(seeds=(0,), epochs=2).expand()
    serial = run_all(specs, SerialExecutor())
    other = run_all(specs, Reversed())
    assert [r.spec for r in serial] == [r.spec for r in other]
    for a, b in zip(serial, other, strict=True):
        assert [r["train_loss"] for r in a.rows] == [r["train_loss"] for r in b.rows]


def test_mlp_runs_and_learns():
    result = run(spec(model="mlp", method="adam", hparams=(("lr", 0.01),), epochs=20))
    assert result.rows[-1]["train_loss"] < result.rows[0]["train_loss"]
    assert math.isnan(result.summary["loss_star"])


def test_cuda_request_without_a_gpu_is_a_config_error():
    if torch.cuda.is_available():
        assert get_backend("cuda").name == "cuda"
        assert "cuda" in resolve_devices("auto")
    else:
        with pytest.raises(ConfigError, match="no CUDA device"):
            get_backend("cuda")
        assert resolve_devices("auto") == ("cpu",)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_every_device_from_the_same_start(device):
    cpu = run(spec(epochs=3))
    other = run(spec(epochs=3, device=device))
    assert other.rows[0]["init_hash"] == cpu.rows[0]["init_hash"]
    assert [r["train_loss"] for r in other.rows] == pytest.approx(
        [r["train_loss"] for r in cpu.rows], rel=1e-5
    )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none present")
def test_cuda_stopwatch_times_queued_work_not_the_launch():
    from bench.run.device import CudaEventStopwatch

    watch = CudaEventStopwatch(torch.device("cuda"))
    watch.start()
    torch.cuda._sleep(50_000_000)  # ~tens of ms of GPU time, returns to the host at once
    seconds = watch.stop()
    assert seconds > 1e-3
    assert torch.cuda.current_stream().query()  # stop() waited for the work


@pytest.mark.parametrize(
    ("method", "hparams"),
    [
        ("adam", {"lr": 1e38}),
        ("gd", {"lr": 1e39}),
        ("sgd_wd", {"lr": 1e-3, "weight_decay": 1e300}),
        ("adamw", {"lr": 1e-3, "weight_decay": 1e300}),
    ],
)
@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_an_overflowing_update_is_a_recorded_divergence_not_a_crash(method, hparams, impl):
    spec = RunSpec(
        dataset="crops5",
        method=method,
        impl=impl,
        hparams=tuple(sorted(hparams.items())),
        batch_size=5 if method == "gd" else 1,
        epochs=4,
    )
    result = run(spec)
    assert result.summary["status"] == "diverged"
    assert result.rows[-1]["status"] == "diverged"
    assert [r["epoch"] for r in result.rows] == list(range(result.summary["diverged_epoch"] + 1))


def test_regression_rows_have_empty_accuracy_columns():
    result = run(RunSpec(dataset="crops15", method="gd", hparams=(("lr", 1e-5),), epochs=2,
                         batch_size=15))  # fmt: skip
    for row in result.rows:
        assert math.isnan(row["train_accuracy"])
        assert math.isnan(row["holdout_accuracy"])
