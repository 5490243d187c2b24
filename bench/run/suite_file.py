"""Reading suites: a TOML file into a `Suite`, and comma lists from the command line.

Any problem with a file is a one-line ConfigError naming the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

import optimizers
from bench.errors import ConfigError
from bench.run.config import DEFAULT_EPOCHS, DEFAULT_SEEDS, Problem, Suite, no_duplicates
from bench.run.device import resolve_devices
from bench.run.spec import get_method

EXECUTION_KEYS = ("executor", "workers", "scheduler", "threads")
# Bounds on counts, named in every message that enforces them (a typo such as --epochs 1e9
# would otherwise run for days or exhaust memory before saying anything).
MAX_EPOCHS = 1_000_000
MAX_SEEDS = 1_000  # seeds in one suite
MAX_SEED = 2**32 - 1
MAX_RUNS = 10_000  # runs of one command, unless --max-runs raises it
MAX_PARITY_STEPS = 100_000


@dataclass(frozen=True)
class Constraint:
    """What a value must be: `test(value)` and the words for the message `KEY must be WHAT`."""

    what: str
    test: Callable[[Any], bool]

    def check(self, key: str, value: Any, where: str) -> None:
        if not self.test(value):
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}{key} must be {self.what}, got {value!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int_in(lo: int, hi: int | None) -> Constraint:
    return Constraint(
        f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}",
        lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi),
    )


STRING = Constraint("a string", lambda v: isinstance(v, str))
BOOL = Constraint("true or false (a TOML boolean, not a string)", lambda v: isinstance(v, bool))
TABLE = Constraint("a table", lambda v: isinstance(v, Mapping))
NAMES = Constraint(
    "a list of names or a comma-separated string",
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
)
FRACTION = Constraint("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1)
EPOCHS = _int_in(1, MAX_EPOCHS)
BATCH = _int_in(1, None)
SEEDS = Constraint(
    f"a list of at most {MAX_SEEDS} distinct integers in [0, {MAX_SEED}]",
    lambda v: (
        isinstance(v, list)
        and len(v) <= MAX_SEEDS
        and all(_is_int(s) and 0 <= s <= MAX_SEED for s in v)
    ),
)
PROBLEMS = Constraint(
    "an array of tables ([[problems]])",
    lambda v: isinstance(v, list) and all(isinstance(p, Mapping) for p in v),
)

# One table of key -> constraint per record (scikit-learn's `_parameter_constraints`).
SUITE_CONSTRAINTS: dict[str, Constraint] = {
    "name": STRING,
    "methods": NAMES,
    "impl": NAMES,
    "devices": NAMES,
    "dtype": STRING,
    "seeds": SEEDS,
    "epochs": EPOCHS,
    "batch_size": BATCH,
    "holdout": FRACTION,
    "standardize": BOOL,
    "model": STRING,
    "hparams": TABLE,
    "problems": PROBLEMS,
    "sweep": TABLE,
    # How to run, not what (bench.run.executors.build checks the combination).
    "executor": STRING,
    "workers": _int_in(1, None),
    "scheduler": STRING,
    "threads": _int_in(1, None),
}
PROBLEM_CONSTRAINTS: dict[str, Constraint] = {
    "dataset": STRING,
    "name": STRING,
    "model": STRING,
    "targets": NAMES,
    "features": NAMES,
    "methods": NAMES,
    "epochs": EPOCHS,
    "batch_size": BATCH,
    "holdout": FRACTION,
    "standardize": BOOL,
    "hparams": TABLE,
}


def check_table(
    table: Mapping[str, Any], constraints: Mapping[str, Constraint], where: str
) -> None:
    """Unknown keys, then each key's type and range; the first problem is a ConfigError."""
    _check_keys(table, set(constraints), where or "suite")
    for key, value in table.items():
        constraints[key].check(key, value, where)


def _hparam_constraint(method: optimizers.Method, key: str) -> Constraint | None:
    """A hyperparameter takes the kind of its default: a boolean, a number or a tuple of
    numbers (betas); None when the default says nothing (the optimizer then checks it)."""
    default = method.resolve().get(key)
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int | float):
        return Constraint("a finite number", _is_number)
    if isinstance(default, tuple):
        return Constraint(
            f"a list of {len(default)} numbers",
            lambda v: (
                isinstance(v, list | tuple)
                and len(v) == len(default)
                and all(_is_number(x) for x in v)
            ),
        )
    return None


def _check_hparam(key: str, value: Any, where: str, methods: Sequence[str]) -> None:
    """A key given for all methods: checked against the first method that takes it."""
    for name in methods:
        method = get_method(name)
        if key in method.hparam_names:
            rule = _hparam_constraint(method, key)
            if rule is not None:
                rule.check(key, value, where)
            return


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
            for k, v in value.items():
                if k == "batch_size":
                    BATCH.check(f"{key}.batch_size", v, where)
                elif (rule := _hparam_constraint(method, k)) is not None:
                    rule.check(f"{key}.{k}", v, where)
            per_method[key] = dict(value)
        else:
            generic[key] = value
    known = {n for m in optimizers.names() for n in get_method(m).hparam_names}
    bad = sorted(set(generic) - known)
    if bad:
        raise ConfigError(f"{where}: unknown hyperparameter {', '.join(bad)}")
    for key, value in generic.items():
        _check_hparam(key, value, where, optimizers.names())
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
    check_table(data, SUITE_CONSTRAINTS, "")
    generic, per_method = _split_hparams(data.get("hparams", {}), "[hparams]")
    default_model = data.get("model", "linear")
    problems = []
    raw_problems = data.get("problems", [])
    for i, raw in enumerate(raw_problems):
        where = f"[[problems]] #{i + 1}"
        if "dataset" not in raw:
            raise ConfigError(f"{where}: needs a dataset")
        check_table(raw, PROBLEM_CONSTRAINTS, where)
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
        standardize=data.get("standardize", False),
        hparams=generic,
        method_hparams=per_method,
        sweep=_table(data.get("sweep", {}), "[sweep]"),
        execution=_execution(data),
    )


def _execution(data: Mapping[str, Any]) -> dict[str, Any]:
    """executor = "dask", workers = 2, scheduler = "tcp://...", threads = 1: types are checked
    by SUITE_CONSTRAINTS, the combination by `bench.run.executors.build`."""
    return {k: data[k] for k in EXECUTION_KEYS if k in data}


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


def check_seeds(seeds: Sequence[int], what: str) -> None:
    """At most MAX_SEEDS seeds, each in [0, MAX_SEED] (the TOML's SEEDS constraint)."""
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"{what}: {len(seeds)} seeds, more than the limit of {MAX_SEEDS}")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise ConfigError(f"{what}: seeds must be in [0, {MAX_SEED}], got {s}")
