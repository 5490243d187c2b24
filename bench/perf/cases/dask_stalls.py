"""perf case 7. The default sweep on 2 Dask workers vs serially; perf case 8. The disturbed-epoch
detector on injected stalls.

7: the same sweep twice in one session, serially and on a 2-worker LocalCluster (the cluster's
start and stop included: that is what a user waits for), the order alternating from round to
round; the figure is dask time / serial time (target <= 0.60 on a 2-core machine). The row's
detail says whether both gave bitwise the same losses. At FULL size the real default sweep.

8: real runs (each problem x method of the default suite, from scratch, seed 0) on a backend
whose stopwatch sleeps inside the timed region of chosen epochs, as a descheduled process would
(wall time up, CPU time not). A stall lasts 10x the run's median epoch so far (between 1 and
50 ms: the 10-300x stalls seen on a shared machine). Figures: the fraction of injected stalls
flagged `disturbed` (target: all), and of the other epochs (target: under 1%; a real
disturbance of the machine during the case counts here too, the detail says how many of them
were off the CPU, i.e. really descheduled).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import replace

from bench.perf.cases.common import Case, Scale
from bench.perf.timing import Row, Stats, Target, judged
from bench.run.config import DEFAULT_SUITE, Overrides, Suite, apply_overrides, suite_from_toml
from bench.run.device import DEFAULT_THREADS, CpuBackend, PerfCounterStopwatch, torch_threads
from bench.run.executors import SerialExecutor
from bench.run.executors.dask import DaskExecutor
from bench.run.runner import DISTURBED_OVER_CPU, DISTURBED_SLACK_S, RunResult, run
from bench.run.spec import RunSpec
from bench.sweep import SweepConfig, SweepResult, run_sweep

DASK_WORKERS = 2
DASK_TARGET = Target("<=", 0.60)
HIT_TARGET = Target(">=", 1.00)
FALSE_FLAG_TARGET = Target("<=", 0.01)
STALL_FACTOR, STALL_MIN_S, STALL_MAX_S = 10.0, 1e-3, 50e-3
STALL_FIRST, STALL_EVERY = 5, 7  # epochs 5, 12, 19, ...: the run's median is known by then


def _sweep_setup(scale: Scale) -> tuple[Suite, SweepConfig, str]:
    suite = suite_from_toml(DEFAULT_SUITE)
    config = SweepConfig.from_mapping(suite.sweep)
    suite = apply_overrides(suite, Overrides(devices=("cpu",)))
    if scale.name == "full":
        return suite, config, "default sweep"
    suite = apply_overrides(
        suite, Overrides(problems=("synthetic:n=500",), methods=("gd", "adam"), epochs=3)
    )
    config = replace(config, decades=1, points_per_decade=1, seeds=(100,), claims=False)
    return suite, config, "tiny sweep (synthetic:n=500, gd and adam, 3 epochs)"


def _losses(result: SweepResult) -> tuple[list[float], list[float]]:
    runs = result.runs.sort_values("run_id")["final_train_loss"].tolist()
    epochs = result.epochs.sort_values(["run_id", "epoch"])["train_loss"].tolist()
    return runs, epochs


def dask_sweep_case(scale: Scale) -> Case:
    suite, config, label = _sweep_setup(scale)
    times: dict[str, list[float]] = {"serial": [], "dask": []}
    losses: dict[str, tuple] = {}
    load: list[float] = []
    n_runs: list[int] = []

    def once(name: str) -> None:
        t0 = time.perf_counter()
        if name == "serial":
            with SerialExecutor() as executor:
                result = run_sweep(suite, config, executor)
        else:
            with DaskExecutor(workers=DASK_WORKERS) as executor:
                result = run_sweep(suite, config, executor)
        times[name].append(time.perf_counter() - t0)
        losses.setdefault(name, _losses(result))
        n_runs.append(len(result.runs))

    def round_() -> None:
        load.append(os.getloadavg()[0])
        order = ("serial", "dask") if len(times["serial"]) % 2 == 0 else ("dask", "serial")
        for name in order:
            once(name)

    def rows() -> list[Row]:
        ratios = Stats.of([d / s for d, s in zip(times["dask"], times["serial"], strict=True)])
        dask, serial = Stats.of(times["dask"]), Stats.of(times["serial"])
        target, met = judged(DASK_TARGET, ratios.median)
        same = "yes" if losses["dask"] == losses["serial"] else "NO"
        return [
            Row(
                case="7-dask-sweep",
                method="all",
                impl="scratch",
                size=f"{n_runs[0]} runs",
                device="cpu",
                median=dask.median,
                iqr=dask.iqr,
                unit="s",
                rounds=len(times["dask"]),
                ratio=ratios.median,
                ratio_iqr=ratios.iqr,
                target=target,
                met=met,
                metric="wall-time ratio: dask / serial",
                candidate=f"sweep on {DASK_WORKERS} Dask workers",
                baseline="sweep, serial executor",
                baseline_median=serial.median,
                baseline_iqr=serial.iqr,
                detail=(
                    f"{label}; cluster start and stop included; losses bitwise equal: {same}; "
                    f"{os.cpu_count()} cores, load average at start "
                    f"{', '.join(f'{x:.1f}' for x in load)}"
                ),
            )
        ]

    return Case(group="7-dask-sweep", round=round_, rows=rows, rounds=1, info={"sweep": label})


# ----------------------------------------------------------------------------------------------
# 8. The disturbed-epoch detector


class StallingBackend(CpuBackend):
    """A CPU backend whose stopwatch sleeps inside the timed region of epochs STALL_FIRST,
    STALL_FIRST + STALL_EVERY, ...: STALL_FACTOR x the run's median epoch so far, clamped."""

    def __init__(self) -> None:
        self.stalls: list[float] = []  # seconds slept, per injected epoch

    def stopwatch(self) -> PerfCounterStopwatch:
        backend = self

        class Watch(PerfCounterStopwatch):
            def __init__(self) -> None:
                super().__init__()
                self.epoch, self.walls, self.stalled = 0, [], False

            def start(self) -> None:
                super().start()
                self.epoch += 1
                self.stalled = self.epoch >= STALL_FIRST and (
                    (self.epoch - STALL_FIRST) % STALL_EVERY == 0
                )
                if self.stalled:
                    typical = statistics.median(self.walls)
                    stall = min(max(STALL_FACTOR * typical, STALL_MIN_S), STALL_MAX_S)
                    backend.stalls.append(stall)
                    time.sleep(stall)

            def stop(self) -> float:
                wall = super().stop()
                if not self.stalled:
                    self.walls.append(wall)
                return wall

        return Watch()


def _stall_specs(scale: Scale) -> list[RunSpec]:
    suite = apply_overrides(
        suite_from_toml(DEFAULT_SUITE),
        Overrides(impls=("scratch",), seeds=(0,), devices=("cpu",)),
    )
    if scale.name != "full":
        suite = apply_overrides(
            suite,
            Overrides(problems=("crops15", "synthetic:n=500"), methods=("gd", "adam"), epochs=13),
        )
    return suite.expand()


def _injected(epoch: int) -> bool:
    return epoch >= STALL_FIRST and (epoch - STALL_FIRST) % STALL_EVERY == 0


def stall_case(scale: Scale) -> Case:
    specs = _stall_specs(scale)
    results: list[RunResult] = []
    stalls: list[float] = []

    def round_() -> None:
        with torch_threads(DEFAULT_THREADS):  # as every executor pins them
            for spec in specs:
                backend = StallingBackend()
                results.append(run(spec, backend=backend))
                stalls.extend(backend.stalls)

    def rows() -> list[Row]:
        injected, other = [], []
        for r in results:
            for row in r.rows[1:]:
                if math.isfinite(row["epoch_time_s"]):
                    (injected if _injected(row["epoch"]) else other).append(row)
        hits = sum(row["disturbed"] for row in injected)
        false = [row for row in other if row["disturbed"]]
        off_cpu = sum(
            row["epoch_time_s"] > DISTURBED_OVER_CPU * row["epoch_cpu_s"] + DISTURBED_SLACK_S
            for row in false
        )
        hit_rate, false_rate = hits / len(injected), len(false) / len(other)
        common = dict(
            case="8-stalls",
            method="all",
            impl="scratch",
            size=f"{len(results)} runs",
            device="cpu",
            unit="s",
            rounds=1,
            ratio_iqr=math.nan,
            baseline_iqr=math.nan,
        )
        return [
            Row(
                **common,
                median=statistics.median(stalls),
                iqr=Stats.of(stalls).iqr,
                ratio=hit_rate,
                **dict(zip(("target", "met"), judged(HIT_TARGET, hit_rate), strict=True)),
                metric="fraction of injected stalls flagged disturbed",
                candidate="epochs with an injected stall (median stall in `median`)",
                baseline="",
                baseline_median=math.nan,
                detail=f"{hits} of {len(injected)} stalls flagged; stall = "
                f"{STALL_FACTOR:g}x the run's median epoch, {STALL_MIN_S * 1e3:g}-"
                f"{STALL_MAX_S * 1e3:g} ms, a sleep inside the timed region",
            ),
            Row(
                **common,
                median=statistics.median(row["epoch_time_s"] for row in other),
                iqr=math.nan,
                ratio=false_rate,
                **dict(zip(("target", "met"), judged(FALSE_FLAG_TARGET, false_rate), strict=True)),
                metric="fraction of the other epochs flagged disturbed",
                candidate="epochs without an injected stall (median epoch in `median`)",
                baseline="",
                baseline_median=math.nan,
                detail=f"{len(false)} of {len(other)} flagged, {off_cpu} of them off the CPU "
                f"(wall > {DISTURBED_OVER_CPU:g}x CPU + slack: really descheduled); load "
                f"average {os.getloadavg()[0]:.1f}",
            ),
        ]

    return Case(group="8-stalls", round=round_, rows=rows, rounds=1, info={"runs": len(specs)})
