"""Plug-in methods: benchmark any ``torch.optim.Optimizer`` subclass named by an import spec.

A spec is ``module.path:ClassName`` (importable from ``sys.path``), ``path/to/file.py:ClassName``
(any file; a relative path is relative to the working directory) or a torch.optim class such as
``torch.optim:RMSprop``. The class's hyperparameters and defaults are its constructor's keywords.

A plug-in method is a :class:`~optimizers.registry.Method` with rule ``"plugin"``, the single
implementation ``"plugin"`` and ``Method.plugin`` holding the normalised spec (files as absolute
paths), so it pickles and rebuilds itself in another process from the spec and its options.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from .builtin import BUILTIN_METHODS
from .loading import load_constructor, parse_spec, plugin_error
from .registry import PLUGIN, Method, build, get, register

__all__ = ["DEFAULT_BATCH_SIZE", "check_build", "method_from_path", "resolve_methods"]

#: A plug-in's mini-batch size when ``batch="mini"`` and none is given (as the built-ins).
DEFAULT_BATCH_SIZE = 4


def method_from_path(
    spec: str,
    *,
    batch: str = "mini",
    batch_size: int | None = None,
    hparams: Mapping[str, Any] | None = None,
    name: str | None = None,
    summary: str | None = None,
    equation: str = "",
) -> Method:
    """Load the optimizer class ``spec`` names and describe it as a method (not registered).

    ``name`` defaults to the class name lower-cased (``SignSGD`` -> ``signsgd``); a default name
    that is a built-in method's is an error (pass ``name``). ``batch`` is one of
    ``BATCH_REGIMES``; ``batch_size`` defaults to ``DEFAULT_BATCH_SIZE`` for ``"mini"`` and must
    be None otherwise. ``hparams`` override the constructor's defaults and must set every
    keyword without one (``lr`` included). ``summary`` defaults to
    ``"<Class> from <file name or module>"``.

    The class is then built once on a dummy parameter with the resolved hyperparameters, so a
    value its constructor rejects fails here. Every failure is one single-line ValueError
    ``plug-in '<spec>': <cause>``.
    """
    target = parse_spec(spec)
    cls = load_constructor(spec)
    if name is None:
        name = cls.__name__.lower()
        if name in BUILTIN_METHODS:
            raise plugin_error(
                spec, f"its default name {name!r} is a built-in method; pass name=... to rename it"
            )
    if hparams is not None and not isinstance(hparams, Mapping):
        raise plugin_error(spec, f"hparams must be a mapping, got {hparams!r}")
    if batch_size is None and batch == "mini":
        batch_size = DEFAULT_BATCH_SIZE
    if summary is None:  # from the normalised spec: the same class gets the same summary
        summary = f"{target.attr} from {os.path.basename(target.file or target.module)}"
    try:
        method = Method(
            name, PLUGIN, dict(hparams or {}), batch, batch_size, summary, equation, target.spec
        )
    except ValueError as exc:
        raise plugin_error(spec, exc) from None
    check_build(method)
    return method


def check_build(method: Method, inner: Any = None, **hparams: Any) -> None:
    """Build ``method`` once on a dummy parameter (a wrapper around ``inner``, by default a
    plain SGD), so that a value its constructor rejects fails here, in one line."""
    params = [torch.nn.Parameter(torch.zeros(1))]
    if method.wraps:
        params = inner(params) if inner is not None else torch.optim.SGD(params, lr=0.01)
    try:
        build(method, params, **hparams)
    except Exception as exc:  # whatever the researcher's constructor raises
        name = method.plugin_class.__name__ if method.plugin_class else method.name
        raise plugin_error(
            method.plugin or method.name,
            f"{name} rejected its hyperparameters: {type(exc).__name__}: {exc}",
        ) from None


def resolve_methods(entries: str | Iterable[str], **plugin_options: Any) -> tuple[Method, ...]:
    """The methods of a ``--methods`` list, registering the plug-ins among them.

    ``entries`` is a comma-separated string (``"gd,adam,path/to/signsgd.py:SignSGD"``; spaces
    around entries are dropped) or a list. An entry with a ``:`` is a plug-in spec, loaded with
    ``method_from_path(entry, **plugin_options)`` and registered with ``exist_ok=True`` (the same
    spec twice in one process is one method); any other entry is a registered name. A method
    listed twice, or a plug-in whose name another method already holds, is an error.
    """
    if isinstance(entries, str):
        entries = [entry.strip() for entry in entries.split(",")]
    methods: list[Method] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise ValueError(f"methods list has an empty or non-string entry {entry!r}")
        if ":" in entry:
            method = method_from_path(entry, **plugin_options)
            try:
                method = register(method, exist_ok=True)
            except ValueError as exc:
                raise plugin_error(entry, f"{exc}; give it another name") from None
        else:
            method = get(entry)
        if any(m.name == method.name for m in methods):
            raise ValueError(f"method {method.name!r} is listed twice")
        methods.append(method)
    return tuple(methods)
