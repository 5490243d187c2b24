"""The vocabulary every layer shares: table columns, run status values, run identity, problem
names and the frozen form of hyperparameters. Defined once here; nothing here imports bench.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

Hparams = tuple[tuple[str, Any], ...]


class Status:
    """How a run ended (benchopt-style explicit set, never a loose string)."""

    OK: Final = "ok"
    DIVERGED: Final = "diverged"  # a non-finite loss, parameter or optimizer state
    FAILED: Final = "failed"  # a plug-in raised (its message is the run's `error`)
    TIMEOUT: Final = "timeout"  # the run took longer than its --timeout
    ALL: Final = (OK, DIVERGED, FAILED, TIMEOUT)
    STOPPED: Final = (DIVERGED, FAILED, TIMEOUT)  # did not finish: its final values rank last


# epochs.csv: one row per run and epoch (epoch 0 = the initial weights).
EPOCH_COLUMNS: Final = [
    "run_id",
    "problem",
    "dataset",
    "model",
    "method",
    "impl",
    "engine",  # what computed the run: per-run, vectorised (bench.run.engines)
    "device",
    "dtype",
    "seed",
    "batch_size",
    "lr",  # the rate in effect at the end of the epoch (the schedule's; the first group's)
    "hparams",
    "schedule",  # the learning-rate schedule (bench.run.schedules), "constant" by default
    "init_hash",
    "epoch",
    "train_loss",
    "holdout_loss",
    "train_accuracy",
    "holdout_accuracy",
    "epoch_time_s",  # wall time of the epoch's training work, raw
    "epoch_cpu_s",  # CPU time of the process over the same region (see bench.run.device)
    "elapsed_s",  # cumulative training time, a disturbed epoch counted at the run's median
    "disturbed",  # the epoch's wall time is far above the run's median or its CPU time
    "evals",  # loss/gradient evaluations in the epoch (a step of a closure optimizer: several)
    "status",
]
# Evaluated after every epoch on the whole training and hold-out sets; a metric a task does not
# have (accuracy of a regression) is empty.
METRIC_COLUMNS: Final = ["train_loss", "holdout_loss", "train_accuracy", "holdout_accuracy"]
# Columns that depend on the clock, not on the seed: everything else is equal between a serial,
# a parallel and a resumed run of the same specs.
TIMING_COLUMNS: Final = [
    "epoch_time_s",
    "epoch_cpu_s",
    "elapsed_s",
    "disturbed",
    "median_epoch_time_s",
    "iqr_epoch_time_s",
    "total_time_s",
    "total_cpu_s",
    "disturbed_epochs",
    "time_stats_exclude_disturbed",
    "seconds_to_target",
    "cost_s",  # the cost measurement's (bench.run.cost): per run, with its interval and rounds
    "cost_lo_s",
    "cost_hi_s",
    "cost_rounds",
    "cost_wall_s",
    "cost_floor",
    "cost_vs_gd",
    "epoch_cost_s",  # what the reports read: cost_s, or the run's own median epoch time
]
# What identifies a run apart from its implementation: scratch and torch twins share these.
RUN_KEYS: Final = [
    "problem", "dataset", "model", "method", "device", "dtype", "seed", "hparams", "schedule",
]  # fmt: skip
# What fixes the data and initial weights of a run (init_hash is constant over the rest).
PROBLEM_SEED_KEYS: Final = ["problem", "seed"]


def freeze_hparams(hparams: Mapping[str, Any]) -> Hparams:
    """Hyperparameters as a sorted, hashable tuple (lists become tuples): the spec's form."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in hparams.items()))


def hparams_json(hparams: Mapping[str, Any] | Hparams) -> str:
    """The canonical text of a hyperparameter set, as in the tables' `hparams` column."""
    items = hparams.items() if isinstance(hparams, Mapping) else hparams
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in items}, sort_keys=True)


def problem_name(dataset: str, model: str) -> str:
    """The default name of a (dataset, model) problem: `crops15`, `crops15-mlp`,
    `crops15-mlp-hidden16`. The linear model, the notebooks' own, keeps the bare dataset name."""
    if model == "linear":
        return dataset
    return f"{dataset}-{model.replace(':', '-').replace('=', '')}"
