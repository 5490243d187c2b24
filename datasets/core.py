"""The `Dataset` record every loader returns, and the package's error type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


class DatasetError(ValueError):
    """A dataset could not be built or loaded; the message is one line naming the problem."""


# float32 is allowed so a very large synthetic set can be held at half the memory; everything
# else (ints from a table, bools) is widened to float64, the dtype the optimum is computed in.
_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _as_float_matrix(name: str, which: str, a: object) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype not in _FLOAT_DTYPES:
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
            raise DatasetError(
                f"dataset {name!r}: {which} must hold real numbers, got dtype {arr.dtype}"
            )
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise DatasetError(
            f"dataset {name!r}: {which} must be 2-D (rows x columns), got shape {arr.shape}"
        )
    # A read-only view rather than a copy: no extra memory for a million-row set, and any write
    # through the dataset (e.g. an in-place shuffle by one run) raises instead of corrupting
    # the data the next run sees.
    view = arr.view()
    view.setflags(write=False)
    return view


def _first_non_finite(a: np.ndarray) -> tuple[int, int, int] | None:
    """(count, row, column) of the non-finite entries of `a`, or None when all are finite."""
    # One pass with no n x d boolean temporary: NaN and inf always reach the sum. A finite
    # sum proves all entries finite; an overflowing one falls through to the exact check.
    if np.isfinite(a.sum()):
        return None
    bad = ~np.isfinite(a)
    count = int(np.count_nonzero(bad))
    if count == 0:
        return None
    row, col = np.argwhere(bad)[0]
    return count, int(row), int(col)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A regression dataset: features `X` (n x d) and targets `Y` (n x k), read-only.

    `Y` is 2-D even for a single target, so every model is `X @ W.T + b` with `W` of shape
    (k, d). `default_holdout` is the fraction of rows held out when the user does not say
    (0.0 for tables too small to spare a row). Equality is identity: two loads of the same
    spec are different objects with equal arrays.
    """

    name: str
    X: np.ndarray = field(repr=False)
    Y: np.ndarray = field(repr=False)
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    description: str
    default_holdout: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DatasetError(f"dataset name must be a non-empty string, got {self.name!r}")
        name = self.name
        X = _as_float_matrix(name, "X", self.X)
        Y = _as_float_matrix(name, "Y", self.Y)
        if X.dtype != Y.dtype:
            raise DatasetError(
                f"dataset {name!r}: X and Y must share a dtype, got {X.dtype} and {Y.dtype}"
            )
        n, d = X.shape
        k = Y.shape[1]
        if n < 1:
            raise DatasetError(f"dataset {name!r} has no rows")
        if Y.shape[0] != n:
            raise DatasetError(f"dataset {name!r}: X has {n} rows but Y has {Y.shape[0]}")
        if d < 1 or k < 1:
            raise DatasetError(
                f"dataset {name!r} needs at least one feature and one target, got d={d}, k={k}"
            )
        features = tuple(self.feature_names)
        targets = tuple(self.target_names)
        for which, names, width in (("feature", features, d), ("target", targets, k)):
            if len(names) != width:
                raise DatasetError(
                    f"dataset {name!r}: {len(names)} {which} names for {width} {which} columns"
                )
            if not all(isinstance(s, str) and s for s in names):
                raise DatasetError(f"dataset {name!r}: {which} names must be non-empty strings")
        duplicated = sorted({s for s in features + targets if (features + targets).count(s) > 1})
        if duplicated:
            raise DatasetError(f"dataset {name!r}: duplicated column names {duplicated}")
        for which, arr, names in (("X", X, features), ("Y", Y, targets)):
            found = _first_non_finite(arr)
            if found is not None:
                count, row, col = found
                raise DatasetError(
                    f"dataset {name!r}: {which} has {count} NaN/inf values, the first at row "
                    f"{row} column {names[col]!r}"
                )
        if not isinstance(self.description, str) or "\n" in self.description:
            raise DatasetError(f"dataset {name!r}: description must be a single line of text")
        holdout = self.default_holdout
        valid = isinstance(holdout, (int, float)) and not isinstance(holdout, bool)
        if not (valid and 0 <= holdout < 1):
            raise DatasetError(
                f"dataset {name!r}: default_holdout must be in [0, 1), got {holdout}"
            )
        # Frozen dataclass: normalised values are stored through object.__setattr__, once, here.
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)
        object.__setattr__(self, "feature_names", features)
        object.__setattr__(self, "target_names", targets)
        object.__setattr__(self, "default_holdout", float(holdout))

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Number of features."""
        return self.X.shape[1]

    @property
    def k(self) -> int:
        """Number of targets."""
        return self.Y.shape[1]

    def tensors(
        self, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of `X` and `Y` as torch tensors (`dtype` defaults to the arrays' dtype).

        Copies on purpose: `torch.from_numpy`/`torch.as_tensor` on the read-only arrays warn
        (an error under the test suite's `filterwarnings = error`) and would share memory.
        """
        import torch

        return (
            torch.tensor(self.X, dtype=dtype, device=device),
            torch.tensor(self.Y, dtype=dtype, device=device),
        )
