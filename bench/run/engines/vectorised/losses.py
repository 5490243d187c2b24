"""The tasks' losses over stacked runs: dL/d(output) of each run's mean batch loss, and the
per-epoch evaluation (loss and the task's metrics), each as the per-run path computes it.

- regression, `F.mse_loss`: the gradient is `mse_loss_backward`'s `(2 / numel) * (out - y)`;
  the loss the sum of squared differences over the run's rows and targets / numel.
- classification, `F.cross_entropy`: `nll_loss_backward` (−1/B at each row's label) then
  `_log_softmax_backward_data`, row by row as in the per-run backward; the loss is evaluated
  run by run with `F.cross_entropy` itself (its mean is a cascade sum of its own), accuracy as
  `Classification.extra_metrics` counts it.
- quadratic_deep: the gradient autograd takes through `0.5 (q Q · q).sum(1).mean()`.
- function2d: f is any element-wise function, so autograd over the stacked outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import datasets
from bench.run.data import DTYPE, ProblemData
from bench.run.engines.vectorised.layout import copy_stacked, product, stacked
from bench.run.spec import RunSpec
from bench.run.tasks.quadratic import problem_of


class MeanSquaredError:
    metrics: tuple[str, ...] = ()

    def __init__(self, spec: RunSpec, data: ProblemData) -> None:
        pass

    def grad(self, out: Tensor, y: Tensor) -> Tensor:
        G = stacked(out.shape[0], out.shape[1:], out.dtype)
        torch.sub(out, y, out=G)
        return G.mul_(2.0 / (out.shape[1] * out.shape[2]))

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        squares = F.mse_loss(out, y, reduction="none")
        return {"loss": squares.sum(dim=(1, 2)).div_(out.shape[1] * out.shape[2])}


class CrossEntropy:
    metrics = ("accuracy",)

    def __init__(self, spec: RunSpec, data: ProblemData) -> None:
        pass

    def grad(self, out: Tensor, y: Tensor) -> Tensor:
        runs, rows, classes = out.shape
        logits = out.reshape(runs * rows, classes)
        log_p = torch.log_softmax(logits, 1)
        weight = float(torch.ones((), dtype=out.dtype).div(rows).neg())  # −(1 / B), as nll's
        grad_log_p = torch.zeros_like(log_p).scatter_(1, y.reshape(-1, 1), weight)
        G = torch._log_softmax_backward_data(grad_log_p, log_p, 1, out.dtype)
        return copy_stacked(G.view(runs, rows, classes))

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        loss = torch.stack([F.cross_entropy(out[i], y[i]) for i in range(out.shape[0])])
        hits = torch.count_nonzero(out.argmax(dim=2) == y, dim=1)
        return {"loss": loss, "accuracy": hits.to(torch.float64) / y.shape[1]}


class Quadratic:
    """0.5 (θ − x)ᵀ Q (θ − x), mean over the batch (see `bench.run.tasks.quadratic`)."""

    metrics: tuple[str, ...] = ()

    def __init__(self, spec: RunSpec, data: ProblemData) -> None:
        self.Q = torch.tensor(problem_of(spec).hessian, dtype=DTYPE[spec.dtype])

    def _terms(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        q = stacked(out.shape[0], y.shape[1:], y.dtype)
        torch.sub(out, y, out=q)
        Q = self.Q.expand(out.shape[0], *self.Q.shape)
        return q, product(q, Q)

    def grad(self, out: Tensor, y: Tensor) -> Tensor:
        q, qQ = self._terms(out, y)
        scale = torch.full((), 0.5, dtype=out.dtype).div(out.shape[1])  # mean's backward of 0.5
        via_product = copy_stacked(q * scale)  # d/d(qQ)
        Qt = self.Q.t().expand(out.shape[0], *self.Q.shape)
        return copy_stacked(qQ * scale + product(via_product, Qt))

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        q, qQ = self._terms(out, y)
        per_row = (qQ * q).sum(dim=2)
        return {"loss": 0.5 * per_row.sum(dim=1).div_(out.shape[1])}


class Function2D:
    """f(θ) of a 2-D test function; `out` is θ expanded over the one dummy row."""

    metrics: tuple[str, ...] = ()

    def __init__(self, spec: RunSpec, data: ProblemData) -> None:
        self.f = datasets.function_2d(data.name).f

    def _value(self, out: Tensor) -> Tensor:
        return self.f(out.permute(2, 0, 1)).mean(dim=1)  # f reads row 0 (x) and row 1 (y)

    def grad(self, out: Tensor, y: Tensor) -> Tensor:
        with torch.enable_grad():
            leaf = out.detach().clone().requires_grad_()
            self._value(leaf).sum().backward()
        return copy_stacked(leaf.grad)

    def evaluate(self, out: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"loss": self._value(out)}


#: Task name (`bench.run.tasks.TASKS`) -> its stacked loss.
LOSSES: dict[str, Callable[[RunSpec, ProblemData], Any]] = {
    "regression": MeanSquaredError,
    "classification": CrossEntropy,
    "quadratic_deep": Quadratic,
    "function2d": Function2D,
}
