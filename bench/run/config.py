"""What to run: a suite file (TOML) with the command line on top, planned into `RunSpec`s.

Values enter as a suite file's tables or as flags (`Overrides`, parsed by `bench.cli.args`); each
key's rule is written once (`RULES`) and checked where the value enters, naming where it came
from. Nothing is rewritten afterwards: `Suite.spec_for` merges plain layers, later winning,

    method defaults < suite < problem < the suite's and the problem's per-method tables
                    < flags for every method (--lr, --momentum, --hp lr=...) < --hp METHOD.key

and the `RunSpec` it builds checks the combination. A key for every method applies where it
makes sense (`_applies`); a per-method table sets any key its method takes, and `batch_size`,
`schedule`, `groups`.

Methods are registered names (`all`: every built-in) or plug-ins by import path
(`path/to/signsgd.py:SignSGD`, `torch.optim:RMSprop`), named `name=spec` or by the class name
lower-cased, defined by their `[methods.NAME]` table or `--hp NAME.key=...` (`batch`,
`batch_size`, hyperparameters, a wrapper's inner method: `optimizer = "adam"`). Definitions
travel inside the suite and its specs; a relative path in a suite file is relative to its folder.

A problem's unique name is its dataset's for the task's default model (`crops15`), else with the
model (`crops15-mlp`), or the `name` a suite gives it. `--datasets NAME` is that dataset with
`--model` (the suite's problem for that pair if there is one); `--problems` selects by name.
Tasks with their own data and model (`quadratic_deep`, the 2-D functions) keep them.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib
import torch

import optimizers
from bench.errors import ConfigError
from bench.run import models, optim, schedules, tasks
from bench.run.data import dataset_task, fixed_holdout, load_dataset, split_sizes
from bench.run.device import resolve_devices
from bench.run.models import ModelSpec
from bench.run.spec import DEFAULT_EPOCHS, DTYPES, RunSpec, finite_positive
from bench.run.tasks import Task
from bench.schema import freeze_hparams, problem_name

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "suites" / "default.toml"
DEFAULT_SEEDS = (0, 1, 2)
MAX_EPOCHS = 1_000_000  # a typo such as --epochs 1e9 would run for days before saying anything
MAX_SEEDS, MAX_SEED = 1_000, 2**32 - 1
MAX_RUNS = 10_000  # runs of one command, unless --max-runs raises it
MAX_PARITY_STEPS = 100_000
MAX_TOML_DEPTH = 32
EXECUTION_KEYS = ("executor", "workers", "scheduler", "threads", "timeout", "engine")
METHOD_KEYS = ("batch_size", "schedule", "groups")  # per-method settings that are not hparams

# Rules: what each key must be (scikit-learn's declarative `_parameter_constraints`)


@dataclass(frozen=True)
class Rule:
    what: str
    test: Callable[[Any], bool]

    def check(self, key: str, value: Any, where: str = "") -> Any:
        if not self.test(value):
            where = f"{where}: " if where else ""
            raise ConfigError(f"{where}{key} must be {self.what}, got {value!r}")
        return value


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


STRING = Rule("a string", lambda v: isinstance(v, str))
TABLE = Rule("a table", lambda v: isinstance(v, Mapping))
NAMES = Rule(
    "a list of names or a comma-separated string",
    lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
)
BOOL = Rule("true or false (a TOML boolean, not a string)", lambda v: isinstance(v, bool))
AT_LEAST_1 = Rule("an integer >= 1", lambda v: _int(v) and v >= 1)
RULES: dict[str, Rule] = {
    **dict.fromkeys(("name", "dataset", "model", "task", "schedule"), STRING),
    **dict.fromkeys(("executor", "scheduler", "engine"), STRING),
    **dict.fromkeys(("impl", "devices", "targets", "features"), NAMES),
    **dict.fromkeys(("hparams", "sweep"), TABLE),
    **dict.fromkeys(("batch_size", "workers", "threads"), AT_LEAST_1),
    "standardize": BOOL,
    "dtype": Rule(f"one of {', '.join(DTYPES)}", lambda v: v in DTYPES),
    "methods": Rule(
        "a list of names, a comma-separated string or a table of [methods.NAME] tables",
        lambda v: NAMES.test(v) or isinstance(v, Mapping),
    ),
    "seeds": Rule(
        f"a list of at most {MAX_SEEDS} distinct integers in [0, {MAX_SEED}]",
        lambda v: (
            isinstance(v, list | tuple)
            and 0 < len(v) <= MAX_SEEDS
            and all(_int(s) and 0 <= s <= MAX_SEED for s in v)
        ),
    ),
    "epochs": Rule(f"an integer in [1, {MAX_EPOCHS}]", lambda v: _int(v) and 1 <= v <= MAX_EPOCHS),
    "holdout": Rule("a number in [0, 1)", lambda v: _num(v) and 0 <= v < 1),
    "problems": Rule(
        "an array of tables ([[problems]])",
        lambda v: isinstance(v, list) and all(isinstance(p, Mapping) for p in v),
    ),
    "timeout": Rule("a number of seconds > 0", lambda v: _num(v) and v > 0),
}
SUITE_KEYS = frozenset(RULES) - {"dataset", "task", "targets", "features"}
PROBLEM_KEYS = frozenset(
    {"dataset", "name", "model", "targets", "features", "methods", "epochs", "batch_size",
     "holdout", "standardize", "hparams", "task", "seeds", "schedule"}
)  # fmt: skip


def check_table(table: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Unknown keys, then each key's rule; the first problem is a ConfigError."""
    bad, allowed = sorted(set(table) - set(keys)), ", ".join(sorted(keys))
    if bad:
        raise ConfigError(f"{where}: unknown key {', '.join(bad)}; allowed: {allowed}")
    for key, value in table.items():
        RULES[key].check(key, value, where if where != "suite" else "")


def _hparam_rule(method: optimizers.Method, key: str) -> Rule | None:
    """A hyperparameter takes the kind of its default (boolean, number, tuple of numbers)."""
    default = method.resolve().get(key) if key in method.hparam_names else None
    if isinstance(default, bool):
        return BOOL
    if isinstance(default, int | float):
        return Rule("a finite number", _num)
    if isinstance(default, tuple):
        n = len(default)
        return Rule(f"a list of {n} numbers", lambda v: isinstance(v, list | tuple)
                    and len(v) == n and all(_num(x) for x in v))  # fmt: skip
    return None


def no_duplicates(items: Sequence[Any], what: str) -> None:
    dups = [k for k, n in Counter(items).items() if n > 1]
    if dups:
        raise ConfigError(f"duplicate {what}: {', '.join(map(str, dups))}")


def split_names(value: Any, what: str) -> tuple[str, ...]:
    """A comma string or a list of names; an empty entry or an empty list is an error."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    if not items or any(not v for v in items):
        raise ConfigError(f"{what} is empty" if not items else f"{what} has an empty entry")
    return tuple(items)


def check_seeds(seeds: Sequence[int], what: str) -> None:
    """Seeds given on the command line: at most MAX_SEEDS distinct ones in [0, MAX_SEED]."""
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"{what}: {len(seeds)} seeds, more than the limit of {MAX_SEEDS}")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise ConfigError(f"{what}: seeds must be in [0, {MAX_SEED}], got {s}")
    no_duplicates(seeds, what)


# Command-line values: `--hp key=value,...`

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_IMPORT = re.compile(r"[\w./-]+(\.py)?:[A-Za-z_][\w.]*")


def parse_value(text: str, where: str) -> Any:
    """One `--hp` value: int, float, true/false, `a:b` tuple of numbers, an import path
    (`torch.optim:SGD`, for a keyword that takes a class), or JSON."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    if ":" in text and all(_FLOAT.fullmatch(p.strip()) for p in text.split(":")):
        return tuple(parse_value(p, where) for p in text.split(":"))
    if text[:1] in ("[", "{", '"') or text == "null":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: malformed JSON {text!r}: {exc.msg}") from None
        return tuple(value) if isinstance(value, list) else value
    if _IMPORT.fullmatch(text):
        return text
    raise ConfigError(
        f"{where}: cannot read {text!r}; write a number, true/false, a tuple like 0.9:0.999, "
        "an import path like torch.optim:SGD, or JSON"
    )


def _top_level_split(text: str) -> list[str]:
    """Split on commas outside brackets and quotes (a JSON value may hold commas)."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{]}":
            depth += 1 if ch in "[{" else -1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_hp(texts: Iterable[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`--hp` flags -> (for every method, per method): `lr=0.1,adam.betas=0.9:0.99`. The method
    is what precedes the last dot (`la.optimizer.lr`: `lr` of `la`'s inner method)."""
    generic: dict[str, Any] = {}
    per_method: dict[str, dict[str, Any]] = {}
    for item in [item for text in texts for item in _top_level_split(text)]:
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not key:
            raise ConfigError(f"--hp: expected key=value, got {item!r}")
        method, dot, name = key.rpartition(".")
        if dot and not method:
            raise ConfigError(f"--hp: empty method name in {key!r}")
        if not name.isidentifier():
            raise ConfigError(f"--hp: {name!r} is not a hyperparameter name")
        table = per_method.setdefault(method, {}) if dot else generic
        if name in table:
            raise ConfigError(f"--hp: {key} given twice")
        # Words, kept as text: a batch regime, a schedule, a groups preset, a wrapper's inner
        # method (`la.optimizer=adam`); other text values are JSON strings.
        word = name in ("batch", "schedule", "groups") or optimizers.takes_optimizer(name)
        table[name] = value if word and value[:1] != "{" else parse_value(value, f"--hp {key}")
    for key in ("batch", "batch_size", "class"):
        if key in generic:
            hint = "--batch-size" if key == "batch_size" else f"METHOD.{key}=..."
            raise ConfigError(f"--hp: {key} is per method or a flag; use {hint}")
    return generic, per_method


# Methods: built-in names and plug-in definitions


@dataclass(frozen=True)
class Plugin:
    """A plug-in method's definition: import path (a file absolute), batch regime, defaults."""

    name: str
    path: str
    batch: str = "mini"
    batch_size: int | None = None
    hparams: tuple[tuple[str, Any], ...] = ()

    @property
    def method(self) -> optimizers.Method:
        return optim.method_def(self.name, self.path, self.hparams, self.batch, self.batch_size)


def _absolute(spec: str, base: Path | None) -> str:
    """`file.py:attr` with a relative file made absolute against `base` (a suite's folder)."""
    target, sep, attr = spec.rpartition(":")
    if base is not None and sep and (target.endswith(".py") or "/" in target):
        return f"{(base / target).resolve()}:{attr}"
    return spec


def load_plugin(entry: str, name: str | None, definition: Mapping[str, Any] | None,
                base: Path | None) -> Plugin:  # fmt: skip
    """Load and check one plug-in: `entry` (an import path) with its definition (a
    `[methods.NAME]` table or the `--hp NAME.` keys): batch, batch_size, hyperparameters."""
    definition = definition or {}
    options = {k: v for k, v in definition.items() if k not in ("class", *METHOD_KEYS)}
    batch, batch_size = options.pop("batch", "mini"), definition.get("batch_size")
    entry = _absolute(entry, base)
    try:
        path = optimizers.loading.parse_spec(entry)
        wraps = optimizers.wrapped_argument(optimizers.loading.load_constructor(entry))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    default = path.attr.rpartition(".")[2].lower()
    name = name or default
    if name in optimizers.BUILTIN_METHODS:
        how = "another name" if name != default else f"--methods NAME={entry}"
        raise ConfigError(f"plug-in {entry!r}: {name!r} is a built-in method's name; use {how}")
    if batch not in optimizers.BATCH_REGIMES:
        regimes = ", ".join(optimizers.BATCH_REGIMES)
        raise ConfigError(f"{name}: batch must be one of {regimes}, got {batch!r}")
    if batch != "mini" and batch_size is not None:
        raise ConfigError(f"{name}: batch_size applies to batch 'mini' only, not {batch!r}")
    options.pop(wraps, None)  # the inner method: a setting of the runs, not a default
    try:
        method = optimizers.method_from_path(
            entry, name=name, batch=batch, batch_size=batch_size, hparams=options
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return Plugin(name, path.spec, batch, method.batch_size, freeze_hparams(options))


def resolve_methods(value: Any, where: str, plugins: Mapping[str, Plugin], base: Path | None = None,
                    definitions: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> tuple[tuple[str, ...], dict[str, Plugin]]:  # fmt: skip
    """(names, plugins) of a methods list: `all`, registered names, plug-in entries
    `[name=]path:Class` (loaded with their `definitions[name]`), names of known plug-ins."""
    names: list[str] = []
    plugins = dict(plugins)
    for entry in split_names(value, where):
        if entry == "all":
            names += [n for n in optimizers.names() if n in optimizers.BUILTIN_METHODS]
        elif ":" in entry:
            given, sep, spec = (s.strip() for s in entry.partition("="))
            if not sep or ":" in given or "/" in given:
                given, spec = "", entry
            default = spec.rpartition(":")[2].rpartition(".")[2].lower()
            plugin = load_plugin(
                spec, given or None, (definitions or {}).get(given or default), base
            )
            plugins[plugin.name] = plugin
            names.append(plugin.name)
        else:
            if entry not in plugins:
                optim.method_def(entry)  # an unknown name lists the known ones
            names.append(entry)
    no_duplicates(names, where)
    return tuple(names), plugins


def parse_impls(value: Any) -> tuple[str, ...]:
    names = split_names(value, "impl")
    no_duplicates(names, "impl")
    for n in names:
        if n not in optimizers.ALL_IMPLS:
            raise ConfigError(f"unknown impl {n!r}; known: {', '.join(optimizers.ALL_IMPLS)}")
    return names


def resolve_model(value: str | None, base: Path | None) -> str | None:
    """A model name, or a factory spec with a relative file made absolute against `base`."""
    return _absolute(value, base) if value is not None and models.is_plugin(value) else value


# Problems and suites


@dataclass(frozen=True)
class Problem:
    """One dataset x model of a suite, with its own settings (None = inherit)."""

    dataset: str
    model: str = "linear"
    name: str | None = None  # None: problem_name(dataset's name, model)
    targets: tuple[str, ...] | None = None
    features: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    holdout: float | None = None
    standardize: bool | None = None
    hparams: Mapping[str, Any] = field(default_factory=dict)
    method_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task: str | None = None  # None: the dataset's own (a CSV file: regression)
    seeds: tuple[int, ...] | None = None
    schedule: str | None = None

    @property
    def task_name(self) -> str:
        return dataset_task(self.dataset, self.task)

    @property
    def task_def(self) -> Task:
        return tasks.get(self.task_name)

    def data(self) -> Any:
        return load_dataset(self.dataset, self.targets, self.features, self.task_name)

    @property
    def label(self) -> str:
        """The problem's unique name in its suite (and in every table)."""
        if self.name:
            return self.name
        name = self.data().name
        if self.model == self.task_def.default_model:
            return name
        model = ModelSpec.parse(self.model).label if models.is_plugin(self.model) else self.model
        return problem_name(name, model)

    def with_model(self, model: str | None) -> Problem:
        """This problem with `model` (None: its task's default) where its task has a model
        choice; a task with its own model keeps it, and naming another one is an error."""
        task = self.task_def
        if task.model_choice:
            return replace(self, model=model or self.model)
        if model not in (None, task.default_model):
            raise ConfigError(
                f"{self.dataset}: task {task.name} has its own model ({task.default_model}); "
                f"model {model!r} does not apply"
            )
        return replace(self, model=task.default_model)


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; None means 'not given'."""

    datasets: tuple[str, ...] | None = None
    problems: tuple[str, ...] | None = None
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
    task: str | None = None  # how to read CSV datasets' labels
    schedule: str | None = None
    hparams: Mapping[str, Any] = field(default_factory=dict)  # --hp key=value
    method_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # --hp m.k=v
    plugins: Mapping[str, Plugin] = field(default_factory=dict)  # given in --methods

    @property
    def generic(self) -> dict[str, Any]:
        """Flags for every method: --lr, --momentum, --weight-decay and --hp key=value."""
        named = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
        return {**{k: v for k, v in named.items() if v is not None}, **self.hparams}


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
    schedule: str = schedules.CONSTANT
    hparams: Mapping[str, Any] = field(default_factory=dict)
    method_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plugins: Mapping[str, Plugin] = field(default_factory=dict)
    flags: Overrides = field(default_factory=Overrides)  # the command line: the top layers
    sweep: Mapping[str, Any] = field(default_factory=dict)  # checked by bench.sweep.SweepConfig
    execution: Mapping[str, Any] = field(default_factory=dict)  # executor, workers, timeout...

    def __post_init__(self) -> None:
        no_duplicates([p.label for p in self.problems], "problem names")

    def problem(self, name: str) -> Problem:
        for p in self.problems:
            if p.label == name:
                return p
        known = ", ".join(p.label for p in self.problems)
        raise ConfigError(f"no problem named {name!r} in suite {self.name!r}; known: {known}")

    def method(self, name: str) -> optimizers.Method:
        """A method of this suite: a plug-in it defines, or a registered one."""
        return self.plugins[name].method if name in self.plugins else optim.method_def(name)

    def impls_of(self, name: str) -> tuple[str, ...]:
        """The suite's impls this method has; a plug-in's own one (it has no other)."""
        method = self.method(name)
        if method.impls == (optimizers.PLUGIN,):
            return method.impls
        own = tuple(i for i in self.impls if i in method.impls)
        if not own:
            raise ConfigError(
                f"method {name!r} has none of the implementations {', '.join(self.impls)}; "
                f"it has: {', '.join(method.impls)}"
            )
        return own

    def expand(self) -> list[RunSpec]:
        """Every run, validated; problems in order, then method, impl, device, seed."""
        specs = [
            self.spec_for(problem, name, impl, device, seed)
            for problem in self.problems
            for name in problem.methods or self.methods
            for impl in self.impls_of(name)
            for device in self.devices
            for seed in problem.seeds or self.seeds
        ]
        if not specs:
            raise ConfigError("the suite selects no runs (no problems or no methods)")
        return specs

    def spec_for(self, problem: Problem, name: str, impl: str, device: str, seed: int) -> RunSpec:
        """The run of a problem x method x impl x device x seed (a plug-in's impl is its own),
        its settings merged from the layers (module docstring), later winning."""
        method, plugin, flags = self.method(name), self.plugins.get(name), self.flags
        hp: dict[str, Any] = {"lr": method.resolve().get("lr"), **method.hparams}
        if hp["lr"] is None:
            del hp["lr"]  # a plug-in without a default lr: the suite must give one
        layers = (  # (table, whether it is the method's own)
            ({"schedule": self.schedule, **self.hparams}, False),
            ({"schedule": problem.schedule} if problem.schedule else {}, False),
            (problem.hparams, False),
            (self.method_hparams.get(name, {}), True),
            (problem.method_hparams.get(name, {}), True),
            ({"schedule": flags.schedule} if flags.schedule else {}, False),
            (flags.generic, False),
            (flags.method_hparams.get(name, {}), True),
        )
        for table, own in layers:
            hp.update(table if own else {k: v for k, v in table.items() if _applies(k, method)})
        for key in ("inner", "inner_hparams"):  # the spec's fields: dropped as hparams (as ever)
            hp.pop(key, None)
        # A wrapper's inner method: `optimizer = "adam"` or `{method = "adam", lr = 0.001}`,
        # and `--hp la.optimizer.lr=...` for its own hyperparameters.
        inner = dict(flags.method_hparams.get(f"{name}.{method.wraps}", {})) if method.wraps else {}
        wrapped = hp.pop(method.wraps, None) if method.wraps else None
        if isinstance(wrapped, Mapping):
            inner = {**{k: v for k, v in wrapped.items() if k != "method"}, **inner}
            wrapped = wrapped.get("method")
        own_flag = flags.method_hparams.get(name, {}).get("batch_size")  # beats --batch-size
        batch_size = _first(own_flag, flags.batch_size, hp.pop("batch_size", None),
                            problem.batch_size, self.batch_size, method.batch_size)  # fmt: skip
        holdout = self._holdout(problem)
        n_train = split_sizes(problem.dataset, problem.targets, problem.features, holdout,
                              problem.task_name)[0]  # fmt: skip
        if method.batch == "full" or problem.task_def.full_batch:
            batch_size = n_train
        elif method.batch == "single":
            batch_size = 1
        if isinstance(batch_size, int) and batch_size > n_train:
            raise ConfigError(
                f"batch size {batch_size} for {name!r} is larger than the training set "
                f"of {problem.dataset!r} ({n_train} rows)"
            )
        standardize = _first(flags.standardize, problem.standardize, self.standardize)
        schedule = hp.pop("schedule", schedules.CONSTANT)
        groups = optim.parse_groups(hp.pop("groups", None), method, f"{name}.groups")
        return RunSpec(
            dataset=problem.dataset, problem=problem.label, method=name,
            impl=optimizers.PLUGIN if plugin else impl, model=problem.model,
            hparams=freeze_hparams(hp), batch_size=batch_size,
            epochs=_first(flags.epochs, problem.epochs, self.epochs), device=device,
            dtype=self.dtype, seed=seed, holdout=holdout,
            standardize=bool(standardize) and fixed_holdout(problem.dataset) is None,
            targets=problem.targets, features=problem.features, task=problem.task_name,
            optimizer=plugin.path if plugin else "", inner=wrapped or "",
            inner_hparams=freeze_hparams(inner), schedule=schedule, groups=groups,
        )  # fmt: skip

    def _holdout(self, problem: Problem) -> float:
        fixed = fixed_holdout(problem.dataset)
        if fixed is not None:
            return fixed
        value = _first(self.flags.holdout, problem.holdout, self.holdout)
        return float(value if value is not None else problem.data().default_holdout)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _applies(key: str, method: optimizers.Method) -> bool:
    """Whether a key given for every method applies to this one: `lr`, `schedule`, `groups`
    always; `momentum`, `dampening` where the defaults have momentum (`--momentum 0.5` tunes heavy
    ball and Nesterov, and leaves `gd` alone); `weight_decay`, `nesterov` where the defaults set
    them; other keys where the method takes them."""
    if key in ("lr", "schedule", "groups"):
        return True
    if key in ("momentum", "dampening"):
        return "momentum" in method.hparams
    if key in ("weight_decay", "nesterov"):
        return key in method.hparams
    return key in method.hparam_names


def check_model(problem: Problem) -> None:
    """A plug-in model, built once on the problem's data and run on two rows: whatever it
    raises, and an output shape that does not fit the targets, is an error up front."""
    if not models.is_plugin(problem.model):
        return
    ds = problem.data()
    k = ds.n_classes if ds.task == "classification" else ds.k
    module = ModelSpec.parse(problem.model).build(ds.d, k)  # its errors are ConfigErrors
    x, y = torch.tensor(ds.X[:2], dtype=torch.float32), torch.tensor(ds.Y[:2])
    try:
        with torch.no_grad():
            out = module.eval()(x)
    except Exception as exc:  # whatever the user's model raises
        raise ConfigError(f"model {problem.model}: on 2 rows of {problem.dataset} it raised "
                          f"{type(exc).__name__}: {exc}".replace("\n", " ")) from None  # fmt: skip
    try:
        problem.task_def.check_output(out, y)
    except ConfigError as exc:
        raise ConfigError(f"model {problem.model}: {exc}") from None


# Suite files


def _depth(value: Any, limit: int = MAX_TOML_DEPTH) -> int:
    if isinstance(value, Mapping | list) and limit > 0:
        items = value.values() if isinstance(value, Mapping) else value
        return 1 + max((_depth(v, limit - 1) for v in items), default=0)
    return 0


def suite_from_toml(path: Path) -> Suite:
    """Read a suite file; any problem with it is one ConfigError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"malformed TOML in {path}: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    try:
        return suite_from_dict(data, Path(path).resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def suite_from_dict(data: Mapping[str, Any], base: Path | None = None) -> Suite:
    """A suite from its TOML table; `base` is the folder relative paths are read from."""
    if _depth(data) >= MAX_TOML_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_TOML_DEPTH} levels")
    check_table(data, SUITE_KEYS, "suite")
    plain = ("name", "dtype", "epochs", "batch_size", "holdout", "standardize")  # as they are
    suite = Suite(**{k: data[k] for k in plain if k in data})
    raw, tables = data.get("methods", "all"), {}
    if isinstance(raw, Mapping):  # [methods.NAME] tables, in order
        for name, table in raw.items():
            where = f"[methods.{name}]"
            if not isinstance(table, Mapping):
                raise ConfigError(f"{where} must be a table")
            if "class" in table:
                entry = STRING.check("class", table["class"], where)
                plugin = load_plugin(entry, name, table, base)
                suite = replace(suite, plugins={**suite.plugins, name: plugin})
            elif "batch" in table:
                raise ConfigError(f"{where}: a built-in method's batch regime is fixed")
            tables[name] = _method_table(suite.method(name), table, where, name)
        if not tables:
            raise ConfigError("[methods] lists no method")
        methods = tuple(tables)
    else:
        methods, plugins = resolve_methods(raw, "methods", suite.plugins, base)
        suite = replace(suite, plugins=plugins)
    generic, per_method = _hparams(data.get("hparams", {}), "[hparams]", suite)
    for name, table in tables.items():
        per_method[name] = {**per_method.get(name, {}), **table}
    default_model = resolve_model(data.get("model"), base)
    problems = []
    for i, raw in enumerate(data.get("problems", [])):
        where = f"[[problems]] #{i + 1}"
        if "dataset" not in raw:
            raise ConfigError(f"{where}: needs a dataset")
        check_table(raw, PROBLEM_KEYS, where)
        p_generic, p_method = _hparams(raw.get("hparams", {}), f"{where} hparams", suite)
        own_methods = None
        if "methods" in raw:
            own_methods, plugins = resolve_methods(raw["methods"], "methods", suite.plugins, base)
            suite = replace(suite, plugins=plugins)
        plain = ("dataset", "name", "epochs", "batch_size", "holdout", "standardize", "task")
        problem = Problem(
            **{k: raw[k] for k in plain if k in raw},
            **{k: split_names(raw[k], k) for k in ("targets", "features") if k in raw},
            methods=own_methods, hparams=p_generic, method_hparams=p_method,
            seeds=_seeds(raw["seeds"], f"{where} seeds") if "seeds" in raw else None,
            schedule=_schedule(raw.get("schedule"), where),
        )  # fmt: skip
        own = resolve_model(raw.get("model"), base)
        problems.append(problem.with_model(own or default_model if problem.task_def.model_choice
                                           else own))  # fmt: skip
    return replace(
        suite,
        problems=tuple(problems),
        methods=methods,
        impls=parse_impls(data.get("impl", ["scratch", "torch"])),
        devices=resolve_devices(",".join(split_names(data.get("devices", "auto"), "devices"))),
        seeds=_seeds(data.get("seeds", list(DEFAULT_SEEDS)), "seeds"),
        schedule=_schedule(data.get("schedule"), "suite") or schedules.CONSTANT,
        hparams=generic,
        method_hparams=per_method,
        sweep=dict(data.get("sweep", {})),
        execution={k: data[k] for k in EXECUTION_KEYS if k in data},
    )


def _hparams(table: Mapping[str, Any], where: str, suite: Suite) -> tuple[dict, dict]:
    """[..hparams] holds generic keys and per-method sub-tables: {lr = 1e-5, adam = {lr = 0.1}}."""
    generic, per_method = {}, {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            per_method[key] = _method_table(suite.method(key), value, where, key)
            continue
        names = (*optimizers.names(), *suite.plugins)
        takers = [m for m in map(suite.method, names) if key in m.hparam_names]
        if not takers and key not in ("schedule", "groups"):
            raise ConfigError(f"{where}: unknown hyperparameter {key}")
        if takers and (rule := _hparam_rule(takers[0], key)) is not None:
            rule.check(key, value, where)
        generic[key] = value
    return generic, per_method


def _method_table(method: optimizers.Method, table: Mapping[str, Any], where: str, name: str
                  ) -> dict[str, Any]:  # fmt: skip
    """A method's own settings: its hyperparameters, batch_size, schedule, groups, inner."""
    allowed = {*method.hparam_names, *METHOD_KEYS, *([method.wraps] if method.wraps else [])}
    if "batch" in table and not method.plugin:
        raise ConfigError(f"{where}: {name}: a built-in method's batch regime is fixed")
    bad = sorted(set(table) - allowed - {"class", "batch"})
    if bad and not method.plugin:
        raise ConfigError(f"{where}: method {name!r} does not take {', '.join(bad)}; "
                          f"it takes {', '.join(sorted(allowed))}")  # fmt: skip
    for key, value in table.items():
        rule = RULES[key] if key in ("batch_size", "schedule") else _hparam_rule(method, key)
        if rule is not None:
            rule.check(f"{name}.{key}", value, where)
    return {k: v for k, v in table.items() if k not in ("class", "batch")}


def _schedule(value: str | None, where: str) -> str | None:
    return None if value is None else schedules.canonical(value, f"{where}: schedule")


def _seeds(seeds: Any, where: str) -> tuple[int, ...]:
    """Seeds checked against their rule where they entered (`check_table`); distinct here."""
    no_duplicates(seeds, where)
    return tuple(seeds)


# The command line on top


def apply_overrides(suite: Suite, o: Overrides) -> Suite:
    """The suite with command-line flags on top: they select problems, methods, impls, devices,
    dtype and seeds, and become the top layers of every setting (`Suite.spec_for`)."""
    check_numbers(o)
    if o.task is not None and o.datasets is None:
        raise ConfigError("--task says how to read the labels of --datasets CSV files; give both")
    if o.problems is not None and o.datasets is not None:
        raise ConfigError("give --problems (suite problems by name) or --datasets, not both")
    if o.model is not None:
        ModelSpec.parse(o.model)
    twice = [k for k in ("lr", "momentum", "weight_decay") if getattr(o, k) is not None
             and k in o.hparams]  # fmt: skip
    if twice:
        raise ConfigError(f"{', '.join(twice)} given both as a flag and in --hp")
    problems = list(suite.problems)
    if o.problems is not None:
        problems = [suite.problem(name) for name in o.problems]
    elif o.datasets is not None:
        problems = _distinct_names([_problem_for(suite, d, o) for d in o.datasets])
    if o.model is not None and o.datasets is None:
        problems = [replace(p, name=None).with_model(o.model) if p.task_def.model_choice else p
                    for p in problems]  # fmt: skip
    no_duplicates([p.label for p in problems], "problem names (two problems would share one)")
    problems = [
        replace(p, targets=o.targets or p.targets, features=o.features or p.features,
                methods=p.methods if o.methods is None else None)
        for p in problems
    ]  # fmt: skip
    out = replace(
        suite,
        problems=tuple(problems),
        methods=o.methods if o.methods is not None else suite.methods,
        impls=o.impls or suite.impls,
        devices=o.devices or suite.devices,
        dtype=o.dtype or suite.dtype,
        seeds=o.seeds or suite.seeds,
        plugins={**suite.plugins, **o.plugins},
        flags=o,
    )
    _hparams(o.hparams, "--hp", out)  # a key no method takes is an error, as in a suite file
    for name, table in o.method_hparams.items():
        method_name, _, inner = name.partition(".")
        method = out.method(method_name)
        if inner and inner != method.wraps:
            raise ConfigError(f"--hp {name}: {method_name!r} wraps no optimizer named {inner!r}")
        if not inner:
            _method_table(method, table, "--hp", method_name)
    for problem in problems:
        check_model(problem)
    return out


def _distinct_names(problems: list[Problem]) -> list[Problem]:
    """Two CSV files with one stem (`a/x.csv`, `b/x.csv`) are two problems named by path."""
    counts = Counter(p.label for p in problems)
    return [
        replace(p, name=problem_name(str(Path(p.dataset).with_suffix("")), p.model))
        if counts[p.label] > 1 and p.name is None and p.dataset.endswith(".csv")
        else p
        for p in problems
    ]


def _problem_for(suite: Suite, dataset: str, o: Overrides) -> Problem:
    """The suite's problem for exactly this (dataset, model), or a fresh one."""
    fresh = Problem(dataset=dataset, targets=o.targets, features=o.features, task=o.task)
    fresh = fresh.with_model(o.model if fresh.task_def.model_choice else None)
    for p in suite.problems:
        if p.dataset == dataset and p.model == fresh.model and o.task in (None, p.task_name):
            return p
    return fresh


def check_numbers(o: Overrides) -> None:
    """Flag values, each against its rule, before any data is loaded."""
    if o.lr is not None:
        finite_positive("--lr", o.lr)
    for flag, value in (("--epochs", o.epochs), ("--batch-size", o.batch_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if o.epochs is not None and o.epochs > MAX_EPOCHS:
        raise ConfigError(f"--epochs must be <= {MAX_EPOCHS}, got {o.epochs}")
    for name, value in (("--momentum", o.momentum), ("--weight-decay", o.weight_decay)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
    if o.holdout is not None and not 0.0 <= o.holdout < 1.0:
        raise ConfigError(f"--holdout must be a fraction in [0, 1), got {o.holdout}")
    if o.dtype is not None and o.dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {o.dtype!r}; known: {', '.join(DTYPES)}")
    if o.seeds is not None:
        check_seeds(o.seeds, "--seeds")
    for what, items in (("--datasets", o.datasets), ("--problems", o.problems)):
        if items is not None:
            no_duplicates(items, what)
