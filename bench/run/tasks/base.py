"""The `Task` contract and its registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
from torch import nn

from bench.errors import ConfigError
from bench.run.data import ProblemData, problem_data
from bench.run.models import ModelSpec
from bench.run.seeding import derive_seed
from bench.run.spec import RunSpec

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Task:
    """Base task. Subclasses set `name`, `summary`, `loss` and may add `metrics`.

    `loss(output, target)` is the training loss (a mean over the batch): the optimizer steps on
    it and the runner evaluates it on the whole training and hold-out sets after each epoch;
    a task whose loss depends on the problem (a matrix, a function) returns it from
    `loss_for(spec, data)` instead. `metrics` names extra per-epoch columns (`train_<m>`,
    `holdout_<m>`), computed by `extra_metrics`; the loss columns are always there. `records`
    names extra per-epoch columns read from the model by `record` (the 2-D tasks' path).

    Properties of the problem the suite and the runner honour: `drop_last` (an epoch's last,
    smaller batch is skipped, as DeepOBS's loaders do), `full_batch` (every method steps on the
    whole training set: one step per epoch), `default_model` and `model_choice` (False: the
    task builds its own model and `--model` does not apply to it).
    """

    name: str = ""
    summary: str = ""
    loss: Loss
    metrics: Sequence[str] = ()
    records: Sequence[str] = ()
    drop_last: bool = False
    full_batch: bool = False
    default_model: str = "linear"
    model_choice: bool = True

    def data(self, spec: RunSpec) -> ProblemData:
        """The run's training and hold-out arrays and the training optimum."""
        return problem_data(*spec.problem_key)

    def model(self, spec: RunSpec, data: ProblemData) -> nn.Module:
        """The model with the float32 initial weights every run of (problem, seed) shares."""
        model = ModelSpec.parse(spec.model).build(data.d, data.k)
        model.load_state_dict(initial_weights(data.name, spec.model, data.d, data.k, spec.seed))
        return model

    def loss_for(self, spec: RunSpec, data: ProblemData) -> Loss:
        """The loss of this run (the task's `loss` unless it depends on the problem)."""
        return self.loss

    def optimum(self, spec: RunSpec, data: ProblemData) -> float:
        """The known optimum of the training loss, or NaN where there is none."""
        return math.nan

    def check_output(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """The model's output on a split must have the targets' shape (one value per target),
        never broadcast against them; a ConfigError naming both shapes otherwise."""
        if outputs.shape != targets.shape:
            raise ConfigError(
                f"the model's output has shape {tuple(outputs.shape)} for targets of shape "
                f"{tuple(targets.shape)}"
            )

    def extra_metrics(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Metrics beyond the loss, as 0-d tensors (kept on the device until read)."""
        return {}

    def record(self, model: nn.Module) -> dict[str, float]:
        """Values of the `records` columns after an epoch (read from the model)."""
        return {}


@lru_cache(maxsize=64)
def initial_weights(dataset: str, model: str, d: int, k: int, seed: int) -> dict[str, torch.Tensor]:
    """Float32 master weights, one set per (dataset, model, seed), shared by every run of it."""
    return ModelSpec.parse(model).initial_state(d, k, derive_seed("init", dataset, model, seed))


def fixed_start(model: nn.Module, theta: Sequence[float]) -> nn.Module:
    """Set the `theta` model's one parameter to the float32 start point every run shares."""
    model.load_state_dict({"theta": torch.tensor(list(theta), dtype=torch.float32)})
    return model


TASKS: dict[str, Task] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: adds one instance of the task to `TASKS` under `cls.name`."""
    if not cls.name or cls.name in TASKS:
        raise ValueError(f"task name {cls.name!r} is empty or already registered")
    TASKS[cls.name] = cls()
    return cls
