"""Least-squares regression: the notebooks' task (mean squared error over all targets)."""

from __future__ import annotations

import math

import torch.nn.functional as F

from bench.run.data import ProblemData
from bench.run.models import ModelSpec
from bench.run.spec import RunSpec
from bench.run.tasks.base import Task, register


@register
class Regression(Task):
    """loss = mean over rows and targets of (f(x) − y)²; optimum: least squares, linear model."""

    name = "regression"
    summary = "mean squared error over all targets (the notebooks' mse); optimum: least squares"
    loss = staticmethod(F.mse_loss)

    def optimum(self, spec: RunSpec, data: ProblemData) -> float:
        """The least-squares loss* on the run's own training rows (linear model only)."""
        return data.loss_star if ModelSpec.parse(spec.model).kind == "linear" else math.nan
