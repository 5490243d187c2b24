"""perf case 11. Cost per epoch on a busy machine: the runs' own epoch times against the
interleaved cost measurement (`bench.run.cost`), with two CPU hogs beside them.

crops15 and diabetes (the default suite's settings), sgd and adam, from scratch and torch.optim
(same arithmetic: twins), 5 seeds, run serially while two processes spin on the CPU (on a
2-core machine: every core shared). Per (problem, method): the twins' cost ratio scratch/torch
per seed, "before" from each run's own median epoch time (`median_epoch_time_s`, undisturbed
epochs), "after" from the cost measurement (paired within rounds). The figure is the spread of
that ratio across seeds, max / min (target <= 1.2: the seeds of identical work agree). The
detail gives the before spread and the machine's load.

Row `11-cost-phase`: the time the cost measurement adds to `python -m bench run` (what `nox -s
bench` runs: default suite, default budget, no hogs), against the rest of that command (target
<= 0.25). SMALL size: crops15, one seed, 3 epochs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bench.analysis import cost as cost_analysis
from bench.analysis.tables import tables
from bench.perf.cases.common import Case, Scale
from bench.perf.timing import Row, Target, judged
from bench.run import cost
from bench.run.config import DEFAULT_SUITE, Overrides, apply_overrides, suite_from_toml
from bench.run.device import DEFAULT_THREADS, torch_threads
from bench.run.runner import run

SPREAD_TARGET = Target("<=", 1.20)
PHASE_TARGET = Target("<=", 0.25)
HOGS = 2
HOG_SECONDS = 1800  # a hog stops by itself even if this process is killed
REPO = Path(__file__).resolve().parents[3]  # the checkout `python -m bench` runs from
# The command's last line: "... in R s, cost per epoch C s, report P s; wrote ...".
PHASES = re.compile(r" in (\d+) s, cost per epoch (\d+) s, report (\d+) s;")
SMALL_RUN = ["--problems", "crops15", "--seeds", "0", "--epochs", "3", "--timing-budget", "1"]


@contextmanager
def cpu_hogs(n: int) -> Iterator[None]:
    """`n` processes spinning on the CPU for as long as the block lasts (bounded in time)."""
    code = (
        f"import time\nend = time.monotonic() + {HOG_SECONDS}\n"
        "while time.monotonic() < end:\n    pass"
    )
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    try:
        time.sleep(0.5)  # the hogs are spinning before the first run
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=30)


def _specs(scale: Scale, problems: Sequence[str], methods: Sequence[str], seeds: Sequence[int]):
    suite = suite_from_toml(DEFAULT_SUITE)
    epochs = None if scale.name == "full" else 3
    o = Overrides(problems=tuple(problems), methods=tuple(methods), seeds=tuple(seeds),
                  impls=("scratch", "torch"), devices=("cpu",), epochs=epochs)  # fmt: skip
    return apply_overrides(suite, o).expand()


def _spread(ratios: pd.Series) -> float:
    r = ratios[ratios > 0]
    return float(r.max() / r.min()) if len(r) > 1 else float("nan")


def cost_noise_case(scale: Scale) -> Case:
    full = scale.name == "full"
    seeds = (0, 1, 2, 3, 4) if full else (0, 1)
    problems = ("crops15", "diabetes") if full else ("crops15",)
    specs = _specs(scale, problems, ("sgd", "adam"), seeds)
    found: dict[str, object] = {}

    def round_() -> None:
        with cpu_hogs(HOGS), torch_threads(DEFAULT_THREADS):
            load0 = os.getloadavg()[0]
            results = [run(s) for s in specs]
            budget = 40.0 if scale.name == "full" else 1.0
            rows = cost.measure(specs, cost.CostConfig(budget_s=budget, min_rounds=5))
            load = (load0, os.getloadavg()[0])
            found.update(results=results, costs=pd.DataFrame(rows), load=load)

    def rows() -> list[Row]:
        runs = tables(found["results"])[1]  # type: ignore[arg-type]
        costs: pd.DataFrame = found["costs"]  # type: ignore[assignment]
        out = []
        for (problem, method), g in runs.groupby(["problem", "method"], sort=False):
            before, after = [], []
            for _, s in g.groupby("seed"):
                by = s.set_index("impl")
                own = by["median_epoch_time_s"]
                before.append(own["scratch"] / own["torch"])
                ids = by["run_id"]
                after.append(cost_analysis.paired(costs, ids["scratch"], ids["torch"]))
            spread_before, spread_after = _spread(pd.Series(before)), _spread(pd.Series(after))
            load0, load1 = found["load"]  # type: ignore[misc]
            out.append(
                Row(
                    case="11-cost-noise",
                    method=method,
                    impl="scratch/torch",
                    size=problem,
                    device="cpu",
                    median=spread_after,
                    iqr=0.0,
                    unit="ratio",
                    rounds=int(costs["round"].max()) + 1 if len(costs) else 0,
                    ratio=spread_after,
                    ratio_iqr=0.0,
                    **dict(
                        zip(("target", "met"), judged(SPREAD_TARGET, spread_after), strict=True)
                    ),
                    metric="max/min over seeds of the twins' cost ratio (scratch / torch)",
                    candidate="interleaved cost measurement (CPU time, paired within rounds)",
                    baseline="each run's own median epoch time",
                    baseline_median=spread_before,
                    baseline_iqr=0.0,
                    detail=(
                        f"{len(seeds)} seeds, {HOGS} CPU hogs; spread before {spread_before:.2f}, "
                        f"after {spread_after:.2f}; per-seed ratios after "
                        + ", ".join(f"{r:.3f}" for r in after)
                        + f"; load average {load0:.1f} -> {load1:.1f}"
                    ),
                )
            )
        return out

    return Case(group="11-cost-noise", round=round_, rows=rows, rounds=1, info={"runs": len(specs)})


def cost_phase_case(scale: Scale) -> Case:
    """`python -m bench run` as `nox -s bench` runs it (a process of its own, the default suite,
    default budget): the seconds of its cost measurement against the rest of the command, from
    the phase times it prints ("... in R s, cost per epoch C s, report P s") and its wall time."""
    args = [] if scale.name == "full" else SMALL_RUN
    times: dict[str, float] = {}

    def round_() -> None:
        with tempfile.TemporaryDirectory(prefix="optbench-perf11-") as tmp:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "bench", "run", *args, "--out", f"{tmp}/out"],
                cwd=REPO, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"python -m bench run exited with {proc.returncode}: {proc.stderr}")
        phases = PHASES.search(proc.stderr)
        if phases is None:
            raise RuntimeError(f"no phase times in the command's output: {proc.stderr[-500:]}")
        runs, measured, report = (float(x) for x in phases.groups())
        times.update(wall=wall, cost=measured, runs=runs, report=report)

    def rows() -> list[Row]:
        rest = times["wall"] - times["cost"]
        ratio = times["cost"] / rest
        return [
            Row(
                case="11-cost-phase",
                method="all",
                impl="all",
                size="default suite" if scale.name == "full" else "crops15, 3 epochs",
                device="cpu",
                median=times["cost"],
                iqr=0.0,
                unit="s",
                rounds=1,
                ratio=ratio,
                ratio_iqr=0.0,
                **dict(zip(("target", "met"), judged(PHASE_TARGET, ratio), strict=True)),
                metric="time ratio: cost measurement / the rest of `python -m bench run`",
                candidate="the command's cost measurement (default budget)",
                baseline="the rest of the command (start-up, runs, report; wall time)",
                baseline_median=rest,
                baseline_iqr=0.0,
                detail=(
                    f"whole command {times['wall']:.0f} s: runs {times['runs']:.0f} s, cost "
                    f"measurement {times['cost']:.0f} s, report {times['report']:.0f} s (as the "
                    f"command prints them, whole seconds); load average {os.getloadavg()[0]:.1f}"
                ),
            )
        ]

    return Case(group="11-cost-phase", round=round_, rows=rows, rounds=1)
