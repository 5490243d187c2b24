"""What to run: a frozen `RunSpec` per run, and the `Suite` (TOML + CLI overrides) that expands
into them.

Hyperparameters are layered, later wins: method defaults < suite < problem < the suite's and the
problem's per-method tables < command-line flags. A key given for all methods at once applies
where it makes sense: `lr` everywhere; `momentum`/`dampening` only to methods that have momentum;
`weight_decay` only to methods that have weight decay (so `--momentum 0.5` tunes heavy ball and
Nesterov without turning `gd` into heavy ball); other keys where the update rule takes them.
A per-method table sets any key its rule accepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import tomllib
import torch

import optimizers
from bench.device import KNOWN_DEVICES, resolve_devices
from bench.errors import ConfigError
from bench.models import ModelSpec
from bench.seeding import derive_seed

DTYPES = ("float32", "float64")
DEFAULT_SUITE = Path(__file__).with_name("suites") / "default.toml"
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_EPOCHS = 100

Hparams = tuple[tuple[str, Any], ...]


def _freeze(hparams: Mapping[str, Any]) -> Hparams:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in hparams.items()))


def get_method(name: str) -> optimizers.Method:
    """The registered method, or a ConfigError listing the known ones."""
    try:
        return optimizers.get(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _finite_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run; a run is a pure function of this."""

    dataset: str
    method: str
    impl: str = "scratch"
    model: str = "linear"
    hparams: Hparams = ()
    batch_size: int = 1
    epochs: int = DEFAULT_EPOCHS
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0
    holdout: float = 0.0
    standardize: bool = False
    targets: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        method = get_method(self.method)
        if self.impl not in optimizers.IMPLS:
            raise ConfigError(f"unknown impl {self.impl!r}; known: {', '.join(optimizers.IMPLS)}")
        ModelSpec.parse(self.model)
        hp = dict(self.hparams)
        unknown = sorted(set(hp) - set(method.hparam_names))
        if unknown:
            raise ConfigError(
                f"method {self.method!r} does not take {', '.join(unknown)}; "
                f"it takes {', '.join(method.hparam_names)}"
            )
        if "lr" not in hp:
            raise ConfigError("a run spec needs an explicit lr")
        _finite_positive("lr", hp["lr"])
        try:  # the optimizer's own checks (negative momentum, nesterov without momentum, ...)
            optimizers.build(self.method, [torch.zeros(1, requires_grad=True)], **hp)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{self.method}: {exc}") from None
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise ConfigError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
        if self.device not in KNOWN_DEVICES:
            raise ConfigError(f"unknown device {self.device!r}; known: {', '.join(KNOWN_DEVICES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; known: {', '.join(DTYPES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout must be a fraction in [0, 1), got {self.holdout!r}")

    @property
    def lr(self) -> float:
        return float(dict(self.hparams)["lr"])

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.hparams}

    @property
    def hparams_json(self) -> str:
        return json.dumps(self.hparams_dict, sort_keys=True)

    @cached_property
    def run_id(self) -> str:
        ident = derive_seed(*(getattr(self, f.name) for f in fields(self)))
        return f"{self.method}-{self.impl}-{self.device}-s{self.seed}-{ident & 0xFFFFFFFF:08x}"

    @property
    def problem_key(self) -> tuple[Any, ...]:
        """What fixes the data a run sees (and so the init and the optimum)."""
        return (
            self.dataset,
            self.targets,
            self.features,
            self.holdout,
            self.seed,
            self.standardize,
        )


# ----------------------------------------------------------------------------------------------
# Suites


@dataclass(frozen=True)
class Problem:
    """One dataset x model of a suite, with its own settings (None = inherit from the suite)."""

    dataset: str
    model: str = "linear"
    targets: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    holdout: float | None = None
    standardize: bool | None = None
    hparams: Mapping[str, Any] = field(default_factory=dict)
    method_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str = "custom"
    problems: tuple[Problem, ...] = ()
    methods: tuple[str, ...] = ()
    impls: tuple[str, ...] = ("scratch", "torch")
    devices: tuple[str, ...] = ("cpu",)
    dtype: str = "float32"
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    epochs: int = DEFAULT_EPOCHS
    batch_size: int | None = None
    holdout: float | None = None
    standardize: bool = False
    hparams: Mapping[str, Any] = field(default_factory=dict)
    method_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sweep: Mapping[str, Any] = field(default_factory=dict)

    def expand(self) -> list[RunSpec]:
        """Every run of the suite, validated; problems in order, then method, impl, device, seed."""
        specs = []
        for problem in self.problems:
            for method_name in problem.methods or self.methods:
                for impl in self.impls:
                    for device in self.devices:
                        for seed in self.seeds:
                            specs.append(self.spec_for(problem, method_name, impl, device, seed))
        if not specs:
            raise ConfigError("the suite selects no runs (no problems or no methods)")
        return specs

    def spec_for(
        self, problem: Problem, method_name: str, impl: str, device: str, seed: int
    ) -> RunSpec:
        method = get_method(method_name)
        hp: dict[str, Any] = dict(method.hparams)
        hp.setdefault("lr", method.resolve()["lr"])
        for layer in (self.hparams, problem.hparams):
            hp.update({k: v for k, v in layer.items() if _applies(k, method)})
        batch_size = problem.batch_size or self.batch_size or method.batch_size
        for table in (self.method_hparams, problem.method_hparams):
            own = dict(table.get(method_name, {}))
            batch_size = own.pop("batch_size", batch_size)
            hp.update(own)
        n_train = _n_train(self, problem, seed)
        if method.batch == "full":
            batch_size = n_train
        elif method.batch == "single":
            batch_size = 1
        if isinstance(batch_size, int) and batch_size > n_train:
            raise ConfigError(
                f"batch size {batch_size} for {method_name!r} is larger than the training set "
                f"of {problem.dataset!r} ({n_train} rows)"
            )
        return RunSpec(
            dataset=problem.dataset,
            method=method_name,
            impl=impl,
            model=problem.model,
            hparams=_freeze(hp),
            batch_size=batch_size,
            epochs=problem.epochs or self.epochs,
            device=device,
            dtype=self.dtype,
            seed=seed,
            holdout=_holdout(self, problem),
            standardize=self.standardize if problem.standardize is None else problem.standardize,
            targets=problem.targets,
            features=problem.features,
        )


def _applies(key: str, method: optimizers.Method) -> bool:
    """Whether a key given for all methods at once applies to this method (module docstring)."""
    if key == "lr":
        return True
    if key in ("momentum", "dampening"):
        return "momentum" in method.hparams
    if key in ("weight_decay", "nesterov"):
        return key in method.hparams
    return key in method.hparam_names


def _load_dataset(problem: Problem):  # -> datasets.Dataset
    from bench.problem import load_dataset

    return load_dataset(problem.dataset, problem.targets, problem.features)


def _holdout(suite: Suite, problem: Problem) -> float:
    for value in (problem.holdout, suite.holdout):
        if value is not None:
            return float(value)
    return float(_load_dataset(problem).default_holdout)


def _n_train(suite: Suite, problem: Problem, seed: int) -> int:
    from bench.problem import split_sizes

    return split_sizes(
        problem.dataset, problem.targets, problem.features, _holdout(suite, problem)
    )[0]


# ----------------------------------------------------------------------------------------------
# TOML

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
}
_PROBLEM_KEYS = {
    "dataset",
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
    for n in names:
        get_method(n)
    return names


def parse_impls(value: Any) -> tuple[str, ...]:
    names = _names(value, "impl")
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
        sweep=_checked_sweep(data.get("sweep", {})),
    )


def _checked_sweep(table: Any) -> dict[str, Any]:
    from bench.sweep import SweepConfig  # sweep builds on spec; import here to avoid a cycle

    if not isinstance(table, Mapping):
        raise ConfigError("[sweep] must be a table")
    SweepConfig.from_mapping(table)
    return dict(table)


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; None means 'not given'."""

    datasets: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    model: str | None = None
    methods: tuple[str, ...] | None = None
    impls: tuple[str, ...] | None = None
    epochs: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    devices: tuple[str, ...] | None = None
    dtype: str | None = None
    seeds: tuple[int, ...] | None = None
    holdout: float | None = None
    standardize: bool | None = None


def apply_overrides(suite: Suite, o: Overrides) -> Suite:
    """The suite with command-line flags on top; flags beat every layer of the file."""
    problems: Iterable[Problem] = suite.problems
    if o.datasets is not None:
        by_name = {p.dataset: p for p in suite.problems}
        problems = [
            by_name.get(d) or Problem(dataset=d, targets=o.targets, features=o.features)
            for d in o.datasets
        ]
    problems = list(problems)
    if o.model is not None:
        ModelSpec.parse(o.model)
        seen: dict[str, Problem] = {}
        for p in problems:  # the first problem per dataset keeps its settings
            seen.setdefault(p.dataset, replace(p, model=o.model))
        problems = list(seen.values())
    if o.targets is not None or o.features is not None:
        problems = [
            replace(p, targets=o.targets or p.targets, features=o.features or p.features)
            for p in problems
        ]
    flag_hp = {
        k: v
        for k, v in (("lr", o.lr), ("momentum", o.momentum), ("weight_decay", o.weight_decay))
        if v is not None
    }
    if flag_hp:
        # Flags beat per-method tables too, so strip the flagged keys from them.
        problems = [
            replace(
                p,
                hparams={**p.hparams, **flag_hp},
                method_hparams=_without(p.method_hparams, flag_hp),
            )
            for p in problems
        ]
    if o.epochs is not None or o.batch_size is not None:
        problems = [
            replace(
                p,
                epochs=o.epochs if o.epochs is not None else p.epochs,
                batch_size=o.batch_size if o.batch_size is not None else p.batch_size,
                method_hparams=_without(p.method_hparams, {"batch_size": 0})
                if o.batch_size is not None
                else p.method_hparams,
            )
            for p in problems
        ]
    if o.holdout is not None:
        problems = [replace(p, holdout=o.holdout) for p in problems]
    if o.standardize is not None:
        problems = [replace(p, standardize=o.standardize) for p in problems]
    if o.methods is not None:
        problems = [replace(p, methods=None) for p in problems]
    return replace(
        suite,
        problems=tuple(problems),
        methods=o.methods if o.methods is not None else suite.methods,
        impls=o.impls or suite.impls,
        devices=o.devices or suite.devices,
        dtype=o.dtype or suite.dtype,
        seeds=o.seeds or suite.seeds,
        method_hparams=_without(suite.method_hparams, flag_hp) if flag_hp else suite.method_hparams,
    )


def _without(
    tables: Mapping[str, Mapping[str, Any]], keys: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    return {m: {k: v for k, v in t.items() if k not in keys} for m, t in tables.items()}


def check_numbers(o: Overrides) -> None:
    """Reject bad flag values before any data is loaded."""
    if o.lr is not None:
        _finite_positive("--lr", o.lr)
    if o.epochs is not None and o.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {o.epochs}")
    if o.batch_size is not None and o.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {o.batch_size}")
    for name, value in (("--momentum", o.momentum), ("--weight-decay", o.weight_decay)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
    if o.holdout is not None and not 0.0 <= o.holdout < 1.0:
        raise ConfigError(f"--holdout must be a fraction in [0, 1), got {o.holdout}")
    if o.dtype is not None and o.dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {o.dtype!r}; known: {', '.join(DTYPES)}")
    if o.seeds is not None and any(s < 0 for s in o.seeds):
        raise ConfigError(f"seeds must be >= 0, got {list(o.seeds)}")


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


__all__: Sequence[str] = (
    "DEFAULT_SUITE",
    "DTYPES",
    "Overrides",
    "Problem",
    "RunSpec",
    "Suite",
    "apply_overrides",
    "check_numbers",
    "suite_from_dict",
    "suite_from_toml",
)
