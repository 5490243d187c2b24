"""Load an optimizer class named by an import spec: ``module.path:ClassName`` or
``path/to/file.py:ClassName`` (Python's entry-point convention, plus files outside any package).

Every failure is one single-line ``ValueError`` starting ``plug-in '<spec>': `` and naming the
cause, so the CLI can print it as ``error: ...`` without a traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import NamedTuple

import torch

__all__ = [
    "PluginTarget",
    "load_constructor",
    "load_object",
    "load_optimizer_class",
    "parse_spec",
    "plugin_error",
    "resolve_reference",
]


class PluginTarget(NamedTuple):
    """A parsed spec: a module name or an absolute ``.py`` path, and the (dotted) class name."""

    module: str
    file: str | None
    attr: str

    @property
    def spec(self) -> str:
        """The normalised spec: a file as its absolute path, so any working directory reads it."""
        return f"{self.file or self.module}:{self.attr}"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def plugin_error(spec: str, cause: object) -> ValueError:
    """The one-line error of every plug-in failure: ``plug-in '<spec>': <cause>``."""
    return ValueError(_one_line(f"plug-in {spec!r}: {cause}"))


def parse_spec(spec: str) -> PluginTarget:
    """Split and check a spec (no import yet); a file path is made absolute against the cwd.

    A spec whose part before the last ``:`` ends in ``.py`` or contains a path separator is a
    file; otherwise it must be a dotted module name.
    """
    if not isinstance(spec, str):
        raise ValueError(f"a plug-in spec must be a string, got {spec!r}")
    if ":" not in spec:
        raise plugin_error(
            spec, "no ':'; expected 'module.path:ClassName' or 'path/to/file.py:ClassName'"
        )
    target, _, attr = spec.rpartition(":")
    if not target:
        raise plugin_error(spec, "empty module or file before ':'")
    if not attr:
        raise plugin_error(spec, "empty class name after ':'")
    if not all(part.isidentifier() for part in attr.split(".")):
        raise plugin_error(spec, f"class name {attr!r} is not a Python identifier")
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    if target.endswith(".py") or any(sep in target for sep in separators):
        if not target.endswith(".py"):
            raise plugin_error(spec, f"{target!r} is not a .py file")
        path = os.path.abspath(target)
        if not os.path.exists(path):
            raise plugin_error(spec, f"no such file {path!r}")
        if not os.path.isfile(path):
            raise plugin_error(spec, f"{path!r} is not a file")
        return PluginTarget(_module_name_for(path), path, attr)
    if not all(part.isidentifier() for part in target.split(".")):
        raise plugin_error(spec, f"{target!r} is neither a module name nor a path to a .py file")
    return PluginTarget(target, None, attr)


def _module_name_for(path: str) -> str:
    """A module name unique to this absolute path, so two ``signsgd.py`` files never collide."""
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    return f"_optbench_plugin_{stem}_{digest}"


def _import_file(spec: str, target: PluginTarget) -> ModuleType:
    """Execute the file once per process under its unique name (later loads reuse the module)."""
    if target.module in sys.modules:
        return sys.modules[target.module]
    module_spec = importlib.util.spec_from_file_location(target.module, target.file)
    if module_spec is None or module_spec.loader is None:
        raise plugin_error(spec, f"cannot load {target.file!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    # Registered before running, as the import system does (dataclasses, pickling and
    # self-imports look the module up there); removed again if the file fails.
    sys.modules[target.module] = module
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[target.module]
        raise _import_error(spec, target.file, exc) from None
    return module


def _import_module(spec: str, target: PluginTarget) -> ModuleType:
    try:
        return importlib.import_module(target.module)
    except ImportError as exc:
        raise plugin_error(spec, f"cannot import {target.module!r}: {exc}") from None
    except (Exception, SystemExit) as exc:
        raise _import_error(spec, repr(target.module), exc) from None


def _import_error(spec: str, what: str, exc: BaseException) -> ValueError:
    """A failed import as one line: where a syntax error is, or what the module raised."""
    if isinstance(exc, SyntaxError):
        return plugin_error(spec, f"syntax error in {exc.filename} line {exc.lineno}: {exc.msg}")
    return plugin_error(spec, f"importing {what} raised {type(exc).__name__}: {exc}")


def load_object(spec: str) -> object:
    """Import what ``spec`` names (a class, a function, any attribute) and return it.

    Files are executed under a module name unique to their absolute path, once per process.
    """
    target = parse_spec(spec)
    module = _import_file(spec, target) if target.file else _import_module(spec, target)
    obj: object = module
    for part in target.attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = target.file or f"module {target.module!r}"
            raise plugin_error(spec, f"{where} has no attribute {target.attr!r}") from None
    return obj


def load_optimizer_class(spec: str) -> type[torch.optim.Optimizer]:
    """Import what ``spec`` names and return it if it is a ``torch.optim.Optimizer`` subclass."""
    obj = load_object(spec)
    attr = parse_spec(spec).attr
    if not isinstance(obj, type):
        raise plugin_error(spec, f"{attr!r} is not a class (it is a {type(obj).__name__})")
    if not issubclass(obj, torch.optim.Optimizer):
        raise plugin_error(spec, f"{attr!r} is not a torch.optim.Optimizer subclass")
    return obj


def load_constructor(spec: str) -> object:
    """An optimizer class, or a factory function ``f(params, **hparams)`` returning an
    optimizer (checked when it is called), that ``spec`` names."""
    obj = load_object(spec)
    if isinstance(obj, type) or not callable(obj):
        return load_optimizer_class(spec)  # a class must be an optimizer; explains what it is
    return obj


def resolve_reference(value: object) -> object:
    """A hyperparameter value ``module:Name`` (or ``path/to/file.py:Name``) imported as the
    object it names, e.g. SAM's ``base_optimizer="torch.optim:SGD"``; other values as given."""
    if not isinstance(value, str) or ":" not in value:
        return value
    try:
        parse_spec(value)
    except ValueError:
        return value
    return load_object(value)
