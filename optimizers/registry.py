"""Registry of benchmarked methods: a named update rule, its default hyperparameters and a batch
regime. Adding a method is one ``register(Method(...))`` call at the bottom of this file."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from .adam import Adam, AdamW
from .sgd import SGD

__all__ = [
    "BATCH_REGIMES",
    "IMPLS",
    "METHODS",
    "RULES",
    "Method",
    "Rule",
    "build",
    "get",
    "names",
    "register",
]

#: How many examples one gradient is computed from: the whole training set, one example, or a
#: mini-batch of ``Method.batch_size`` examples.
BATCH_REGIMES = ("full", "single", "mini")

#: Implementations ``build`` can construct: our from-scratch class, or torch.optim's class with
#: its for-loop, foreach (multi-tensor) or fused kernels.
IMPLS = ("scratch", "torch", "torch-foreach", "torch-fused")
_TORCH_IMPL_FLAGS: Mapping[str, Mapping[str, bool]] = MappingProxyType(
    {
        "torch": MappingProxyType({"foreach": False}),
        "torch-foreach": MappingProxyType({"foreach": True}),
        "torch-fused": MappingProxyType({"fused": True}),
    }
)


def _known(kind: str, name: object, known: Iterable[str]) -> ValueError:
    return ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")


@dataclass(frozen=True)
class Rule:
    """An update rule: our from-scratch optimizer class and the torch.optim class it reproduces."""

    name: str
    scratch: type[torch.optim.Optimizer]
    reference: type[torch.optim.Optimizer]

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The constructor's keyword defaults (the library defaults, identical to torch's)."""
        return MappingProxyType(_constructor_defaults(self.scratch))


@functools.cache
def _constructor_defaults(cls: type) -> dict[str, Any]:
    signature = inspect.signature(cls.__init__)
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in ("self", "params")
    }


RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "sgd": Rule("sgd", SGD, torch.optim.SGD),
        "adam": Rule("adam", Adam, torch.optim.Adam),
        "adamw": Rule("adamw", AdamW, torch.optim.AdamW),
    }
)


@dataclass(frozen=True)
class Method:
    """A benchmarked method: update rule + default hyperparameters + batch regime.

    ``hparams`` holds only what differs from the rule's library defaults (``{"momentum": 0.9}``);
    it is stored read-only. ``batch_size`` is the default mini-batch size B for ``batch="mini"``
    and must be None for ``"full"`` and ``"single"``.
    """

    name: str
    rule: str
    hparams: Mapping[str, Any]
    batch: str
    batch_size: int | None = None
    summary: str = ""
    equation: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise _known("rule", self.rule, RULES)
        object.__setattr__(self, "hparams", MappingProxyType(dict(self.hparams)))
        self._check_names(self.hparams)
        if self.batch not in BATCH_REGIMES:
            raise _known("batch regime", self.batch, BATCH_REGIMES)
        if self.batch == "mini":
            if not isinstance(self.batch_size, int) or self.batch_size < 1:
                raise ValueError(
                    f"method {self.name!r}: batch 'mini' needs a batch_size >= 1, "
                    f"got {self.batch_size!r}"
                )
        elif self.batch_size is not None:
            raise ValueError(
                f"method {self.name!r}: batch {self.batch!r} takes no batch_size, "
                f"got {self.batch_size!r}"
            )

    def __hash__(self) -> int:  # hparams is a mapping, so hash by the (unique) name
        return hash(self.name)

    def __reduce__(self) -> tuple[Any, ...]:  # a mappingproxy cannot be pickled; a dict can
        return (
            Method,
            (
                self.name,
                self.rule,
                dict(self.hparams),
                self.batch,
                self.batch_size,
                self.summary,
                self.equation,
            ),
        )

    @property
    def scratch(self) -> type[torch.optim.Optimizer]:
        """Our from-scratch optimizer class."""
        return RULES[self.rule].scratch

    @property
    def reference(self) -> type[torch.optim.Optimizer]:
        """The torch.optim class the scratch class reproduces."""
        return RULES[self.rule].reference

    @property
    def hparam_names(self) -> tuple[str, ...]:
        """Keywords the rule accepts (``lr``, ``momentum``, ...), in constructor order."""
        return tuple(RULES[self.rule].defaults)

    def resolve(self, **overrides: Any) -> dict[str, Any]:
        """Full hyperparameters: rule defaults <- method defaults <- ``overrides``.

        Unknown keywords raise ValueError; values are checked by the optimizer's constructor.
        """
        self._check_names(overrides)
        return {**RULES[self.rule].defaults, **self.hparams, **overrides}

    def _check_names(self, hparams: Mapping[str, Any]) -> None:
        accepted = self.hparam_names
        for key in hparams:
            if key not in accepted:
                raise ValueError(
                    f"method {self.name!r} (rule {self.rule!r}) has no hyperparameter {key!r}; "
                    f"accepted: {', '.join(accepted)}"
                )


#: Every registered method by name, in registration order.
METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to ``METHODS``; a name can be registered once."""
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def names() -> list[str]:
    """Registered method names, in registration order."""
    return list(METHODS)


def get(name: str) -> Method:
    """The method called ``name``; unknown names raise ValueError listing the known ones."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise _known("method", name, METHODS) from None


def build(name: str, params: Any, impl: str = "scratch", **hparams: Any) -> torch.optim.Optimizer:
    """Construct method ``name``'s optimizer over ``params``.

    ``impl`` is one of ``IMPLS``: ``"scratch"`` (ours), ``"torch"`` (torch.optim, for-loop),
    ``"torch-foreach"`` or ``"torch-fused"``. ``hparams`` override the method's defaults.
    """
    method = get(name)
    if impl not in IMPLS:
        raise _known("impl", impl, IMPLS)
    kwargs = method.resolve(**hparams)
    if impl == "scratch":
        return method.scratch(params, **kwargs)
    return method.reference(params, **kwargs, **_TORCH_IMPL_FLAGS[impl])


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
