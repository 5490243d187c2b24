"""DeepOBS's `quadratic_deep` (Schneider et al., ICLR 2019), reproduced exactly.

Minimise over θ ∈ R^100 the mean over points x of `0.5 (θ − x)ᵀ Q (θ − x)`; θ starts at
ones for every run (DeepOBS's `torch.ones(dim)`), batches of 128 with the remainder dropped,
training points shuffled every epoch, 100 epochs. Data and Q come from
`datasets.quadratic_deep(variant)` (see its docstring for the two variants and the sources);
the hold-out set is the test set as DeepOBS evaluates it (its first 896 points). The known
optimum is θ* = the mean of the training points, with training loss `train_loss_star`.
"""

from __future__ import annotations

import torch
from torch import nn

import datasets
from bench.run.data import DTYPE, ProblemData, source_options
from bench.run.models import Theta
from bench.run.spec import RunSpec
from bench.run.tasks.base import Loss, Task, fixed_start, register


def problem_of(spec: RunSpec) -> datasets.QuadraticProblem:
    found = source_options(spec.dataset)
    assert found is not None, spec.dataset
    return datasets.quadratic_deep(found[1]["variant"])


@register
class QuadraticDeep(Task):
    name = "quadratic_deep"
    summary = (
        "DeepOBS's quadratic_deep: 0.5 (θ − x)ᵀ Q (θ − x), mean over the batch; θ0 = ones; "
        "B = 128, remainder dropped; optimum θ* = mean of the training points"
    )
    drop_last = True
    default_model = "theta"
    model_choice = False

    def loss_for(self, spec: RunSpec, data: ProblemData) -> Loss:
        Q = torch.tensor(problem_of(spec).hessian, dtype=DTYPE[spec.dtype], device=spec.device)

        def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            q = output - target  # one row θ − x per point
            return 0.5 * ((q @ Q) * q).sum(dim=1).mean()  # row i: q_i Q q_iᵀ

        return loss

    def model(self, spec: RunSpec, data: ProblemData) -> nn.Module:
        return fixed_start(Theta(data.k), problem_of(spec).theta0.tolist())

    def optimum(self, spec: RunSpec, data: ProblemData) -> float:
        return problem_of(spec).train_loss_star
