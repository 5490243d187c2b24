"""perf case 12. The default sweep end to end, vectorised engine against per-run engine.

`python -m bench sweep` (a process of its own, as `nox -s sweep` starts it) with `--engine
vectorised` and with `--engine per-run`, each into a folder of its own and with a fresh store
(nothing reused), the order alternating from round to round; everything a user waits for is
timed: the imports, planning, the runs, the cost measurement (default budget) and the report.
The figure is vectorised time / per-run time; the target is the issue's: the vectorised
sweep within 15 s on 2 cores (the `detail` says whether it was met, with both times). Also in
the detail: whether both made the same selection (`selection.csv`: hyperparameters, edge
flags, extensions). At SMALL size a tiny sweep (crops15, gd and adam, 3 epochs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.perf.cases.common import Case, Scale
from bench.perf.timing import Row, Stats, Target, judged
from bench.run.engines import PER_RUN, VECTORISED

REPO = Path(__file__).resolve().parents[3]  # the checkout `python -m bench` runs from
SWEEP_TARGET_S = 15.0
SWEEP_RATIO_TARGET = Target("<=", 1.0)  # the figure: vectorised / per-run; 15 s is in `detail`
SMALL_ARGS = ["--datasets", "crops15", "--methods", "gd,adam", "--epochs", "3", "--seeds", "0",
              "--select-seeds", "0", "--decades", "1", "--no-claims"]  # fmt: skip


def _selection(folder: Path) -> pd.DataFrame:
    table = pd.read_csv(folder / "selection.csv")
    keep = [c for c in ("problem", "method", "hparams", "at_edge", "extensions") if c in table]
    return table[keep]


def sweep_engines_case(scale: Scale) -> Case:
    times: dict[str, list[float]] = {VECTORISED: [], PER_RUN: []}
    folders: dict[str, Path] = {}
    load: list[float] = [os.getloadavg()[0]]
    rounds = 3 if scale.name == "full" else 1
    done = [0]

    def once(engine: str, tmp: Path) -> None:
        out = tmp / f"{engine}-{len(times[engine])}"
        args = [] if scale.name == "full" else SMALL_ARGS
        t0 = time.perf_counter()
        command = [sys.executable, "-m", "bench", "sweep", *args, "--engine", engine]
        proc = subprocess.run(
            [*command, "--out", str(out), "--fresh"], cwd=REPO, capture_output=True, text=True
        )
        times[engine].append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"the {engine} sweep exited with {proc.returncode}: {proc.stderr}")
        folders[engine] = out

    def round_() -> None:
        with tempfile.TemporaryDirectory(prefix="optbench-perf12-") as tmp:
            order = [VECTORISED, PER_RUN] if done[0] % 2 == 0 else [PER_RUN, VECTORISED]
            for engine in order:
                once(engine, Path(tmp))
            same = _selection(folders[VECTORISED]).equals(_selection(folders[PER_RUN]))
            found.append(same)
        done[0] += 1

    found: list[bool] = []

    def rows() -> list[Row]:
        load.append(os.getloadavg()[0])
        v, p = Stats.of(times[VECTORISED]), Stats.of(times[PER_RUN])
        ratios = Stats.of([a / b for a, b in zip(times[VECTORISED], times[PER_RUN], strict=True)])
        within = "met" if v.median <= SWEEP_TARGET_S else "missed"
        return [
            Row(
                case="12-sweep-engines",
                method="all",
                impl="scratch",
                size="default sweep" if scale.name == "full" else "tiny sweep",
                device="cpu",
                median=v.median,
                iqr=v.iqr,
                unit="s",
                rounds=len(times[VECTORISED]),
                ratio=ratios.median,
                ratio_iqr=ratios.iqr,
                **dict(
                    zip(("target", "met"), judged(SWEEP_RATIO_TARGET, ratios.median), strict=True)
                ),
                metric="time ratio: vectorised sweep / per-run sweep, end to end",
                candidate="python -m bench sweep --engine vectorised",
                baseline="python -m bench sweep --engine per-run",
                baseline_median=p.median,
                baseline_iqr=p.iqr,
                detail=(
                    f"vectorised {', '.join(f'{t:.1f}' for t in times[VECTORISED])} s, per-run "
                    f"{', '.join(f'{t:.1f}' for t in times[PER_RUN])} s; {SWEEP_TARGET_S:g} s "
                    f"target {within}; same selection: {'yes' if all(found) else 'no'}; load "
                    f"average {load[0]:.1f} -> {load[-1]:.1f}"
                ),
            )
        ]

    return Case(group="12-sweep-engines", round=round_, rows=rows, rounds=rounds)
