"""From-scratch Adam (coupled L2 decay) and AdamW (decoupled decay), both with optional AMSGrad."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.optim.optimizer import ParamsT

from .base import ScratchOptimizer, check_betas, check_lr, check_non_negative, no_grad_step
from .transforms import (
    add_decayed_weights,
    decay_weights_,
    init_adam_state,
    scale_by_adam,
    signed_gradient,
)

__all__ = ["Adam", "AdamW"]


class Adam(ScratchOptimizer):
    r"""Adam, optionally AMSGrad; a drop-in for ``torch.optim.Adam``.

    For each parameter p with a gradient (parameters whose ``.grad`` is None are skipped, and
    their step count t does not advance)::

        t = t + 1
        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)                if decoupled_weight_decay  (AdamW)
        g = g + weight_decay * p                       otherwise                  (L2)
        m = beta1 * m + (1 - beta1) * g                (computed as lerp, as torch)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v); use v_max for v         (amsgrad; over the uncorrected v)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Bias corrections are Python floats and eps is added after the correction, exactly as in
    torch.optim.Adam's for-loop, whose operations this repeats in order: results are bitwise
    equal to ``torch.optim.Adam(..., foreach=False)``. State keys: ``"step"`` (a Python int;
    torch's float tensor is accepted when loading), ``"exp_avg"``, ``"exp_avg_sq"`` and, with
    amsgrad, ``"max_exp_avg_sq"``.

    Args:
        params: parameters or param-group dicts, as for any ``torch.optim.Optimizer``.
        lr: learning rate, finite and >= 0 (default 1e-3).
        betas: decay rates (beta1, beta2) of the two moments, each in [0, 1) (default
            (0.9, 0.999)).
        eps: added to the denominator, >= 0 (default 1e-8).
        weight_decay: decay factor >= 0 (default 0); L2 unless ``decoupled_weight_decay``.
        amsgrad: use the running maximum of the second moment (default False).
        maximize: ascend the objective instead of descending (default False).
        decoupled_weight_decay: decay the weights directly, as AdamW (default False).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_lr(lr)
        check_non_negative("eps", eps)
        check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("decoupled_weight_decay", False)

    @no_grad_step
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one update; ``closure`` (re-evaluating the loss) runs with grad enabled."""
        loss = self._loss_of(closure)

        for group in self.param_groups:
            lr = group["lr"]
            beta1, beta2 = group["betas"]
            eps = group["eps"]
            weight_decay = group["weight_decay"]
            amsgrad = group["amsgrad"]
            maximize = group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    init_adam_state(state, p, amsgrad)
                g = signed_gradient(p, maximize)
                if decoupled:
                    decay_weights_(p, lr, weight_decay)
                else:
                    g = add_decayed_weights(g, p, weight_decay)
                exp_avg, denom, bias_correction1 = scale_by_adam(
                    state, g, beta1, beta2, eps, amsgrad
                )
                p.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))
        return loss


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay; a drop-in for ``torch.optim.AdamW``.

    The weights decay *before* the moment updates and outside them::

        p = p * (1 - lr * weight_decay)
        then the Adam step of :class:`Adam` on the undecayed gradient

    Same arguments as :class:`Adam` except that ``weight_decay`` defaults to 1e-2 and the decay is
    always decoupled (also after loading a state dict, as torch.optim.AdamW).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
