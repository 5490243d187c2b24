"""2-D test functions (Rosenbrock, Beale, Himmelblau): the objective is f(θ), θ ∈ R².

No data: one dummy row and full batch, so an epoch is one step of every method, all from the
function's conventional start point. θ is recorded after every epoch (`theta_0`, `theta_1`),
which is what `trajectories.png` draws. Optimum: the function's known minimum (0).
"""

from __future__ import annotations

import torch
from torch import nn

import datasets
from bench.run.data import ProblemData
from bench.run.models import Theta
from bench.run.spec import RunSpec
from bench.run.tasks.base import Loss, Task, fixed_start, register


@register
class Function2D(Task):
    name = "function2d"
    summary = "f(θ) of a 2-D test function from its start point; θ per epoch; optimum: minimum"
    records = ("theta_0", "theta_1")
    full_batch = True
    default_model = "theta"
    model_choice = False

    def loss_for(self, spec: RunSpec, data: ProblemData) -> Loss:
        f = datasets.function_2d(data.name).f
        return lambda output, target: f(output.T).mean()  # f reads row 0 (x) and row 1 (y)

    def model(self, spec: RunSpec, data: ProblemData) -> nn.Module:
        return fixed_start(Theta(2), datasets.function_2d(data.name).start)

    def check_output(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """The objective reads θ only (its own model): nothing to compare."""

    def optimum(self, spec: RunSpec, data: ProblemData) -> float:
        return datasets.function_2d(data.name).minimum

    def record(self, model: nn.Module) -> dict[str, float]:
        x, y = model.theta.detach().tolist()
        return {"theta_0": x, "theta_1": y}
