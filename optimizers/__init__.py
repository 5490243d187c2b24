"""From-scratch optimizers (SGD, momentum, Nesterov, Adam, AdamW) and the registry of methods.

>>> import optimizers
>>> optimizers.names()[:3]
['gd', 'sgd', 'minibatch']
>>> opt = optimizers.build("momentum", params, impl="scratch", lr=0.01)  # doctest: +SKIP

``impl`` is one of ``optimizers.IMPLS``: ``"scratch"`` (ours), ``"torch"`` (torch.optim's
for-loop), ``"torch-foreach"`` or ``"torch-fused"``. ``optimizers.parity`` compares the scratch
implementation with torch.optim step by step.
"""

from __future__ import annotations

from .adam import Adam, AdamW
from .registry import (
    BATCH_REGIMES,
    IMPLS,
    METHODS,
    RULES,
    Method,
    Rule,
    build,
    get,
    names,
    register,
)
from .sgd import SGD

__all__ = [
    "BATCH_REGIMES",
    "IMPLS",
    "METHODS",
    "RULES",
    "SGD",
    "Adam",
    "AdamW",
    "Method",
    "Rule",
    "build",
    "get",
    "names",
    "register",
]
