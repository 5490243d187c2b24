"""perf case 6. Memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.perf.cases.common import REPO, Case, Scale
from bench.perf.timing import Row, Target, judged

MEMORY_TARGET = Target("<=", 2.5)


def memory_dataset(n: int) -> str:
    return f"synthetic:n={n}:d=100:k=1:dtype=float32"


def memory_case(scale: Scale) -> Case:
    """A full-batch `gd` run through `runner.run` in a fresh process (bench.perf.memory_child)."""
    result: dict[str, Any] = {}

    def child() -> None:
        result.update(run_memory_child(scale.memory_n))

    def rows() -> list[Row]:
        peak, size = result["peak_rss_bytes"], result["dataset_bytes"]
        target, met = judged(MEMORY_TARGET, peak / size)
        return [
            Row(
                case="6-memory",
                method="gd",
                impl="scratch",
                size=f"{scale.memory_n}x100 full batch",
                device="cpu",
                median=float(peak),
                iqr=0.0,
                unit="bytes",
                rounds=1,
                ratio=peak / size,
                ratio_iqr=float("nan"),
                target=target,
                met=met,
                metric="peak RSS / dataset bytes",
                candidate="peak RSS of the run",
                baseline="dataset bytes (X and Y)",
                baseline_median=float(size),
                baseline_iqr=0.0,
                detail=(
                    f"fresh process, no hold-out, {result['epochs']} epochs; python + torch "
                    f"alone {result['baseline_rss_bytes'] / 1e6:.0f} MB"
                ),
            )
        ]

    return Case(group="6-memory", round=child, rows=rows, rounds=1, info={"n": scale.memory_n})


def run_memory_child(n: int) -> dict[str, Any]:
    """Run `python -m bench.perf.memory_child n` and return its JSON line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.perf.memory_child", str(n)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.perf.memory_child failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
