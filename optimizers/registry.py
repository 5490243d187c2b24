"""Registries of update rules and benchmarked methods, both plain dicts filled by functions.

A *rule* (``RULES``) is an update rule's classes: our from-scratch optimizer and, optionally, the
torch.optim class it reproduces. A *method* (``METHODS``) is a rule + default hyperparameters +
a batch regime. optbench's own are registered in ``optimizers.builtin``; code outside optbench
adds its own with :func:`register_rule` and :func:`register_method`,
or loads an optimizer class from an import spec (``optimizers.plugins``): such a *plug-in*
method has the reserved rule ``"plugin"`` and a single implementation, ``"plugin"``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import torch

from .loading import load_constructor, resolve_reference

__all__ = [
    "ALL_IMPLS",
    "BATCH_REGIMES",
    "IMPLS",
    "METHODS",
    "PLUGIN",
    "RULES",
    "Method",
    "Rule",
    "build",
    "get",
    "names",
    "plugin_methods",
    "register",
    "register_method",
    "register_rule",
    "wrapped_argument",
]

#: How many examples one gradient is computed from: the whole training set, one example, or a
#: mini-batch of ``Method.batch_size`` examples.
BATCH_REGIMES = ("full", "single", "mini")

#: Implementations of a rule with a torch.optim reference: our from-scratch class, or torch.optim's
#: class with its for-loop, foreach (multi-tensor) or fused kernels. A rule without a reference
#: has only ``"scratch"``.
IMPLS = ("scratch", "torch", "torch-foreach", "torch-fused")
#: The rule name and the one implementation of a plug-in method: the loaded class itself.
PLUGIN = "plugin"
#: Every implementation name ``build`` knows; ``Method.impls`` says which a method has.
ALL_IMPLS = (*IMPLS, PLUGIN)
_TORCH_IMPL_FLAGS: Mapping[str, Mapping[str, bool]] = MappingProxyType(
    {
        "torch": MappingProxyType({"foreach": False}),
        "torch-foreach": MappingProxyType({"foreach": True}),
        "torch-fused": MappingProxyType({"fused": True}),
    }
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _known(kind: str, name: object, known: Iterable[str]) -> ValueError:
    return ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")


def _check_name(kind: str, name: object) -> None:
    """Names go into tables, run ids and comma-separated CLI lists: keep them plain."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} must be letters, digits, '_', '.' or '-' "
            "(starting with a letter, digit or '_')"
        )


def _is_optimizer_class(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)


class _Signature(NamedTuple):
    """A constructor's hyperparameters: every keyword, those with defaults, those without;
    the name of its first argument, and whether it passes on other keywords (``**kwargs``)."""

    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    required: tuple[str, ...]
    first: str = "params"
    var_keyword: bool = False


@functools.cache
def _signature(cls: Any) -> _Signature:
    """Hyperparameters of ``cls(params, ...)`` (a class, or a factory function): the named
    parameters after the first (``params``, or the optimizer a wrapper takes).

    ``*args`` and ``**kwargs`` are not listed (a constructor with ``**kwargs`` accepts other
    keywords too, e.g. SAM passes them to its base optimizer); positional-only ones cannot be
    passed by keyword and are refused.
    """
    where = f"{cls.__module__}.{cls.__qualname__}"
    try:
        target = cls.__init__ if isinstance(cls, type) else cls
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the signature of {where}: {exc}") from None
    if isinstance(cls, type):
        parameters = parameters[1:]  # no self
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not parameters or parameters[0].kind not in positional:
        kind = "" if isinstance(cls, type) else " (a factory is f(params, **hparams) -> optimizer)"
        raise ValueError(f"{where} must take the parameters (params) first{kind}")
    names, defaults, required = [], {}, []
    var_keyword = False
    for parameter in parameters[1:]:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ValueError(f"{where}: hyperparameter {parameter.name!r} is positional-only")
        names.append(parameter.name)
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
        else:
            defaults[parameter.name] = parameter.default
    return _Signature(
        tuple(names), MappingProxyType(defaults), tuple(required), parameters[0].name, var_keyword
    )


def wrapped_argument(constructor: Any) -> str | None:
    """The name of a constructor's first argument if it takes an optimizer to wrap."""
    first = _signature(constructor).first
    return first if takes_optimizer(first) else None


def takes_optimizer(first: str) -> bool:
    """A constructor whose first argument is named like an optimizer (``optimizer``,
    ``base_optimizer``, ``optim``) wraps one (Lookahead): it gets an inner optimizer built on
    the parameters, not the parameters themselves."""
    return "optim" in first.lower()


@dataclass(frozen=True)
class Rule:
    """An update rule and the classes that implement it.

    A registered rule has our from-scratch class ``scratch`` and, optionally, the torch.optim
    class ``reference`` it reproduces (without one it has the single implementation
    ``"scratch"`` and parity reports "no reference"). A plug-in's rule has only ``plugin``, the
    loaded class, or a factory function ``f(params, **hparams)`` that returns an optimizer.
    Hyperparameters are the keywords of ``scratch``'s (or ``plugin``'s) constructor, with its
    defaults.
    """

    name: str
    scratch: type[torch.optim.Optimizer] | None
    reference: type[torch.optim.Optimizer] | None = None
    plugin: Any = None  # an Optimizer subclass, or a factory function returning an optimizer

    def __post_init__(self) -> None:
        if (self.scratch is None) == (self.plugin is None):
            raise ValueError(f"rule {self.name!r} needs exactly one of a scratch or plug-in class")
        if self.plugin is not None and self.reference is not None:
            raise ValueError(f"rule {self.name!r}: a plug-in has no torch reference")
        roles = (("scratch", self.scratch), ("torch", self.reference))
        if isinstance(self.plugin, type) or (self.plugin is not None and not callable(self.plugin)):
            roles += (("plug-in", self.plugin),)
        for role, cls in roles:
            if cls is not None and not _is_optimizer_class(cls):
                raise ValueError(
                    f"rule {self.name!r}: the {role} class must be a torch.optim.Optimizer "
                    f"subclass, got {cls!r}"
                )
        _signature(self.cls)  # an unusable constructor fails here, not at the first build

    @property
    def cls(self) -> type[torch.optim.Optimizer]:
        """The class whose constructor defines the hyperparameters (scratch, else plug-in)."""
        return self.scratch if self.scratch is not None else self.plugin  # type: ignore[return-value]

    @property
    def impls(self) -> tuple[str, ...]:
        """Implementations ``build`` can construct for this rule."""
        if self.plugin is not None:
            return (PLUGIN,)
        return IMPLS if self.reference is not None else ("scratch",)

    @property
    def hparam_names(self) -> tuple[str, ...]:
        """Every keyword the constructor accepts besides ``params``, in order."""
        return _signature(self.cls).names

    @property
    def passes_on(self) -> bool:
        """The constructor takes ``**kwargs`` (passed on, e.g. to a base optimizer)."""
        return _signature(self.cls).var_keyword

    @property
    def wraps(self) -> str | None:
        """The name of the constructor's first argument if it takes an optimizer to wrap."""
        return wrapped_argument(self.cls)

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The constructor's keyword defaults (for built-ins the library defaults, as torch's)."""
        return _signature(self.cls).defaults

    @property
    def required(self) -> tuple[str, ...]:
        """Keywords without a default: every method of this rule must set them."""
        return _signature(self.cls).required

    def implementation(self, impl: str) -> Any:
        """The class that ``impl`` constructs (the torch ones take ``foreach``/``fused`` flags),
        or a plug-in's factory."""
        if impl not in ALL_IMPLS:
            raise _known("impl", impl, ALL_IMPLS)
        if impl not in self.impls:
            raise ValueError(
                f"rule {self.name!r} has no {impl!r} implementation; it has: "
                f"{', '.join(self.impls)}"
            )
        if impl == "scratch":
            return self.scratch  # type: ignore[return-value]
        if impl == PLUGIN:
            return self.plugin  # type: ignore[return-value]
        return self.reference  # type: ignore[return-value]


#: Every registered update rule by name; fill it with :func:`register_rule`.
RULES: dict[str, Rule] = {}


def register_rule(
    name: str,
    scratch_cls: type[torch.optim.Optimizer],
    torch_cls: type[torch.optim.Optimizer] | None = None,
) -> Rule:
    """Add rule ``name``: ``scratch_cls`` and, if given, the torch.optim class it reproduces.

    A name can be registered once; ``"plugin"`` is reserved for plug-in methods. Without
    ``torch_cls`` the rule's methods have the single implementation ``"scratch"``.
    """
    _check_name("rule", name)
    if name == PLUGIN:
        raise ValueError(f"rule name {PLUGIN!r} is reserved for plug-in methods")
    if name in RULES:
        raise ValueError(f"rule {name!r} is already registered")
    if not _is_optimizer_class(scratch_cls):
        raise ValueError(
            f"rule {name!r}: the scratch class must be a torch.optim.Optimizer subclass, "
            f"got {scratch_cls!r}"
        )
    rule = RULES[name] = Rule(name, scratch_cls, torch_cls)
    return rule


@dataclass(frozen=True)
class Method:
    """A benchmarked method: update rule + default hyperparameters + batch regime.

    ``hparams`` holds only what differs from the rule's library defaults (``{"momentum": 0.9}``)
    and must set every constructor keyword that has no default; it is stored read-only.
    ``batch_size`` is the default mini-batch size B for ``batch="mini"`` and must be None for
    ``"full"`` and ``"single"``.

    A plug-in method has ``rule="plugin"`` and ``plugin``, the normalised import spec of its
    class (a file as an absolute path); constructing it imports the class, which is how an
    unpickled plug-in method rebuilds itself in another process.
    """

    name: str
    rule: str
    hparams: Mapping[str, Any]
    batch: str
    batch_size: int | None = None
    summary: str = ""
    equation: str = ""
    plugin: str | None = None

    def __post_init__(self) -> None:
        _check_name("method", self.name)
        if self.plugin is not None:
            if self.rule != PLUGIN:
                raise ValueError(
                    f"method {self.name!r}: a plug-in's rule is {PLUGIN!r}, got {self.rule!r}"
                )
            rule = Rule(PLUGIN, None, plugin=load_constructor(self.plugin))
        elif self.rule == PLUGIN:
            raise ValueError(f"method {self.name!r}: rule {PLUGIN!r} needs a plug-in spec")
        elif self.rule not in RULES:
            raise _known("rule", self.rule, RULES)
        else:
            rule = RULES[self.rule]
        object.__setattr__(self, "_rule", rule)  # not a field: equality is by the fields
        object.__setattr__(self, "hparams", MappingProxyType(dict(self.hparams)))
        self._check_names(self.hparams)
        missing = [key for key in rule.required if key not in self.hparams]
        if missing:
            raise ValueError(
                f"method {self.name!r} ({self._source}) needs {', '.join(missing)}: "
                "no default in its constructor"
            )
        if self.batch not in BATCH_REGIMES:
            raise _known("batch regime", self.batch, BATCH_REGIMES)
        if self.batch == "mini":
            if (
                isinstance(self.batch_size, bool)
                or not isinstance(self.batch_size, int)
                or self.batch_size < 1
            ):
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
                self.plugin,
            ),
        )

    @property
    def _source(self) -> str:
        if self.plugin is not None:
            return f"plug-in {self._rule.plugin.__qualname__}"
        return f"rule {self.rule!r}"

    @property
    def wraps(self) -> str | None:
        """A wrapper's first argument (``optimizer``): it takes an optimizer built on the
        parameters by an inner method (``None``: it takes the parameters)."""
        return self._rule.wraps

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The constructor's own defaults (the library's, for a plug-in)."""
        return self._rule.defaults

    @property
    def impls(self) -> tuple[str, ...]:
        """Implementations this method has: ``IMPLS`` for the built-ins, ``("scratch",)`` for a
        rule without a torch reference, ``("plugin",)`` for a plug-in."""
        return self._rule.impls

    @property
    def scratch(self) -> type[torch.optim.Optimizer] | None:
        """Our from-scratch optimizer class (None for a plug-in)."""
        return self._rule.scratch

    @property
    def reference(self) -> type[torch.optim.Optimizer] | None:
        """The torch.optim class the scratch class reproduces (None if the rule has none)."""
        return self._rule.reference

    @property
    def plugin_class(self) -> type[torch.optim.Optimizer] | None:
        """A plug-in's class (None for a registered rule)."""
        return self._rule.plugin

    @property
    def hparam_names(self) -> tuple[str, ...]:
        """Keywords the rule accepts (``lr``, ``momentum``, ...), in constructor order."""
        return self._rule.hparam_names

    def implementation(self, impl: str) -> type[torch.optim.Optimizer]:
        """The class ``impl`` constructs; an impl this method lacks raises a one-line error."""
        try:
            return self._rule.implementation(impl)
        except ValueError:
            if impl not in ALL_IMPLS:
                raise
            raise ValueError(
                f"method {self.name!r} has no {impl!r} implementation; it has: "
                f"{', '.join(self.impls)}"
            ) from None

    def resolve(self, **overrides: Any) -> dict[str, Any]:
        """Full hyperparameters: rule defaults <- method defaults <- ``overrides``.

        Unknown keywords raise ValueError; values are checked by the optimizer's constructor.
        """
        self._check_names(overrides)
        return {**self._rule.defaults, **self.hparams, **overrides}

    def _check_names(self, hparams: Mapping[str, Any]) -> None:
        if self._rule.passes_on:  # **kwargs: the constructor itself says what it takes
            return
        accepted = self.hparam_names
        for key in hparams:
            if key == "lr" and self.wraps:  # a wrapper's lr is its inner optimizer's
                continue
            if key not in accepted:
                raise ValueError(
                    f"method {self.name!r} ({self._source}) has no hyperparameter {key!r}; "
                    f"accepted: {', '.join(accepted) or '(none)'}"
                )


#: Every registered method by name, in registration order.
METHODS: dict[str, Method] = {}


def register(method: Method, *, exist_ok: bool = False) -> Method:
    """Add ``method`` to ``METHODS`` and return the registered method.

    A name can be registered once. With ``exist_ok`` an *equal* method (same fields, e.g. the
    same plug-in spec and options, as in a worker process) already registered is returned
    instead; a different method under the name is still an error.
    """
    if not isinstance(method, Method):
        raise ValueError(f"register takes a Method, got {method!r}")
    existing = METHODS.get(method.name)
    if existing is not None:
        if exist_ok and existing == method:
            return existing
        detail = " as a different method" if exist_ok else ""
        raise ValueError(f"method {method.name!r} is already registered{detail}")
    METHODS[method.name] = method
    return method


def register_method(
    name: str,
    *,
    rule: str,
    batch: str,
    batch_size: int | None = None,
    hparams: Mapping[str, Any] | None = None,
    summary: str = "",
    equation: str = "",
) -> Method:
    """Register ``Method(name, rule, hparams, batch, batch_size, summary, equation)``.

    ``rule`` is a name in ``RULES`` (see :func:`register_rule`); plug-ins go through
    :func:`optimizers.plugins.method_from_path` instead.
    """
    return register(Method(name, rule, hparams or {}, batch, batch_size, summary, equation))


def names() -> list[str]:
    """Registered method names, in registration order."""
    return list(METHODS)


def get(name: str) -> Method:
    """The method called ``name``; unknown names raise ValueError listing the known ones."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise _known("method", name, METHODS) from None


def plugin_methods() -> tuple[Method, ...]:
    """The registered plug-in methods, in registration order: what a worker process must
    ``register(method, exist_ok=True)`` before it can build them by name."""
    return tuple(method for method in METHODS.values() if method.plugin is not None)


def build(
    method: str | Method, params: Any, impl: str | None = None, **hparams: Any
) -> torch.optim.Optimizer:
    """Construct ``method``'s optimizer over ``params``.

    ``method`` is a registered name or a ``Method`` (registered or not, e.g. a plug-in straight
    from ``method_from_path``). ``impl`` is one of ``method.impls``: ``"scratch"`` (ours),
    ``"torch"`` (torch.optim, for-loop), ``"torch-foreach"``, ``"torch-fused"`` or, for a
    plug-in, ``"plugin"``; None means the method's first (``"scratch"``, or ``"plugin"``).
    ``hparams`` override the method's defaults; a plug-in's string values ``module:Name`` are
    imported (a base optimizer class). For a wrapper (``method.wraps``), ``params`` is the
    optimizer it wraps.
    """
    spec = method if isinstance(method, Method) else get(method)
    cls = spec.implementation(spec.impls[0] if impl is None else impl)
    kwargs = spec.resolve(**hparams)
    if spec.wraps and "lr" not in spec.hparam_names:
        kwargs.pop("lr", None)  # the inner optimizer's (given to it by the caller)
    if spec.plugin is not None:
        kwargs = {k: resolve_reference(v) for k, v in kwargs.items()}
    opt = cls(params, **kwargs, **_TORCH_IMPL_FLAGS.get(impl, {}))
    if not isinstance(opt, torch.optim.Optimizer):
        raise ValueError(
            f"method {spec.name!r}: {spec._source} returned a {type(opt).__name__}, "
            "not a torch.optim.Optimizer"
        )
    return opt
