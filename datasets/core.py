"""The `Dataset` record every loader returns, the package's error type and its size limit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


class DatasetError(ValueError):
    """A dataset could not be built or loaded; the message is one line naming the problem."""


# The kinds of learning problem a Dataset can pose. The task decides Y's layout (below) and which
# reference optimum exists (`datasets.optimum.reference_optimum`).
TASKS = ("regression", "classification")

# Largest total size, in bytes, of the arrays a generator may allocate for one dataset. Checked
# before allocating, so `synthetic:n=1e12` is a one-line error instead of an out-of-memory kill;
# 4 GiB leaves room for a hold-out copy and the device tensors on a 24 GiB machine.
MAX_ARRAY_BYTES = 4 * 2**30


def format_bytes(nbytes: float) -> str:
    """`nbytes` in binary units for messages: '512 B', '3.0 GiB', '7.3 TiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def check_size(label: str, nbytes: int, what: str, detail: str = "") -> None:
    """Raise `DatasetError` when allocating `nbytes` for `what` would exceed `MAX_ARRAY_BYTES`."""
    if nbytes > MAX_ARRAY_BYTES:
        parts = f" ({detail})" if detail else ""
        raise DatasetError(
            f"{label}: {what} would take {format_bytes(nbytes)}{parts}, over the "
            f"{format_bytes(MAX_ARRAY_BYTES)} limit (datasets.core.MAX_ARRAY_BYTES)"
        )


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


def _as_labels(name: str, a: object) -> np.ndarray:
    """Class indices as a read-only int64 vector; floats are refused, not rounded."""
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(
            f"dataset {name!r}: classification Y must hold integer class indices, "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise DatasetError(
            f"dataset {name!r}: classification Y must be 1-D (one class index per row), "
            f"got shape {arr.shape}"
        )
    view = arr.astype(np.int64, copy=False).view()
    view.setflags(write=False)
    return view


def _check_classes(
    name: str, classification: bool, classes: tuple[str, ...], labels: np.ndarray
) -> tuple[str, ...]:
    if not classification:
        if classes:
            raise DatasetError(f"dataset {name!r}: class_names given for a regression task")
        return classes
    if len(classes) < 2:
        raise DatasetError(
            f"dataset {name!r}: classification needs at least 2 class names, got {len(classes)}"
        )
    if not all(isinstance(s, str) and s for s in classes):
        raise DatasetError(f"dataset {name!r}: class names must be non-empty strings")
    repeated = sorted(s for s, count in Counter(classes).items() if count > 1)
    if repeated:
        raise DatasetError(f"dataset {name!r}: duplicated class names {repeated}")
    n_classes = len(classes)
    out_of_range = (labels < 0) | (labels >= n_classes)
    if out_of_range.any():
        bad = int(labels[out_of_range][0])
        raise DatasetError(
            f"dataset {name!r}: class index {bad} out of range for {n_classes} classes"
        )
    return classes


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
    """Features `X` (n x d, float) and targets `Y` of a regression or classification task.

    `task="regression"`: `Y` is float (n x k), the dtype of `X`, 2-D even for a single
    target, so every model is `X @ W.T + b` with `W` of shape (k, d); `class_names` is empty.

    `task="classification"`: `Y` is int64 of shape (n,), the class index of each row in
    0..C-1 (the target layout of `torch.nn.functional.cross_entropy`); `class_names[c]` names
    class c, C = `n_classes` >= 2; `target_names` is the one label column's name. Class
    indices follow the sorted order of the original labels: numeric order for integer labels,
    code-point order for text. A linear model has `k = n_classes` outputs (logits).

    `default_holdout` is the fraction of rows held out when the user does not say (0.0 for
    tables too small to spare a row). Equality is identity: two loads of the same spec are
    different objects with equal arrays.
    """

    name: str
    X: np.ndarray = field(repr=False)
    Y: np.ndarray = field(repr=False)
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    description: str
    default_holdout: float = 0.2
    task: str = "regression"
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DatasetError(f"dataset name must be a non-empty string, got {self.name!r}")
        name = self.name
        if self.task not in TASKS:
            raise DatasetError(
                f"dataset {name!r}: task must be one of {', '.join(TASKS)}, got {self.task!r}"
            )
        classification = self.task == "classification"
        X = _as_float_matrix(name, "X", self.X)
        if classification:
            Y = _as_labels(name, self.Y)
            k = 1  # one label column
        else:
            Y = _as_float_matrix(name, "Y", self.Y)
            if X.dtype != Y.dtype:
                raise DatasetError(
                    f"dataset {name!r}: X and Y must share a dtype, got {X.dtype} and {Y.dtype}"
                )
            k = Y.shape[1]
        n, d = X.shape
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
        classes = _check_classes(name, classification, tuple(self.class_names), Y)
        for which, names, width in (("feature", features, d), ("target", targets, k)):
            if len(names) != width:
                raise DatasetError(
                    f"dataset {name!r}: {len(names)} {which} names for {width} {which} columns"
                )
            if not all(isinstance(s, str) and s for s in names):
                raise DatasetError(f"dataset {name!r}: {which} names must be non-empty strings")
        counts = Counter(features + targets)
        duplicated = sorted(s for s, count in counts.items() if count > 1)
        if duplicated:
            raise DatasetError(f"dataset {name!r}: duplicated column names {duplicated}")
        # Class indices are integers, finite by construction; float targets are checked.
        checked = [("X", X, features)] + ([] if classification else [("Y", Y, targets)])
        for which, arr, names in checked:
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
        object.__setattr__(self, "class_names", classes)

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
        """Number of model outputs: target columns (regression) or classes (classification)."""
        return self.n_classes if self.task == "classification" else self.Y.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.class_names)

    def tensors(
        self, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of `X` and `Y` as torch tensors (`dtype` defaults to the arrays' dtype).

        `dtype` applies to `X`, and to `Y` for regression; class indices stay int64 (torch.long),
        the type `cross_entropy` wants. Copies on purpose: `torch.from_numpy`/`torch.as_tensor`
        on the read-only arrays warn (an error under the test suite's `filterwarnings = error`)
        and would share memory.
        """
        import torch

        y_dtype = torch.long if self.task == "classification" else dtype
        return (
            torch.tensor(self.X, dtype=dtype, device=device),
            torch.tensor(self.Y, dtype=y_dtype, device=device),
        )
