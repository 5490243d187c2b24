"""Classification: softmax cross-entropy on the model's logits, accuracy per epoch.

The dataset decides the task (`Dataset.task == "classification"`: `digits`, `breast_cancer`,
or a CSV read with `--task classification`); labels are int64 class indices on every device,
and a model has `n_classes` outputs (`linear` is multinomial logistic regression).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.run.tasks.base import Task, register


@register
class Classification(Task):
    """loss = mean over rows of −log softmax(f(x))[y]; accuracy = share of argmax f(x) == y.

    No optimum: cross-entropy has no closed form, and on separable data none is attained.
    """

    name = "classification"
    summary = "softmax cross-entropy on logits (integer labels), accuracy per epoch; no optimum"
    loss = staticmethod(F.cross_entropy)
    metrics = ("accuracy",)

    def check_output(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """One row of logits per label: shape (n, classes) for labels of shape (n,)."""
        if outputs.ndim != 2 or outputs.shape[0] != targets.shape[0]:
            raise ConfigError(
                f"the model's output has shape {tuple(outputs.shape)}; classification needs "
                f"one row of logits per label, ({targets.shape[0]}, classes)"
            )

    def extra_metrics(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        hits = torch.count_nonzero(outputs.argmax(dim=1) == targets)
        # Counted exactly, divided in float64: a float32 mean would round 0.95833... .
        return {"accuracy": hits.to(torch.float64) / targets.shape[0]}
