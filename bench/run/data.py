"""The data side of a run: the dataset, its hold-out split, scaling and the known optimum.

Everything here is a deterministic function of its arguments, so it is cached: the many runs
of a suite that share a dataset, split and device load and transfer it once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

import datasets
from bench.errors import ConfigError

DTYPE = {"float32": torch.float32, "float64": torch.float64}


@lru_cache(maxsize=32)
def load_dataset(
    spec: str, targets: tuple[str, ...] | None = None, features: tuple[str, ...] | None = None
) -> datasets.Dataset:
    try:
        return datasets.load(spec, targets=targets, features=features)
    except datasets.DatasetError as exc:
        raise ConfigError(str(exc)) from None


@lru_cache(maxsize=64)
def split_sizes(
    spec: str, targets: tuple[str, ...] | None, features: tuple[str, ...] | None, holdout: float
) -> tuple[int, int]:
    """(train rows, hold-out rows); the sizes do not depend on the seed."""
    train, hold = _split(load_dataset(spec, targets, features), holdout, 0)
    return len(train), len(hold)


def _split(ds: datasets.Dataset, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        return datasets.split(ds, holdout, seed)
    except datasets.DatasetError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class ProblemData:
    """Train and hold-out arrays (the dataset's dtype, scaled if asked) and the training optimum.

    Without a hold-out the training arrays are the dataset's own read-only arrays, not copies.
    """

    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_hold: np.ndarray
    Y_hold: np.ndarray
    loss_star: float  # least-squares optimum of the linear model on the training rows

    @property
    def d(self) -> int:
        return self.X_train.shape[1]

    @property
    def k(self) -> int:
        return self.Y_train.shape[1]


@lru_cache(maxsize=8)
def problem_data(
    spec: str,
    targets: tuple[str, ...] | None,
    features: tuple[str, ...] | None,
    holdout: float,
    seed: int,
    standardize: bool,
) -> ProblemData:
    ds = load_dataset(spec, targets, features)
    train, hold = _split(ds, holdout, seed)
    X_train, X_hold = _rows(ds.X, train), ds.X[hold]
    if standardize:
        scaler = datasets.Standardizer.fit(X_train)
        X_train, X_hold = scaler.transform(X_train), scaler.transform(X_hold)
    Y_train, Y_hold = _rows(ds.Y, train), ds.Y[hold]
    _, _, loss_star = datasets.closed_form(X_train, Y_train)
    return ProblemData(ds.name, X_train, Y_train, X_hold, Y_hold, float(loss_star))


def _rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """`a[idx]`, except that all rows in order (no hold-out) is `a` itself rather than a copy."""
    if len(idx) == len(a):  # split() returns sorted, disjoint indices: this is arange(n)
        return a
    return a[idx]


@lru_cache(maxsize=4)
def device_tensors(
    key: tuple, device: str, dtype: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X_train, Y_train, X_hold, Y_hold) on the device, contiguous, in the run's dtype."""
    data = problem_data(*key)
    return tuple(  # type: ignore[return-value]
        _tensor(a, DTYPE[dtype], device)
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
