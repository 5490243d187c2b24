"""From-scratch SGD: plain, heavy-ball momentum (with dampening), Nesterov, coupled weight decay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.optim.optimizer import ParamsT

from .base import ScratchOptimizer, check_lr, check_non_negative, check_real, no_grad_step
from .transforms import add_decayed_weights, signed_gradient, trace

__all__ = ["SGD"]


class SGD(ScratchOptimizer):
    r"""Stochastic gradient descent, optionally with momentum; a drop-in for ``torch.optim.SGD``.

    For each parameter p with a gradient (parameters whose ``.grad`` is None are skipped)::

        g = -grad if maximize else grad
        g = g + weight_decay * p                     (if weight_decay != 0)
        if momentum != 0:
            b = g                                    (first step: a copy, no dampening)
            b = momentum * b + (1 - dampening) * g   (later steps)
            g = g + momentum * b if nesterov else b
        p = p - lr * g

    This is torch.optim.SGD's algorithm (velocity form ``b = mu*b + g``, not Sutskever's
    ``b = mu*b + lr*g``) with the same operations in the same order, so results are bitwise equal
    to ``torch.optim.SGD(..., foreach=False)``. State key: ``"momentum_buffer"``.

    Args:
        params: parameters or param-group dicts, as for any ``torch.optim.Optimizer``.
        lr: learning rate, finite and >= 0 (default 1e-3).
        momentum: momentum factor mu >= 0 (default 0).
        dampening: dampening tau for momentum (default 0).
        weight_decay: coupled L2 penalty >= 0 (default 0).
        nesterov: Nesterov momentum; needs momentum > 0 and dampening == 0 (default False).
        maximize: ascend the objective instead of descending (default False).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)
        check_non_negative("momentum", momentum)
        check_real("dampening", dampening)
        check_non_negative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening, "
                f"got momentum={momentum!r}, dampening={dampening!r}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)

    @no_grad_step
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one update; ``closure`` (re-evaluating the loss) runs with grad enabled."""
        loss = self._loss_of(closure)

        for group in self.param_groups:
            lr = group["lr"]
            momentum = group["momentum"]
            dampening = group["dampening"]
            weight_decay = group["weight_decay"]
            nesterov = group["nesterov"]
            maximize = group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = add_decayed_weights(signed_gradient(p, maximize), p, weight_decay)
                if momentum != 0:
                    g = trace(self.state[p], g, momentum, dampening, nesterov)
                p.add_(g, alpha=-lr)
        return loss
