"""The task seam: what is trained and how it is scored (AlgoPerf's `Workload`, in small).

A task provides the data of a run, builds the model from the model registry with the run's
seeded initial weights, the training loss the optimizer steps on, the evaluation metrics
recorded after every epoch (the loss always; others where they apply) and the known optimum
where one exists. The runner names no loss: it asks the run's task. Adding a task is one file
in this folder with a `@register`-ed class.

Tasks: `regression` (MSE), `classification` (cross-entropy, accuracy), `quadratic_deep`
(DeepOBS's noisy quadratic) and `function2d` (Rosenbrock, Beale, Himmelblau). A problem's task
comes from its dataset (`bench.run.data.dataset_task`); a CSV file is regression unless told.
"""

from __future__ import annotations

from bench.errors import ConfigError
from bench.run.tasks.base import TASKS, Task, register
from bench.run.tasks.classification import Classification
from bench.run.tasks.function2d import Function2D
from bench.run.tasks.quadratic import QuadraticDeep
from bench.run.tasks.regression import Regression

__all__ = [
    "TASKS",
    "Classification",
    "Function2D",
    "QuadraticDeep",
    "Regression",
    "Task",
    "get",
    "register",
]


def get(name: str) -> Task:
    """The registered task, or a ConfigError listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
