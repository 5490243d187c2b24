"""Update pieces shared by the from-scratch optimizers, each written once (optax style).

A piece acts on one parameter at a time and performs exactly the tensor operations, in exactly
the order, of torch 2.13's for-loop implementation (``torch.optim.sgd._single_tensor_sgd``,
``torch.optim.adam._single_tensor_adam``). That is what makes the composed optimizers bitwise
equal to torch.optim: reordering even one operation (``mul_(b).add_(g, alpha=1 - b)`` instead of
``lerp_``) drifts by an ulp per step.

Pieces that return a tensor never write into ``param.grad``: when they need a modified gradient
they return a new tensor, as torch does.

Notation: p parameter, g gradient, lr learning rate, wd weight decay, mu momentum,
tau dampening, t step count of this parameter.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = [
    "add_decayed_weights",
    "decay_weights_",
    "init_adam_state",
    "scale_by_adam",
    "signed_gradient",
    "trace",
]


def signed_gradient(param: Tensor, maximize: bool) -> Tensor:
    """Return the gradient to descend along: ``g = -grad`` when maximizing, else ``grad``.

    The sign flips before weight decay is added, so decay still shrinks ``p`` under maximize.
    """
    return -param.grad if maximize else param.grad


def add_decayed_weights(grad: Tensor, param: Tensor, weight_decay: float) -> Tensor:
    """Coupled (L2) weight decay: ``g = g + wd * p`` as a new tensor; ``g`` itself when wd == 0."""
    if weight_decay == 0:
        return grad
    return grad.add(param, alpha=weight_decay)


def decay_weights_(param: Tensor, lr: float, weight_decay: float) -> None:
    """Decoupled (AdamW) weight decay, in place: ``p = p * (1 - lr * wd)``; nothing when wd == 0."""
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)


def trace(
    state: dict[str, Any], grad: Tensor, momentum: float, dampening: float, nesterov: bool
) -> Tensor:
    """Heavy-ball momentum buffer ``b`` in ``state["momentum_buffer"]``; returns the direction.

    first step: ``b = g`` (a copy; dampening is *not* applied)
    later:      ``b = mu * b + (1 - tau) * g``
    direction:  ``g + mu * b`` with Nesterov, else ``b``

    Call only when ``momentum != 0``: torch keeps no buffer at all for plain SGD.
    """
    buf = state.get("momentum_buffer")
    if buf is None:
        buf = state["momentum_buffer"] = grad.detach().clone()
    else:
        buf.mul_(momentum).add_(grad, alpha=1 - dampening)
    return grad.add(buf, alpha=momentum) if nesterov else buf


def init_adam_state(state: dict[str, Any], param: Tensor, amsgrad: bool) -> None:
    """Fill an empty Adam state: step 0 and zero moments shaped (and laid out) like ``param``.

    The step count is a plain Python int; torch keeps a float32 tensor, and each class converts a
    loaded tensor step to an int in ``__setstate__``.
    """
    if torch.is_complex(param):
        raise NotImplementedError("the from-scratch Adam supports real parameters only")
    state["step"] = 0
    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    if amsgrad:
        state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)


def scale_by_adam(
    state: dict[str, Any], grad: Tensor, beta1: float, beta2: float, eps: float, amsgrad: bool
) -> tuple[Tensor, Tensor, float]:
    """Advance Adam's moments by one step; return ``(m, denom, bc1)`` for the caller's update.

    t = t + 1
    m = m + (1 - beta1) * (g - m)                  (lerp, as torch)
    v = beta2 * v + (1 - beta2) * g * g
    vmax = max(vmax, v)                            (amsgrad only, over the uncorrected v)
    bc1 = 1 - beta1**t,  bc2 = 1 - beta2**t        (Python floats)
    denom = sqrt(v or vmax) / sqrt(bc2) + eps      (eps after bias correction)

    The caller finishes with ``p.addcdiv_(m, denom, value=-(lr / bc1))``, i.e.
    ``p = p - lr * m_hat / (sqrt(v_hat) + eps)``; keeping that as one fused ``addcdiv_`` (as torch
    does) is what keeps the result bitwise equal to torch.
    """
    t = state["step"] + 1
    state["step"] = t
    exp_avg = state["exp_avg"]
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

    bias_correction1 = 1 - beta1**t
    bias_correction2_sqrt = (1 - beta2**t) ** 0.5
    if amsgrad:
        second_moment = state["max_exp_avg_sq"]
        torch.maximum(second_moment, exp_avg_sq, out=second_moment)
    else:
        second_moment = exp_avg_sq
    # In place on the fresh sqrt() result: torch divides out of place, which allocates one more
    # parameter-sized tensor but computes the same quotient.
    denom = second_moment.sqrt().div_(bias_correction2_sqrt).add_(eps)
    return exp_avg, denom, bias_correction1
