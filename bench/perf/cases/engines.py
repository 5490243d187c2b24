"""perf case 9. The vectorised engine against the per-run engine: runs per second at K runs per
group; perf case 10. Their numeric agreement on the default suite.

9: for each of SGD at batch 1, momentum and Adam at batch 4 (crops15, linear) and Adam on the
MLP (crops15-mlp), one run through the per-run engine (`runner.run`) and a group of K runs
(K = 1, 16, 64, 256, 1024: learning rates spread over [lr, 2 lr), seeds 0-4, so each run
gathers its own split) through the vectorised engine, interleaved in rounds. A row per K: the
vectorised seconds per run, the per-run engine's, and the speed-up (per-run seconds per run /
vectorised seconds per run, median of the per-round ratios); target at K = 1024 for SGD at
batch 1: >= 100.

10: every problem x method of the default suite (from scratch, CPU, its seeds and epochs)
computed by both engines: a row per (problem, method) with the number of runs whose every
epoch's losses and accuracies are bitwise equal, the largest relative difference of any of
them (`ratio`), and both engines' seconds for the group. Reference rows: the bound (<= 1e-5 over
100 epochs) is a test (tests/run/test_engines.py), not a benchmark.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

from bench.perf.cases.common import Case, Scale
from bench.perf.timing import Interleaved, Row, Stats, Target, judged
from bench.run.config import DEFAULT_SUITE, Overrides, apply_overrides, suite_from_toml
from bench.run.device import DEFAULT_THREADS, torch_threads
from bench.run.engines import PER_RUN, VECTORISED, Group, plan, run_group
from bench.run.runner import RunResult
from bench.run.spec import RunSpec
from bench.schema import METRIC_COLUMNS, freeze_hparams

#: name -> (method, batch size, model, learning rate): the issue's four workloads on crops15.
ENGINE_WORKLOADS = {
    "sgd": ("sgd", 1, "linear", 1e-5),
    "momentum": ("momentum", 4, "linear", 1e-5),
    "adam": ("adam", 4, "linear", 0.1),
    "mlp-adam": ("adam", 4, "mlp", 0.01),
}
ENGINE_KS = {"full": (1, 16, 64, 256, 1024), "small": (1, 4)}
ENGINE_EPOCHS = {"full": 20, "small": 2}
ENGINE_TARGET = Target(">=", 100)  # SGD at batch 1, K = 1024 (issue 21)
AGREEMENT_METRIC = (
    "largest relative difference of any epoch's loss or accuracy, vectorised vs per-run"
)


def _group_specs(name: str, runs: int, epochs: int) -> list[RunSpec]:
    method, batch, model, lr = ENGINE_WORKLOADS[name]
    return [
        RunSpec(
            dataset="crops15",
            method=method,
            model=model,
            hparams=freeze_hparams({"lr": lr * (1 + i / runs)}),
            batch_size=batch,
            holdout=0.2,
            seed=i % 5,
            epochs=epochs,
        )
        for i in range(runs)
    ]


def engine_case(name: str, scale: Scale) -> Case:
    """Case 9 for one workload: per-run vs vectorised groups of each K, interleaved."""
    ks, epochs = ENGINE_KS[scale.name], ENGINE_EPOCHS[scale.name]
    single = Group(PER_RUN, tuple(_group_specs(name, 1, epochs)))
    groups = {k: Group(VECTORISED, tuple(_group_specs(name, k, epochs))) for k in ks}

    def pinned(group: Group):
        def call() -> list[RunResult]:
            with torch_threads(DEFAULT_THREADS):  # as every executor runs them
                return run_group(group)

        return call

    variants = {"per-run": pinned(single)} | {f"K={k}": pinned(g) for k, g in groups.items()}
    timing = Interleaved(variants, warmup=0)
    load = [os.getloadavg()[0]]

    def rows() -> list[Row]:
        load.append(os.getloadavg()[0])
        base = timing.stats("per-run")
        out = []
        for k in ks:
            per = Stats.of([t / k for t in timing.measured(f"K={k}")])
            pairs = zip(timing.measured("per-run"), timing.measured(f"K={k}"), strict=True)
            speedup = Stats.of([k * b / v for b, v in pairs])
            target = ENGINE_TARGET if (name == "sgd" and k == 1024) else None
            out.append(
                Row(
                    case="9-engines",
                    method=name,
                    impl="scratch",
                    size=f"K={k}",
                    device="cpu",
                    median=per.median,
                    iqr=per.iqr,
                    unit="s",
                    rounds=timing.rounds,
                    ratio=speedup.median,
                    ratio_iqr=speedup.iqr,
                    **dict(zip(("target", "met"), judged(target, speedup.median), strict=True)),
                    metric="speed-up: per-run seconds per run / vectorised seconds per run",
                    candidate=f"vectorised engine, a group of {k} runs",
                    baseline="per-run engine (runner.run), one run",
                    baseline_median=base.median,
                    baseline_iqr=base.iqr,
                    detail=(
                        f"{1 / per.median:.1f} runs/s vectorised vs {1 / base.median:.1f} runs/s "
                        f"per-run; crops15 ({ENGINE_WORKLOADS[name][2]}), "
                        f"{ENGINE_WORKLOADS[name][0]} at batch {ENGINE_WORKLOADS[name][1]}, "
                        f"{epochs} epochs, seeds 0-4; {os.cpu_count()} cores, load average "
                        f"{load[0]:.1f} -> {load[-1]:.1f}"
                    ),
                )
            )
        return out

    rounds = min(scale.slow_rounds, 3)
    return Case(
        group="9-engines",
        round=timing.round,
        rows=rows,
        rounds=rounds,
        calibrate=timing.calibrate,
        info={"workload": name, "ks": list(ks), "epochs": epochs},
    )


# ----------------------------------------------------------------------------------------------
# 10. Agreement


def agreement_specs(scale: Scale) -> list[RunSpec]:
    """The default suite from scratch on the CPU (at SMALL size: two problems, three methods,
    3 epochs)."""
    suite = apply_overrides(
        suite_from_toml(DEFAULT_SUITE), Overrides(impls=("scratch",), devices=("cpu",))
    )
    if scale.name != "full":
        small = Overrides(problems=("crops15", "diabetes"), methods=("gd", "sgd", "adam"), epochs=3)
        suite = apply_overrides(suite, small)
    return suite.expand()


def compare_runs(a: RunResult, b: RunResult) -> tuple[bool, float]:
    """(bitwise, largest relative difference) of two runs' per-epoch losses and metrics."""
    if len(a.rows) != len(b.rows):
        return False, math.inf
    same, worst = True, 0.0
    for x, y in zip(a.rows, b.rows, strict=True):
        for column in METRIC_COLUMNS:
            u, v = x[column], y[column]
            if u == v or (math.isnan(u) and math.isnan(v)):
                continue
            same = False
            finite = math.isfinite(u) and math.isfinite(v)
            worst = max(worst, abs(u - v) / max(abs(u), abs(v)) if finite else math.inf)
    return same, worst


def agreement_case(scale: Scale) -> Case:
    specs = agreement_specs(scale)
    found: list[tuple[Row, int, int]] = []  # (row, bitwise runs, runs)

    def round_() -> None:
        groups: dict[tuple[str, str], list[RunSpec]] = {}
        for spec in specs:
            groups.setdefault((spec.problem, spec.method), []).append(spec)
        with torch_threads(DEFAULT_THREADS):
            for (problem, method), members in groups.items():
                found.append(_agreement_row(problem, method, members))

    def rows() -> list[Row]:
        bitwise, runs = sum(f[1] for f in found), sum(f[2] for f in found)
        worst = max(f[0].ratio for f in found)
        total = Row(
            case="10-agreement",
            method="all",
            impl="scratch",
            size=f"{len(found)} problem x method groups",
            device="cpu",
            median=sum(f[0].median for f in found),
            iqr=math.nan,
            unit="s",
            rounds=1,
            ratio=worst,
            ratio_iqr=math.nan,
            target="",
            met="",
            metric=AGREEMENT_METRIC,
            candidate="vectorised engine",
            baseline="per-run engine (runner.run)",
            baseline_median=sum(f[0].baseline_median for f in found),
            baseline_iqr=math.nan,
            detail=f"bitwise {bitwise} of {runs} runs; largest relative difference {worst:.2g}",
        )
        return [*(f[0] for f in found), total]

    return Case(group="10-agreement", round=round_, rows=rows, rounds=1, info={"runs": len(specs)})


def _agreement_row(problem: str, method: str, specs: Sequence[RunSpec]) -> tuple[Row, int, int]:
    t0 = time.perf_counter()
    vectorised = [r for g in plan(specs, VECTORISED) for r in run_group(g)]
    t1 = time.perf_counter()
    per_run = [r for g in plan(specs, PER_RUN) for r in run_group(g)]
    t2 = time.perf_counter()
    by_spec = {r.spec: r for r in per_run}
    results = [compare_runs(r, by_spec[r.spec]) for r in vectorised]
    bitwise = sum(same for same, _ in results)
    worst = max(w for _, w in results)
    engines = {r.summary["engine"] for r in vectorised}
    row = Row(
        case="10-agreement",
        method=method,
        impl="scratch",
        size=problem,
        device="cpu",
        median=t1 - t0,
        iqr=math.nan,
        unit="s",
        rounds=1,
        ratio=worst,
        ratio_iqr=math.nan,
        target="",
        met="",
        metric=AGREEMENT_METRIC,
        candidate="vectorised engine (the group's seconds)",
        baseline="per-run engine (seconds of the same runs)",
        baseline_median=t2 - t1,
        baseline_iqr=math.nan,
        detail=(
            f"bitwise {bitwise} of {len(results)} runs; largest relative difference "
            f"{worst:.2g}; computed by {', '.join(sorted(engines))}"
        ),
    )
    return row, bitwise, len(results)
