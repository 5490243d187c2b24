"""Named datasets: a plain dict filled by `@register`, and spec strings like `synthetic:n=500`.

A spec is `name[:option=value]...` for a registered dataset, or a path to a CSV file. Option
values are parsed to the type of the loader's default for that option, so loaders declare
their options once, as keyword-only parameters with defaults.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datasets.core import TASKS, Dataset, DatasetError

Loader = Callable[..., Dataset]

REGISTRY: dict[str, Loader] = {}

# The task each registered loader declares, so listings can show it without loading anything;
# `load` checks every loaded dataset against it.
TASK_OF: dict[str, str] = {}

_OPTION_TYPES = (bool, int, float, str)


def register(name: str, *, task: str = "regression") -> Callable[[Loader], Loader]:
    """Register `loader` under `name`; its keyword-only parameters become the spec options.

    Every parameter must be keyword-only with a default of type bool, int, float or str,
    because spec strings carry no types of their own. `task` is the `Dataset.task` the loader
    returns (one of `datasets.core.TASKS`).
    """
    if task not in TASKS:
        raise ValueError(f"dataset {name!r}: task must be one of {', '.join(TASKS)}, got {task!r}")

    def decorate(loader: Loader) -> Loader:
        if name in REGISTRY:
            raise ValueError(f"dataset {name!r} is already registered")
        if not name or ":" in name or name.endswith(".csv"):
            raise ValueError(f"dataset name {name!r} would be ambiguous in a spec string")
        for p in inspect.signature(loader).parameters.values():
            if p.kind is not p.KEYWORD_ONLY or not isinstance(p.default, _OPTION_TYPES):
                raise TypeError(
                    f"loader {name!r}: parameter {p.name!r} must be keyword-only with a "
                    "bool/int/float/str default"
                )
        REGISTRY[name] = loader
        TASK_OF[name] = task
        return loader

    return decorate


def names() -> list[str]:
    """Registered dataset names, in registration order."""
    return list(REGISTRY)


def defaults(name: str) -> dict[str, Any]:
    """The options `name` accepts, with their default values, in declaration order."""
    params = inspect.signature(_loader(name)).parameters.values()
    return {p.name: p.default for p in params}


def task_of(name: str) -> str:
    """The task ("regression" or "classification") of a registered dataset, without loading it."""
    _loader(name)
    return TASK_OF.get(name, "regression")


def describe(name: str) -> str:
    """One line about a registered dataset: its loader's summary, its task and its options.

    The name itself is left out, so a listing can put it in a column of its own.
    """
    loader = _loader(name)
    summary = (inspect.getdoc(loader) or "").split("\n", 1)[0]
    options = ", ".join(f"{k}={_format_value(v)}" for k, v in defaults(name).items())
    return f"{summary} Task: {task_of(name)}." + (f" Options: {options}." if options else "")


def canonical_name(name: str, options: dict[str, Any]) -> str:
    """The spec string naming `name` with `options`, listing only non-default values.

    Used as the `Dataset.name`, so results tables tell parameterised datasets apart, and
    `load(canonical_name(...))` rebuilds the same data.
    """
    parts = [name]
    for key, default in defaults(name).items():
        if key in options and options[key] != default:
            parts.append(f"{key}={_format_value(options[key])}")
    return ":".join(parts)


def load(
    spec: str,
    *,
    targets: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    task: str | None = None,
) -> Dataset:
    """Load a dataset from a spec string.

    `spec` is a registered name with optional `:option=value` parts
    (`"synthetic:n=50000:d=100:noise=0.5"`), or a path to a CSV file (ending in `.csv`, or any
    existing file), which goes to `load_csv` with `targets` (required), `features` and `task`
    (default "regression"). A registered dataset has a fixed task: `task` may only repeat it.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetError(f"dataset spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    if task is not None and task not in TASKS:
        raise DatasetError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    # Registered names win over files, so a stray file called "crops5" cannot shadow the table.
    if name in REGISTRY:
        if targets is not None or features is not None:
            raise DatasetError(
                f"targets/features apply only to CSV files; dataset {name!r} has fixed columns"
            )
        declared = task_of(name)
        if task is not None and task != declared:
            raise DatasetError(
                f"dataset {name!r} is a {declared} dataset; task={task!r} applies only to CSV files"
            )
        options = _parse_options(name, rest.split(":") if rest else [])
        ds = REGISTRY[name](**options)
        if ds.task != declared:  # a loader that contradicts its registration is a bug
            raise TypeError(
                f"loader {name!r} registered as {declared} returned a {ds.task} dataset"
            )
        return ds
    path = Path(spec)
    if spec.lower().endswith(".csv") or path.is_file():
        from datasets.csvfile import load_csv

        return load_csv(path, targets=targets, features=features, task=task or "regression")
    raise DatasetError(
        f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}; or a path to a .csv file"
    )


def _loader(name: str) -> Loader:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None


def _parse_options(name: str, parts: list[str]) -> dict[str, Any]:
    accepted = defaults(name)
    accepted_text = ", ".join(accepted) or "none"
    options: dict[str, Any] = {}
    for part in parts:
        key, eq, text = (s.strip() for s in part.partition("="))
        if not eq or not key:
            raise DatasetError(
                f"bad option {part!r} for dataset {name!r}: expected key=value "
                f"(accepted: {accepted_text})"
            )
        if key not in accepted:
            raise DatasetError(
                f"unknown option {key!r} for dataset {name!r}; accepted: {accepted_text}"
            )
        if key in options:
            raise DatasetError(f"option {key!r} given twice for dataset {name!r}")
        options[key] = _parse_value(name, key, text, type(accepted[key]))
    return options


def _parse_value(name: str, key: str, text: str, kind: type) -> Any:
    def bad(expected: str) -> DatasetError:
        return DatasetError(
            f"bad value {text!r} for option {key!r} of dataset {name!r}: expected {expected}"
        )

    if kind is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise bad("true or false")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            pass
        # Accept "1e6" for a count: people write large n that way.
        try:
            value = float(text)
        except ValueError:
            raise bad("an integer") from None
        if not value.is_integer():
            raise bad("an integer")
        return int(value)
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise bad("a number") from None
        if not math.isfinite(value):
            raise bad("a finite number")
        return value
    if not text:
        raise bad("a non-empty string")
    return text


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # repr is the shortest string that round-trips; "100" reads better than "100.0".
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return str(value)
