"""What one run is: a frozen, validated `RunSpec`. A run is a pure function of it.

Suites (`bench.run.config`) expand into specs; the runner, the result tables and the sweep read
only specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from typing import Any

import optimizers
from bench.errors import ConfigError
from bench.run import optim, schedules
from bench.run.device import KNOWN_DEVICES
from bench.run.models import ModelSpec
from bench.run.seeding import derive_seed
from bench.schema import Hparams, hparams_json

DTYPES = ("float32", "float64")
DEFAULT_EPOCHS = 100
# The fields run ids were first derived from; a field added later counts only when it differs
# from its default, so adding a field never changes the ids of the runs that existed before.
_ID_FIELDS_V1 = (
    "dataset", "method", "impl", "model", "hparams", "batch_size", "epochs", "device", "dtype",
    "seed", "holdout", "standardize", "targets", "features",
)  # fmt: skip
_LABEL_FIELDS = ("problem",)  # names only: they never change a number


def get_method(name: str) -> optimizers.Method:
    """The registered method, or a ConfigError listing the known ones."""
    try:
        return optimizers.get(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def finite_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


@lru_cache(maxsize=4096)
def _check_method(
    method: str,
    optimizer: str,
    impl: str,
    hparams: Hparams,
    inner: str,
    inner_hparams: Hparams,
    groups: str,
) -> None:
    """The method part of a spec, checked once per distinct value (a sweep repeats them)."""
    definition = optim.method_def(method, optimizer, hparams if optimizer else ())
    if impl not in optimizers.ALL_IMPLS:
        raise ConfigError(f"unknown impl {impl!r}; known: {', '.join(optimizers.ALL_IMPLS)}")
    if impl not in definition.impls:
        raise ConfigError(
            f"method {method!r} has no {impl!r} implementation; it has: "
            f"{', '.join(definition.impls)}"
        )
    hp = dict(hparams)
    try:
        definition.resolve(**hp)
    except ValueError:
        unknown = sorted(set(hp) - set(definition.hparam_names) - {"lr"})
        raise ConfigError(
            f"method {method!r} does not take {', '.join(unknown)}; "
            f"it takes {', '.join(definition.hparam_names)}"
        ) from None
    if "lr" not in hp:
        raise ConfigError("a run spec needs an explicit lr")
    finite_positive("lr", hp["lr"])
    optim.check(definition, impl, hp, inner, dict(inner_hparams))
    if groups:
        optim.parse_groups(groups, definition, f"{method}.groups")


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run; a run is a pure function of this, in any process.

    The method is a built-in name, or (`optimizer`) the import path of a class or factory that
    `name` stands for in the tables, with a wrapper's `inner` method and its hyperparameters,
    the learning-rate `schedule` and parameter `groups` (`bench.run.optim`, `.schedules`).
    """

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
    task: str = "regression"
    problem: str = ""  # the suite's name for (dataset, model); "" = the default name
    optimizer: str = ""  # import path of a plug-in's class or factory; "" = a built-in method
    inner: str = ""  # a wrapper's inner method: a built-in name or an import path
    inner_hparams: Hparams = ()
    schedule: str = schedules.CONSTANT
    groups: str = ""  # parameter-group rules, canonical JSON (bench.run.optim.parse_groups)

    def __post_init__(self) -> None:
        if self.optimizer and self.impl == "scratch":
            object.__setattr__(self, "impl", optimizers.PLUGIN)  # a plug-in runs as itself
        _check_method(
            self.method,
            self.optimizer,
            self.impl,
            self.hparams,
            self.inner,
            self.inner_hparams,
            self.groups,
        )
        object.__setattr__(self, "schedule", schedules.canonical(self.schedule))
        ModelSpec.parse(self.model)
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

    @cached_property
    def method_def(self) -> optimizers.Method:
        """The method's definition, from the spec alone (no registry filled at parse time)."""
        return optim.method_def(self.method, self.optimizer, self.hparams if self.optimizer else ())

    @property
    def lr(self) -> float:
        return float(dict(self.hparams)["lr"])

    @property
    def hparams_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.hparams}

    @property
    def hparams_json(self) -> str:
        return hparams_json(self.hparams)

    @cached_property
    def run_id(self) -> str:
        values = [getattr(self, name) for name in _ID_FIELDS_V1]
        values += [
            (f.name, getattr(self, f.name))
            for f in fields(self)
            if f.name not in _ID_FIELDS_V1 + _LABEL_FIELDS and getattr(self, f.name) != f.default
        ]
        ident = derive_seed(*values)
        return f"{self.method}-{self.impl}-{self.device}-s{self.seed}-{ident & 0xFFFFFFFF:08x}"

    @property
    def problem_key(self) -> tuple[Any, ...]:
        """What fixes the data a run sees (and so the init and the optimum): the arguments of
        `bench.run.data.problem_data` (the task says how a CSV file's labels are read)."""
        return (
            self.dataset,
            self.targets,
            self.features,
            self.holdout,
            self.seed,
            self.standardize,
            self.task,
        )
