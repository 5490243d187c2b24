"""Reading suites: a TOML file into a `Suite`, and comma lists from the command line.

Any problem with a file is a one-line ConfigError naming the file and the key.

`methods` is a list of names (or `"all"`, or a comma string), plug-in specs included
(`"signsgd.py:SignSGD"`), or a table of tables, one per method in order: a plug-in's table has
`class = "path/to/file.py:Class"` (relative to the suite file's folder), optionally `batch`,
`batch_size` and hyperparameters; a built-in's table holds its hyperparameters for the whole
suite (like `[hparams] adam = {...}`). A problem may set its own `task` (for CSV files:
`"classification"`), `seeds` (e.g. `[0]` for a deterministic problem) and `model` (a name or
a factory `path/to/file.py:make_model`, relative to the suite file's folder).
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
from bench.run import methods as method_lists
from bench.run.config import (
    DEFAULT_EPOCHS,
    DEFAULT_SEEDS,
    Problem,
    Suite,
    no_duplicates,
    task_model,
)
from bench.run.device import resolve_devices
from bench.run.models import is_plugin
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
METHODS = Constraint(
    "a list of names, a comma-separated string or a table of [methods.NAME] tables",
    lambda v: NAMES.test(v) or isinstance(v, Mapping),
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
    "methods": METHODS,
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
    "task": STRING,
    "seeds": SEEDS,  # e.g. [0] for a deterministic problem (the 2-D functions)
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


def parse_methods(
    value: Any,
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    base: Path | None = None,
) -> tuple[str, ...]:
    """Method names of a list (plug-ins loaded and registered; see `bench.run.methods`)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
        if any(not v for v in value):
            raise ConfigError("methods has an empty entry")
    names = method_lists.resolve(_names(value, "methods"), definitions, base)
    no_duplicates(names, "methods")
    return names


def _methods_table(table: Mapping[str, Any], base: Path | None) -> tuple[tuple[str, ...], dict]:
    """`[methods.NAME]` tables -> (names in order, per-method hyperparameters)."""
    names, per_method = [], {}
    for name, spec in table.items():
        where = f"[methods.{name}]"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a table")
        spec = dict(spec)
        if "class" in spec:
            if not isinstance(spec["class"], str):
                raise ConfigError(f"{where}: class must be a string 'path/to/file.py:Class'")
            names.append(method_lists.load_plugin(spec["class"], name, True, spec, base))
        else:
            bad = sorted(set(spec) & {"batch"})
            if bad:
                raise ConfigError(f"{where}: a built-in method's batch regime is fixed")
            names += method_lists.resolve([name])
        hp = {k: v for k, v in spec.items() if k not in ("class", "batch")}
        if hp:
            per_method[name] = hp
    if not names:
        raise ConfigError("[methods] lists no method")
    return tuple(names), per_method


def parse_impls(value: Any) -> tuple[str, ...]:
    names = _names(value, "impl")
    no_duplicates(names, "impl")
    for n in names:
        if n not in optimizers.ALL_IMPLS:
            raise ConfigError(f"unknown impl {n!r}; known: {', '.join(optimizers.ALL_IMPLS)}")
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
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        raise ConfigError(f"malformed TOML in {path}: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        return suite_from_dict(data, Path(path).resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def suite_from_dict(data: Mapping[str, Any], base: Path | None = None) -> Suite:
    """A suite from its TOML table; `base` is the folder relative paths are read from."""
    check_table(data, SUITE_CONSTRAINTS, "")
    raw_methods = data.get("methods", "all")
    method_tables: dict = {}
    if isinstance(raw_methods, Mapping):
        suite_methods, method_tables = _methods_table(raw_methods, base)
    else:
        suite_methods = parse_methods(raw_methods, base=base)
    generic, per_method = _split_hparams(data.get("hparams", {}), "[hparams]")
    for name, table in method_tables.items():
        _split_hparams({name: table}, f"[methods.{name}]")
        per_method[name] = {**per_method.get(name, {}), **table}
    default_model = resolve_model(data.get("model"), base)
    problems = []
    raw_problems = data.get("problems", [])
    for i, raw in enumerate(raw_problems):
        where = f"[[problems]] #{i + 1}"
        if "dataset" not in raw:
            raise ConfigError(f"{where}: needs a dataset")
        check_table(raw, PROBLEM_CONSTRAINTS, where)
        p_generic, p_method = _split_hparams(raw.get("hparams", {}), f"{where} hparams")
        if "task" in raw and not isinstance(raw["task"], str):
            raise ConfigError(f"{where}: task must be a string")
        problem = Problem(
            dataset=str(raw["dataset"]),
            name=str(raw["name"]) if "name" in raw else None,
            targets=_names(raw["targets"], "targets") if "targets" in raw else None,
            features=_names(raw["features"], "features") if "features" in raw else None,
            methods=parse_methods(raw["methods"], base=base) if "methods" in raw else None,
            epochs=raw.get("epochs"),
            batch_size=raw.get("batch_size"),
            holdout=raw.get("holdout"),
            standardize=raw.get("standardize"),
            hparams=p_generic,
            method_hparams=p_method,
            task=raw.get("task"),
            seeds=_seeds(raw["seeds"], f"{where} seeds") if "seeds" in raw else None,
        )
        own = resolve_model(raw.get("model"), base)
        if problem.task_def.model_choice:
            problems.append(task_model(problem, own or default_model or "linear"))
        else:
            problems.append(task_model(problem, own))
    seeds = _seeds(data.get("seeds", list(DEFAULT_SEEDS)), "seeds")
    return Suite(
        name=str(data.get("name", "custom")),
        problems=tuple(problems),
        methods=suite_methods,
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


def _seeds(seeds: Any, where: str) -> tuple[int, ...]:
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise ConfigError(f"{where} must be a non-empty list of integers >= 0")
    no_duplicates(seeds, where)
    return tuple(seeds)


def resolve_model(value: Any, base: Path | None) -> str | None:
    """A model name, or a factory spec with a relative file made absolute against `base` (so
    the spec names the same file from any working directory, e.g. in a worker process)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"model must be a string, got {value!r}")
    target, _, attr = value.rpartition(":")
    if base is not None and is_plugin(value) and (target.endswith(".py") or "/" in target):
        return f"{(base / target).resolve()}:{attr}"
    return value


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
