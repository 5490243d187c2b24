"""What to run: a `Suite` (a TOML file with command-line overrides on top) of named problems,
expanded into one `RunSpec` per run.

Hyperparameters are layered, later wins: method defaults < suite < problem < the suite's and the
problem's per-method tables < command-line flags. A key given for all methods at once applies
where it makes sense: `lr` everywhere; `momentum`/`dampening` only to methods that have momentum;
`weight_decay` only to methods that have weight decay (so `--momentum 0.5` tunes heavy ball and
Nesterov without turning `gd` into heavy ball); other keys where the update rule takes them.
A per-method table sets any key its rule accepts.

Command-line `--hp` keys sit on top of everything: `--hp lr=0.1` like `--lr`, and
`--hp adam.lr=0.1` for one method (beating every per-method table).

Every problem has a unique name: the dataset's name for its task's default model (`crops15`,
`quadratic_deep`), with the model appended otherwise (`crops15-mlp`), or the `name` a suite
gives it. `--datasets NAME` means that dataset with `--model` (default linear), taking the
suite's settings for that exact (dataset, model) problem when the suite has one;
`--problems NAME,...` selects by name.

A problem's task comes from its dataset (`bench.run.data.dataset_task`; a CSV file is
regression unless `task = "classification"` / `--task classification`). Tasks that bring their
own data and model fix what does not apply to them: `quadratic_deep` and the 2-D functions
have a fixed hold-out (the test set / none) and no features to standardise (`--holdout` and
`--standardize` leave them alone), their own model (`--model` leaves them alone), and the 2-D
functions run every method at full batch (one step per epoch). A plug-in method (an optimizer
class loaded by import spec) runs once, with its own implementation, whatever `impl` says;
`impl` applies to the methods that have it, and a method with none of them is an error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optimizers
from bench.errors import ConfigError
from bench.run import models, tasks
from bench.run.data import dataset_task, fixed_holdout, load_dataset, split_sizes
from bench.run.models import ModelSpec
from bench.run.spec import DEFAULT_EPOCHS, DTYPES, RunSpec, finite_positive, get_method
from bench.run.tasks import Task
from bench.schema import freeze_hparams, problem_name

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "suites" / "default.toml"
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Problem:
    """One dataset x model of a suite, with its own settings (None = inherit from the suite)."""

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

    @property
    def task_name(self) -> str:
        return dataset_task(self.dataset, self.task)

    @property
    def task_def(self) -> Task:
        return tasks.get(self.task_name)

    @property
    def label(self) -> str:
        """The problem's unique name in its suite (and in every table)."""
        if self.name:
            return self.name
        name = load_dataset(self.dataset, self.targets, self.features, self.task_name).name
        if self.model == self.task_def.default_model:
            return problem_name(name, "linear")  # the bare dataset name
        if models.is_plugin(self.model):
            return problem_name(name, ModelSpec.parse(self.model).label)
        return problem_name(name, self.model)


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
    sweep: Mapping[str, Any] = field(default_factory=dict)  # checked by bench.sweep.SweepConfig
    # How to run, not what: executor, workers, scheduler, threads (bench.run.executors.build).
    execution: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        no_duplicates([p.label for p in self.problems], "problem names")

    def problem(self, name: str) -> Problem:
        for p in self.problems:
            if p.label == name:
                return p
        known = ", ".join(p.label for p in self.problems)
        raise ConfigError(f"no problem named {name!r} in suite {self.name!r}; known: {known}")

    def expand(self) -> list[RunSpec]:
        """Every run of the suite, validated; problems in order, then method, impl, device, seed."""
        specs = []
        for problem in self.problems:
            for method_name in problem.methods or self.methods:
                for impl in self.impls_of(method_name):
                    for device in self.devices:
                        for seed in problem.seeds or self.seeds:
                            specs.append(self.spec_for(problem, method_name, impl, device, seed))
        if not specs:
            raise ConfigError("the suite selects no runs (no problems or no methods)")
        return specs

    def impls_of(self, method_name: str) -> tuple[str, ...]:
        """The suite's impls this method has; a plug-in's own one (it has no other)."""
        method = get_method(method_name)
        if method.impls == (optimizers.PLUGIN,):
            return method.impls
        own = tuple(i for i in self.impls if i in method.impls)
        if not own:
            raise ConfigError(
                f"method {method_name!r} has none of the implementations {', '.join(self.impls)}; "
                f"it has: {', '.join(method.impls)}"
            )
        return own

    def spec_for(
        self, problem: Problem, method_name: str, impl: str, device: str, seed: int
    ) -> RunSpec:
        """The run of a problem x method x impl x device x seed (a plug-in method's impl is
        always its own, so callers that ask for "scratch", like the sweep, get it)."""
        method = get_method(method_name)
        if method.impls == (optimizers.PLUGIN,):
            impl = optimizers.PLUGIN
        task = problem.task_def
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
        if method.batch == "full" or task.full_batch:
            batch_size = n_train
        elif method.batch == "single":
            batch_size = 1
        if isinstance(batch_size, int) and batch_size > n_train:
            raise ConfigError(
                f"batch size {batch_size} for {method_name!r} is larger than the training set "
                f"of {problem.dataset!r} ({n_train} rows)"
            )
        standardize = self.standardize if problem.standardize is None else problem.standardize
        if models.is_plugin(problem.model):
            _check_model(problem, problem.model)
        return RunSpec(
            dataset=problem.dataset,
            problem=problem.label,
            method=method_name,
            impl=impl,
            model=problem.model,
            hparams=freeze_hparams(hp),
            batch_size=batch_size,
            epochs=problem.epochs or self.epochs,
            device=device,
            dtype=self.dtype,
            seed=seed,
            holdout=_holdout(self, problem),
            standardize=standardize and fixed_holdout(problem.dataset) is None,
            targets=problem.targets,
            features=problem.features,
            task=problem.task_name,
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


def _holdout(suite: Suite, problem: Problem) -> float:
    fixed = fixed_holdout(problem.dataset)
    if fixed is not None:
        return fixed
    for value in (problem.holdout, suite.holdout):
        if value is not None:
            return float(value)
    ds = load_dataset(problem.dataset, problem.targets, problem.features, problem.task_name)
    return float(ds.default_holdout)


def _n_train(suite: Suite, problem: Problem, seed: int) -> int:
    return split_sizes(
        problem.dataset,
        problem.targets,
        problem.features,
        _holdout(suite, problem),
        problem.task_name,
    )[0]


def _check_model(problem: Problem, model: str) -> None:
    """Build a plug-in model once on the problem's shape: its errors are input errors."""
    ds = load_dataset(problem.dataset, problem.targets, problem.features, problem.task_name)
    models.check(model, ds.d, ds.n_classes if ds.task == "classification" else ds.k)


def task_model(problem: Problem, model: str | None) -> Problem:
    """The problem with `model` (None: its task's default) where its task has a model choice;
    a task with its own model keeps it, and naming another one for it is an error."""
    task = problem.task_def
    if not task.model_choice:
        if model not in (None, task.default_model):
            raise ConfigError(
                f"{problem.dataset}: task {task.name} has its own model "
                f"({task.default_model}); model {model!r} does not apply"
            )
        return replace(problem, model=task.default_model)
    return replace(problem, model=model or problem.model)


def no_duplicates(items: Sequence[Any], what: str) -> None:
    dups = [k for k, n in Counter(items).items() if n > 1]
    if dups:
        raise ConfigError(f"duplicate {what}: {', '.join(map(str, dups))}")


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
    hparams: Mapping[str, Any] = field(default_factory=dict)  # --hp key=value
    method_hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # --hp m.key=v


def apply_overrides(suite: Suite, o: Overrides) -> Suite:
    """The suite with command-line flags on top; flags beat every layer of the file."""
    problems: Iterable[Problem] = suite.problems
    if o.task is not None and o.datasets is None:
        raise ConfigError("--task says how to read the labels of --datasets CSV files; give both")
    if o.problems is not None and o.datasets is not None:
        raise ConfigError("give --problems (suite problems by name) or --datasets, not both")
    if o.model is not None:
        ModelSpec.parse(o.model)
    if o.problems is not None:
        problems = [suite.problem(name) for name in o.problems]
        if o.model is not None:
            problems = [_with_model(p, o.model) for p in problems]
    elif o.datasets is not None:
        problems = _distinct_names([_problem_for(suite, d, o) for d in o.datasets])
    elif o.model is not None:
        problems = [_with_model(p, o.model) for p in problems]
    problems = list(problems)
    no_duplicates([p.label for p in problems], "problem names (two problems would share one)")
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
    twice = sorted(set(flag_hp) & set(o.hparams))
    if twice:
        raise ConfigError(f"{', '.join(twice)} given both as a flag and in --hp")
    flag_hp.update(o.hparams)
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
    if o.method_hparams:  # the last layer: --hp adam.lr=... beats every table and flag
        problems = [
            replace(p, method_hparams=_merged(p.method_hparams, o.method_hparams)) for p in problems
        ]
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


def _distinct_names(problems: list[Problem]) -> list[Problem]:
    """Two CSV files with one stem (`a/x.csv`, `b/x.csv`) are two problems: name each by its
    path (`a/x`, `b/x`) rather than letting one shadow the other."""
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
    fresh = task_model(fresh, o.model if fresh.task_def.model_choice else None)
    for p in suite.problems:
        if p.dataset == dataset and p.model == fresh.model and o.task in (None, p.task_name):
            return p
    return fresh


def _with_model(problem: Problem, model: str) -> Problem:
    """`--model` on a suite problem: a new problem for tasks with a model choice."""
    if not problem.task_def.model_choice:
        return problem
    return replace(problem, model=model, name=None)


def _merged(
    tables: Mapping[str, Mapping[str, Any]], top: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    out = {m: dict(t) for m, t in tables.items()}
    for method, table in top.items():
        out.setdefault(method, {}).update(table)
    return out


def _without(
    tables: Mapping[str, Mapping[str, Any]], keys: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    return {m: {k: v for k, v in t.items() if k not in keys} for m, t in tables.items()}


def check_numbers(o: Overrides) -> None:
    """Reject bad flag values before any data is loaded."""
    if o.lr is not None:
        finite_positive("--lr", o.lr)
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
    for what, items in (
        ("--seeds", o.seeds),
        ("--datasets", o.datasets),
        ("--problems", o.problems),
    ):
        if items is not None:
            no_duplicates(items, what)


__all__: Sequence[str] = (
    "DEFAULT_SUITE",
    "Overrides",
    "Problem",
    "Suite",
    "apply_overrides",
    "check_numbers",
)
