"""From-scratch optimizers (SGD, momentum, Nesterov, Adam, AdamW), the registry of methods and
plug-ins (any ``torch.optim.Optimizer`` subclass, benchmarked without touching optbench).

>>> import optimizers
>>> optimizers.names()[:3]
['gd', 'sgd', 'minibatch']
>>> opt = optimizers.build("momentum", params, impl="scratch", lr=0.01)  # doctest: +SKIP

``impl`` is one of ``Method.impls``: ``"scratch"`` (ours), ``"torch"`` (torch.optim's for-loop),
``"torch-foreach"`` or ``"torch-fused"`` for the built-ins (``IMPLS``); ``"scratch"`` only for a
rule registered without a torch reference; ``"plugin"`` (the class itself) for a plug-in.
``optimizers.parity`` compares the scratch implementation with torch.optim step by step and
reports methods without a reference as "no reference".

Adding a method from Python (a name can be registered once)::

    optimizers.register_rule("signsgd", SignSGD)          # torch_cls=None: no torch reference
    optimizers.register_method("signsgd", rule="signsgd", batch="mini", batch_size=4)

Plug-ins by import spec (``module.path:Class``, ``path/to/file.py:Class``, ``torch.optim:Class``);
the method's name defaults to the class name lower-cased::

    method = optimizers.method_from_path("signsgd.py:SignSGD", hparams={"lr": 0.01})
    optimizers.build(method, params)                     # a Method works without registering

Recommended flow for a CLI:

1. ``methods = optimizers.resolve_methods("gd,adam,path/to/signsgd.py:SignSGD")``: names are
   looked up, entries with a ``:`` are loaded and registered (same spec twice: one method).
2. Later in the process, look any of them up by name: ``optimizers.get("signsgd")``; apply
   ``--impl`` only where ``impl in method.impls`` (a plug-in has ``("plugin",)``).
3. Worker processes: ship ``optimizers.plugin_methods()`` (Method objects pickle as their spec
   and options; unpickling re-imports the class) and, in the worker, call
   ``optimizers.register(method, exist_ok=True)`` for each before building by name. A
   ``module:Class`` spec must be importable in the worker too; file specs are stored absolute.
"""

from __future__ import annotations

from . import loading
from .adam import Adam, AdamW
from .builtin import BUILTIN_METHODS
from .plugins import DEFAULT_BATCH_SIZE, method_from_path, resolve_methods
from .registry import (
    ALL_IMPLS,
    BATCH_REGIMES,
    IMPLS,
    METHODS,
    PLUGIN,
    RULES,
    Method,
    Rule,
    build,
    get,
    names,
    plugin_methods,
    register,
    register_method,
    register_rule,
    takes_optimizer,
    wrapped_argument,
)
from .sgd import SGD

__all__ = [
    "ALL_IMPLS",
    "BATCH_REGIMES",
    "BUILTIN_METHODS",
    "DEFAULT_BATCH_SIZE",
    "IMPLS",
    "METHODS",
    "PLUGIN",
    "RULES",
    "SGD",
    "Adam",
    "AdamW",
    "Method",
    "Rule",
    "build",
    "get",
    "loading",
    "method_from_path",
    "names",
    "plugin_methods",
    "register",
    "register_method",
    "register_rule",
    "resolve_methods",
    "takes_optimizer",
    "wrapped_argument",
]
