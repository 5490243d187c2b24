"""The data side of a run: the dataset, its hold-out split, scaling and the known optimum.

Datasets come from the `datasets` package (regression and classification sets, CSV files) or
from a *source* registered here for a task that brings its own data (`SOURCES`: DeepOBS's
`quadratic_deep`, the 2-D test functions). A source has a fixed split: its first `n_train`
rows train, the rest are the hold-out (no random split), and its hold-out fraction is
therefore fixed too (`fixed_holdout`).

Everything here is a deterministic function of its arguments, so it is cached: the many runs
of a suite that share a dataset, split and device load and transfer it once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

import datasets
from bench.errors import ConfigError

DTYPE = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Source:
    """A dataset built here for a task: `build(**options) -> (Dataset, n_train)`.

    Options are strings given as `name:key=value` (defaults in `options`).
    """

    name: str
    task: str
    summary: str
    build: Callable[..., tuple[datasets.Dataset, int]]
    options: Mapping[str, str] = field(default_factory=dict)


SOURCES: dict[str, Source] = {}


def register_source(name: str, task: str, summary: str, **options: str):
    """Decorator: adds a source to `SOURCES` (names must not shadow a `datasets` name)."""

    def deco(build: Callable[..., tuple[datasets.Dataset, int]]):
        if name in SOURCES or name in datasets.REGISTRY:
            raise ValueError(f"dataset {name!r} is already registered")
        SOURCES[name] = Source(name, task, summary, build, dict(options))
        return build

    return deco


def source_options(spec: str) -> tuple[Source, dict[str, str]] | None:
    """The source a spec names and its options (defaults filled in), or None if not a source."""
    name, *parts = spec.strip().split(":")
    if name not in SOURCES:
        return None
    source = SOURCES[name]
    values = dict(source.options)
    for part in parts:
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key not in source.options or not value:
            takes = ", ".join(f"{k}=..." for k in source.options) or "no options"
            raise ConfigError(f"bad option {part!r} in dataset {spec!r}; {name} takes {takes}")
        values[key] = value
    return source, values


def dataset_task(spec: str, explicit: str | None = None) -> str:
    """The task of a dataset spec: a source's or a registered dataset's own task (an explicit
    different one is an error); for a CSV file `explicit`, default "regression"."""
    name = spec.strip().partition(":")[0]
    if name in SOURCES:
        declared = SOURCES[name].task
    elif name in datasets.REGISTRY:
        declared = datasets.task_of(name)
    else:
        return explicit or "regression"
    if explicit is not None and explicit != declared:
        raise ConfigError(
            f"dataset {name!r} is a {declared} problem; task {explicit!r} applies only to CSV files"
        )
    return declared


def _load(
    spec: str,
    targets: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    task: str | None,
) -> tuple[datasets.Dataset, int | None]:
    """The dataset and a source's fixed training size, loaded once per dataset: a registered
    dataset's task can only repeat its own, so asking with its task or with none is one cache
    entry (else a 1e6-row set asked both ways would be held twice). Its task is known from the
    registry, so a wrong one is an error before anything is loaded."""
    name = spec.strip().partition(":")[0]
    if task is not None and name in datasets.REGISTRY and datasets.task_of(name) == task:
        task = None
    return _loaded(spec, targets, features, task)  # a CSV file, or the error a wrong task is


@lru_cache(maxsize=32)
def _loaded(
    spec: str,
    targets: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    task: str | None,
) -> tuple[datasets.Dataset, int | None]:
    found = source_options(spec)
    if found is not None:
        source, options = found
        if targets is not None or features is not None:
            raise ConfigError(f"targets/features apply only to CSV files, not to {source.name!r}")
        try:
            return source.build(**options)
        except datasets.DatasetError as exc:
            raise ConfigError(str(exc)) from None
    if task is not None and task not in datasets.TASKS:
        raise ConfigError(f"task {task!r} needs its own dataset; a CSV file is regression or "
                          "classification")  # fmt: skip
    try:
        return datasets.load(spec, targets=targets, features=features, task=task), None
    except datasets.DatasetError as exc:
        raise ConfigError(str(exc)) from None


def load_dataset(
    spec: str,
    targets: tuple[str, ...] | None = None,
    features: tuple[str, ...] | None = None,
    task: str | None = None,
) -> datasets.Dataset:
    """The dataset (`task` only says how to read a CSV file's labels)."""
    return _load(spec, targets, features, _csv_task(task))[0]


def _csv_task(task: str | None) -> str | None:
    """Only the datasets' own tasks (regression, classification) change how a CSV is read."""
    return task if task in datasets.TASKS else None


def fixed_holdout(spec: str) -> float | None:
    """A source's hold-out fraction (its split is fixed), or None for a splittable dataset."""
    if source_options(spec) is None:
        return None
    ds, n_train = _load(spec, None, None, None)
    return (ds.n - n_train) / ds.n


@lru_cache(maxsize=64)
def split_sizes(
    spec: str,
    targets: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    holdout: float,
    task: str | None = None,
) -> tuple[int, int]:
    """(train rows, hold-out rows); the sizes do not depend on the seed."""
    train, hold = _split(spec, targets, features, _csv_task(task), holdout, 0)
    return len(train), len(hold)


def _split(
    spec: str,
    targets: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    task: str | None,
    holdout: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    ds, n_train = _load(spec, targets, features, task)
    if n_train is not None:
        fixed = (ds.n - n_train) / ds.n
        if holdout != fixed:
            raise ConfigError(
                f"{ds.name} has a fixed hold-out (fraction {fixed:g}); holdout {holdout:g} "
                "does not apply"
            )
        return np.arange(n_train), np.arange(n_train, ds.n)
    try:
        return datasets.split(ds, holdout, seed)
    except datasets.DatasetError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class ProblemData:
    """Train and hold-out arrays (the dataset's dtype, scaled if asked) and the training optimum.

    Without a hold-out the training arrays are the dataset's own read-only arrays, not copies.
    Classification: Y is int64 class indices (n,), `n_classes` > 0 and the model has that many
    outputs; `loss_star` is NaN (no closed form; `optimum_note` says why).
    """

    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_hold: np.ndarray
    Y_hold: np.ndarray
    loss_star: float  # least-squares optimum of the linear model on the training rows
    n_classes: int = 0
    optimum_note: str = ""

    @property
    def d(self) -> int:
        return self.X_train.shape[1]

    @property
    def k(self) -> int:
        return self.n_classes or self.Y_train.shape[1]


@lru_cache(maxsize=8)
def problem_data(
    spec: str,
    targets: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    holdout: float,
    seed: int,
    standardize: bool,
    task: str | None = None,
) -> ProblemData:
    task = _csv_task(task)
    ds, n_train = _load(spec, targets, features, task)
    if standardize and n_train is not None:
        raise ConfigError(f"{ds.name} has no features to standardise")
    part = datasets.split_rows(
        ds, *_split(spec, targets, features, task, holdout, seed), standardize=standardize
    )
    X_train, Y_train, X_hold, Y_hold = part.X_train, part.Y_train, part.X_holdout, part.Y_holdout
    loss_star, note = math.nan, "the task gives its own optimum"
    if n_train is None:  # a source's task knows its optimum; datasets' have a reference one
        best = datasets.reference_optimum(ds.task, X_train, Y_train)
        loss_star, note = float(best.loss), best.reason or ""
    n_classes = ds.n_classes if ds.task == "classification" else 0
    return ProblemData(ds.name, X_train, Y_train, X_hold, Y_hold, loss_star, n_classes, note)


@lru_cache(maxsize=4)
def device_tensors(
    key: tuple, device: str, dtype: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X_train, Y_train, X_hold, Y_hold) on the device, contiguous, in the run's dtype;
    class labels stay int64 (what `cross_entropy` takes) on every device."""
    data = problem_data(*key)
    return tuple(  # type: ignore[return-value]
        _tensor(a, DTYPE[dtype] if a.dtype.kind == "f" else torch.int64, device)
        for a in (data.X_train, data.Y_train, data.X_hold, data.Y_hold)
    )


def _tensor(a: np.ndarray, dtype: torch.dtype, device: str) -> torch.Tensor:
    """`a` as a contiguous `dtype` tensor on `device`; on the CPU in `a`'s dtype, `a` itself.

    Sharing is what keeps a 1e6-row float32 set in memory once rather than twice. The arrays
    may be the dataset's read-only ones, for which torch (having no read-only tensors) warns;
    sharing them is deliberate and safe because nothing writes to these tensors: the runner
    trains on a shuffled copy (its gather buffer) or on views, and models do not write into
    their inputs.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        shared = torch.from_numpy(a)
    return shared.to(device=device, dtype=dtype).contiguous()


def forget() -> None:
    """Drop every cached dataset, split and tensor (after a model wrote into shared tensors:
    the next run loads them afresh)."""
    for cached in (_loaded, split_sizes, problem_data, device_tensors):
        cached.cache_clear()


# ----------------------------------------------------------------------------------------------
# Sources: the data of the tasks that bring their own


@register_source(
    "quadratic_deep",
    "quadratic_deep",
    "DeepOBS's noisy quadratic, 100-D: 1000 training points; hold-out = the 896 test points "
    "DeepOBS evaluates (7 whole batches of 128); option variant=pytorch|tensorflow",
    variant="pytorch",
)
def _quadratic_deep(*, variant: str) -> tuple[datasets.Dataset, int]:
    """Rows: the training points, then the first 896 test points (DeepOBS's evaluated ones).
    X = Y = the points: the model (θ) ignores X, the loss compares θ with Y."""
    problem = datasets.quadratic_deep(variant)
    kept = (len(problem.X_test) // problem.batch_size) * problem.batch_size
    points = np.concatenate([problem.X_train, problem.X_test[:kept]])
    dim = points.shape[1]
    name = "quadratic_deep" + ("" if variant == "pytorch" else f":variant={variant}")
    ds = datasets.Dataset(
        name=name,
        X=points,
        Y=points,
        feature_names=tuple(f"x{i}" for i in range(dim)),
        target_names=tuple(f"y{i}" for i in range(dim)),
        description=f"DeepOBS quadratic_deep ({variant} variant)",
        default_holdout=kept / len(points),
    )
    return ds, len(problem.X_train)


def _function_source(name: str) -> None:
    fn = datasets.function_2d(name)

    @register_source(name, "function2d", f"2-D test function: {fn.description.rstrip('.')}")
    def build() -> tuple[datasets.Dataset, int]:
        """One dummy row: the objective is f(θ) alone; full batch, one step per epoch."""
        zero = np.zeros((1, 1))
        ds = datasets.Dataset(
            name=name,
            X=zero,
            Y=zero,
            feature_names=("none",),
            target_names=("f",),
            description=fn.description,
            default_holdout=0.0,
        )
        return ds, 1


for _name in datasets.functions_2d():
    _function_source(_name)


def describe_sources() -> dict[str, Any]:
    return {name: s.summary for name, s in SOURCES.items()}


# ----------------------------------------------------------------------------------------------
# Checked before any run: values the run's dtype cannot hold

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _first_beyond(arr: np.ndarray, limit: float) -> tuple[int, int] | None:
    """(row, column) of the first entry of a 2-D float array beyond +-limit, or None; two
    reductions, no n x d temporary."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    over = np.flatnonzero((arr.max(axis=0) > limit) | (arr.min(axis=0) < -limit))
    if len(over) == 0:
        return None
    col = int(over[0])
    return int(np.flatnonzero(np.abs(arr[:, col]) > limit)[0]), col


@lru_cache(maxsize=32)
def _beyond_float32(
    spec: str, targets: tuple[str, ...] | None, features: tuple[str, ...] | None, task: str | None
) -> tuple[str, str, int, float] | None:
    """(dataset, column, row, value) of the dataset's first value beyond float32's range."""
    ds, _ = _load(spec, targets, features, task)
    for arr, names in ((ds.X, ds.feature_names), (ds.Y, ds.target_names)):
        if arr.ndim == 2 and arr.dtype == np.float64:
            found = _first_beyond(arr, FLOAT32_MAX)
            if found is not None:
                row, col = found
                return ds.name, names[col], row, float(arr[row, col])
    return None


def check_dtype_range(key: tuple, dtype: str) -> None:
    """ConfigError if the data a run sees (`key`: its spec's `problem_key`) holds a value its
    `dtype` cannot: a float64 value beyond float32's +-3.4e38 would be inf before the first
    step. With `standardize`, the scaled features are what counts."""
    if dtype != "float32":
        return
    spec, targets, features, _holdout, _seed, standardize, task = key
    found = _beyond_float32(spec, targets, features, _csv_task(task))
    if found is None:
        return
    name, column, row, value = found
    where = f"column {column!r} of {name!r} holds {value:g} at row {row + 1}"
    if standardize:
        data = problem_data(*key)
        arrays = (data.X_train, data.Y_train, data.X_hold, data.Y_hold)
        if all(_first_beyond(a, FLOAT32_MAX) is None for a in arrays if a.ndim == 2):
            return  # the value was in a feature, and scaled into range
        where += " (after standardising the features)"
    raise ConfigError(
        f"{where}, beyond float32's range (+-3.4e38): the run would start from inf; "
        "run with --dtype float64 or rescale the column"
    )


def check_dtype_ranges(specs: Iterable[Any]) -> None:
    """`check_dtype_range` for each distinct (problem, dtype) of `specs` (RunSpecs)."""
    for key, dtype in dict.fromkeys((s.problem_key, s.dtype) for s in specs):
        check_dtype_range(key, dtype)
