"""optbench's own rules and methods. Adding a method is one ``register(Method(...))`` call here."""

from __future__ import annotations

import torch

from .adam import Adam, AdamW
from .registry import METHODS, Method, register, register_rule
from .sgd import SGD

__all__ = ["BUILTIN_METHODS"]

register_rule("sgd", SGD, torch.optim.SGD)
register_rule("adam", Adam, torch.optim.Adam)
register_rule("adamw", AdamW, torch.optim.AdamW)


_SGD = "p ← p − lr·g"
_ADAM = "m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)"

register(
    Method(
        "gd",
        "sgd",
        {},
        "full",
        summary="Gradient descent on the full training set.",
        equation=f"g = ∇L(p) over all examples;  {_SGD}",
    )
)
register(
    Method(
        "sgd",
        "sgd",
        {},
        "single",
        summary="Stochastic gradient descent, one example per step.",
        equation=f"g = ∇ℓᵢ(p) for one example i;  {_SGD}",
    )
)
register(
    Method(
        "minibatch",
        "sgd",
        {},
        "mini",
        4,
        summary="Mini-batch SGD.",
        equation=f"g = mean of ∇ℓᵢ(p) over a batch of B;  {_SGD}",
    )
)
register(
    Method(
        "momentum",
        "sgd",
        {"momentum": 0.9},
        "mini",
        4,
        summary="Mini-batch SGD with heavy-ball momentum.",
        equation="b ← μb + g (b₁ = g);  p ← p − lr·b",
    )
)
register(
    Method(
        "nesterov",
        "sgd",
        {"momentum": 0.9, "nesterov": True},
        "mini",
        4,
        summary="Mini-batch SGD with Nesterov momentum.",
        equation="b ← μb + g (b₁ = g);  p ← p − lr·(g + μb)",
    )
)
register(
    Method(
        "adam",
        "adam",
        {},
        "mini",
        4,
        summary="Adam on mini-batches.",
        equation=_ADAM,
    )
)
register(
    Method(
        "adamw",
        "adamw",
        {"weight_decay": 1e-2},
        "mini",
        4,
        summary="AdamW: Adam with decoupled weight decay.",
        equation=f"p ← p·(1 − lr·λ);  then Adam: {_ADAM}",
    )
)
register(
    Method(
        "sgd_wd",
        "sgd",
        {"weight_decay": 1e-2},
        "single",
        summary="Single-example SGD with L2 weight decay.",
        equation=f"g ← ∇ℓᵢ(p) + λp;  {_SGD}",
    )
)
register(
    Method(
        "adam_l2",
        "adam",
        {"weight_decay": 1e-2},
        "mini",
        4,
        summary="Adam with coupled L2 weight decay (the gradient carries λp).",
        equation=f"g ← g + λp;  then Adam: {_ADAM}",
    )
)


#: Names of the methods optbench itself defines (a plug-in may not take one by default).
BUILTIN_METHODS: frozenset[str] = frozenset(METHODS)
