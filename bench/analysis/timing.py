"""What the time figures of a report can be trusted for: disturbed epochs and shared machines.

The runner flags an epoch `disturbed` when its wall time is far above its run's median or its
CPU time (`bench.run.runner`); time medians are over undisturbed epochs and `elapsed_s` counts a
disturbed epoch at its run's median. These sentences say so next to the figures, with the counts,
and say when runs were timed in parallel (then not comparable with serial timings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bench.run.runner import DISTURBED_OVER_CPU, DISTURBED_OVER_MEDIAN, DISTURBED_SLACK_S

RULE = (
    f"wall time > {DISTURBED_OVER_MEDIAN:g}x the run's median epoch, or > "
    f"{DISTURBED_OVER_CPU:g}x its CPU time + {DISTURBED_SLACK_S * 1e3:g} ms"
)
ELAPSED_CAPTION = "disturbed epochs counted at their run's median epoch time"


def parallel_note(env: Mapping[str, Any]) -> str:
    """'timed with 2 runs in parallel on 2 cores: not comparable with serial timings', or ''."""
    parallel = int(env.get("parallel_runs") or 1)
    if parallel <= 1:
        return ""
    return (
        f"timed with {parallel} runs in parallel on {env.get('cores') or '?'} cores "
        f"({env.get('executor', '?')} executor): not comparable with serial timings"
    )


def provenance_note(runs: pd.DataFrame) -> str:
    """How the runs' own epoch times were taken, when not all alike: each stored run keeps its
    own (`timed_by`, `parallel_runs`), so a command reusing runs timed elsewhere says so."""
    if "timed_by" not in runs:
        return ""
    how = runs["timed_by"].fillna("serial") + runs["parallel_runs"].fillna(1).map(
        lambda n: f" ({int(n)} in parallel)" if n > 1 else ""
    )
    counts = how.value_counts()
    if len(counts) < 2:
        return ""
    parts = ", ".join(f"{n} {k}" for k, n in counts.items())
    return f"the runs' own epoch times mix how they were taken ({parts}): not comparable"


def disturbed_counts(epochs: pd.DataFrame) -> tuple[int, int, int]:
    """(disturbed epochs, timed epochs, runs with a disturbed epoch); epoch 0 is not timed."""
    if "disturbed" not in epochs:
        return 0, 0, 0
    timed = epochs[(epochs["epoch"] > 0) & np.isfinite(epochs["epoch_time_s"].astype(float))]
    bad = timed[timed["disturbed"].astype(bool)]
    return len(bad), len(timed), bad["run_id"].nunique()


def disturbed_note(epochs: pd.DataFrame) -> str:
    """How many epochs were left out of the time medians, and why."""
    bad, timed, runs = disturbed_counts(epochs)
    if not timed:
        return ""
    if not bad:
        return f"No epoch was disturbed ({timed} timed epochs; disturbed = {RULE})."
    return (
        f"{bad} of {timed} timed epochs ({bad / timed:.1%}, in {runs} runs) were disturbed "
        f"({RULE}: the process was descheduled or the machine busy) and are excluded from the "
        "time medians; their raw times stay in epochs.csv."
    )


def time_note(epochs: pd.DataFrame, env: Mapping[str, Any]) -> str:
    """The sentence to put next to a report's time figures (parallel timing, then exclusions)."""
    parts = []
    parallel = parallel_note(env)
    if parallel:
        parts.append(f"**Note: {parallel}.**")
    disturbed = disturbed_note(epochs)
    if disturbed:
        parts.append(disturbed)
    return " ".join(parts)
