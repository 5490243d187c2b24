"""Reading suites: a TOML file into a `Suite`, and comma lists from the command line.

Any problem with a file is a one-line ConfigError naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomllib

import optimizers
from bench.errors import ConfigError
from bench.run.config import DEFAULT_EPOCHS, DEFAULT_SEEDS, Problem, Suite, no_duplicates
from bench.run.device import resolve_devices
from bench.run.spec import get_method

EXECUTION_KEYS = ("executor", "workers", "scheduler", "threads")
_SUITE_KEYS = {
    "name",
    "methods",
    "impl",
    "devices",
    "dtype",
    "seeds",
    "epochs",
    "batch_size",
    "holdout",
    "standardize",
    "model",
    "hparams",
    "problems",
    "sweep",
    *EXECUTION_KEYS,
}
_PROBLEM_KEYS = {
    "dataset",
    "name",
    "model",
    "targets",
    "features",
    "methods",
    "epochs",
    "batch_size",
    "holdout",
    "standardize",
    "hparams",
}


def _split_hparams(table: Mapping[str, Any], where: str) -> tuple[dict, dict]:
    """[..hparams] holds generic keys and per-method sub-tables: {lr = 1e-5, adam = {lr = 0.1}}."""
    generic, per_method = {}, {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            method = get_method(key)
            allowed = {*method.hparam_names, "batch_size"}
            bad = sorted(set(value) - allowed)
            if bad:
                raise ConfigError(
                    f"{where}: method {key!r} does not take {', '.join(bad)}; "
                    f"it takes {', '.join(sorted(allowed))}"
                )
            per_method[key] = dict(value)
        else:
            generic[key] = value
    known = {n for m in optimizers.names() for n in get_method(m).hparam_names}
    bad = sorted(set(generic) - known)
    if bad:
        raise ConfigError(f"{where}: unknown hyperparameter {', '.join(bad)}")
    return generic, per_method


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(set(table) - allowed)
    if bad:
        raise ConfigError(
            f"{where}: unknown key {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}"
        )


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of names or a comma-separated string")
    return tuple(value)


def parse_methods(value: Any) -> tuple[str, ...]:
    names = _names(value, "methods")
    if not names:
        raise ConfigError("methods is empty; name methods or use 'all'")
    if names == ("all",):
        return tuple(optimizers.names())
    no_duplicates(names, "methods")
    for n in names:
        get_method(n)
    return names


def parse_impls(value: Any) -> tuple[str, ...]:
    names = _names(value, "impl")
    no_duplicates(names, "impl")
    for n in names:
        if n not in optimizers.IMPLS:
            raise ConfigError(f"unknown impl {n!r}; known: {', '.join(optimizers.IMPLS)}")
    return names


def suite_from_toml(path: Path) -> Suite:
    """Read a suite file; any problem with it is a one-line ConfigError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        return suite_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def suite_from_dict(data: Mapping[str, Any]) -> Suite:
    _check_keys(data, _SUITE_KEYS, "suite")
    generic, per_method = _split_hparams(data.get("hparams", {}), "[hparams]")
    default_model = data.get("model", "linear")
    problems = []
    raw_problems = data.get("problems", [])
    if not isinstance(raw_problems, list):
        raise ConfigError("problems must be an array of tables ([[problems]])")
    for i, raw in enumerate(raw_problems):
        where = f"[[problems]] #{i + 1}"
        if not isinstance(raw, Mapping) or "dataset" not in raw:
            raise ConfigError(f"{where}: needs a dataset")
        _check_keys(raw, _PROBLEM_KEYS, where)
        p_generic, p_method = _split_hparams(raw.get("hparams", {}), f"{where} hparams")
        problems.append(
            Problem(
                dataset=str(raw["dataset"]),
                model=str(raw.get("model", default_model)),
                name=str(raw["name"]) if "name" in raw else None,
                targets=_names(raw["targets"], "targets") if "targets" in raw else None,
                features=_names(raw["features"], "features") if "features" in raw else None,
                methods=parse_methods(raw["methods"]) if "methods" in raw else None,
                epochs=raw.get("epochs"),
                batch_size=raw.get("batch_size"),
                holdout=raw.get("holdout"),
                standardize=raw.get("standardize"),
                hparams=p_generic,
                method_hparams=p_method,
            )
        )
    seeds = data.get("seeds", list(DEFAULT_SEEDS))
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise ConfigError("seeds must be a list of integers")
    no_duplicates(seeds, "seeds")
    return Suite(
        name=str(data.get("name", "custom")),
        problems=tuple(problems),
        methods=parse_methods(data.get("methods", "all")),
        impls=parse_impls(data.get("impl", ["scratch", "torch"])),
        devices=resolve_devices(",".join(_names(data.get("devices", "auto"), "devices"))),
        dtype=str(data.get("dtype", "float32")),
        seeds=tuple(seeds),
        epochs=data.get("epochs", DEFAULT_EPOCHS),
        batch_size=data.get("batch_size"),
        holdout=data.get("holdout"),
        standardize=bool(data.get("standardize", False)),
        hparams=generic,
        method_hparams=per_method,
        sweep=_table(data.get("sweep", {}), "[sweep]"),
        execution=_execution(data),
    )


def _execution(data: Mapping[str, Any]) -> dict[str, Any]:
    """executor = "dask", workers = 2, scheduler = "tcp://...", threads = 1 (checked further by
    the executor itself)."""
    out = {k: data[k] for k in EXECUTION_KEYS if k in data}
    for key in ("executor", "scheduler"):
        if key in out and not isinstance(out[key], str):
            raise ConfigError(f"{key} must be a string, got {out[key]!r}")
    for key in ("workers", "threads"):
        value = out.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
    return out


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    return dict(value)


def parse_csv_list(text: str, what: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in text.split(",") if p.strip())
    if not items:
        raise ConfigError(f"{what} is empty")
    return items


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in parse_csv_list(text, what))
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None
