"""Hold-out splits and feature standardisation."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from datasets.core import Dataset, DatasetError


def split(ds: Dataset, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices `(train_idx, holdout_idx)`, disjoint, covering all rows, each sorted int64.

    The hold-out size is `holdout * n` rounded to the nearest integer, then clamped so that
    at least one row trains and, when `holdout > 0`, at least one row is held out (an error
    when the dataset has too few rows for both). `holdout = 0` gives an empty hold-out.

    Deterministic in `(seed, ds.name)`: the generator is seeded from the seed and a BLAKE2
    digest of the name (Python's `hash()` of a str changes between processes), so the same
    seed gives different but reproducible splits of different datasets.

    Classification datasets are split stratified: the hold-out size is the same, and it is
    shared out among the classes in proportion to their row counts (class c gets
    `floor(n_c * h / n)` rows, and the `h - sum` rows left over go one each to the classes with
    the largest remainders `n_c * h mod n`, ties to the lower class index); the rows of each
    class are then drawn by one permutation per class, in class order. So class frequencies
    in both parts match the dataset's to within one row per class. A class with a single row
    can still land wholly in the hold-out. Regression splits are unchanged by this.
    """
    if isinstance(holdout, bool) or not isinstance(holdout, Real):
        raise DatasetError(f"holdout must be a number in [0, 1), got {holdout!r}")
    if not (0.0 <= holdout < 1.0):
        raise DatasetError(f"holdout must be in [0, 1), got {holdout}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise DatasetError(f"split seed must be a non-negative integer, got {seed!r}")
    n = ds.n
    if holdout == 0.0:
        return np.arange(n, dtype=np.int64), np.empty(0, dtype=np.int64)
    if n < 2:
        raise DatasetError(
            f"cannot hold out rows of {ds.name!r}: it has {n} row, and training needs one"
        )
    n_holdout = min(max(math.floor(holdout * n + 0.5), 1), n - 1)
    digest = hashlib.blake2b(ds.name.encode("utf-8"), digest_size=8).digest()
    rng = np.random.default_rng([int(seed), int.from_bytes(digest, "little")])
    if ds.task == "classification":
        chosen = _stratified_holdout(ds.Y, ds.n_classes, n_holdout, rng)
    else:
        chosen = rng.permutation(n)[:n_holdout]
    # Sorted, so rows keep their file order within each part and gathers are cache-friendly.
    holdout_idx = np.sort(chosen).astype(np.int64)
    in_holdout = np.zeros(n, dtype=bool)
    in_holdout[holdout_idx] = True
    train_idx = np.flatnonzero(~in_holdout).astype(np.int64)
    return train_idx, holdout_idx


def _stratified_holdout(
    labels: np.ndarray, n_classes: int, n_holdout: int, rng: np.random.Generator
) -> np.ndarray:
    """Hold-out rows drawn per class, in proportion to class sizes (see `split`)."""
    n = len(labels)
    counts = np.bincount(labels, minlength=n_classes).astype(np.int64)
    # Integer arithmetic, so the shares and the tie-breaks are exact and platform-independent.
    take, remainder = np.divmod(counts * n_holdout, n)
    left = n_holdout - int(take.sum())
    take[np.argsort(-remainder, kind="stable")[:left]] += 1
    # Rows grouped by class, each group in row order: one sort instead of a scan per class.
    by_class = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = [
        by_class[starts[c] : starts[c + 1]][rng.permutation(int(counts[c]))[: int(take[c])]]
        for c in range(n_classes)
    ]
    return np.concatenate(parts)


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature centring and scaling, `(X - mean) / scale`, fitted on training rows.

    Columns that are constant on the training rows get `scale = 1` (centred, not divided by
    zero), as scikit-learn's StandardScaler does.
    """

    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        # Copies (these are d numbers), so freezing them cannot freeze a caller's array.
        mean = np.array(self.mean, dtype=np.float64)
        scale = np.array(self.scale, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise DatasetError(
                f"Standardizer needs 1-D mean and scale of equal length, "
                f"got {mean.shape} and {scale.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise DatasetError("Standardizer needs finite mean and finite positive scale")
        for a in (mean, scale):
            a.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)

    @classmethod
    def fit(cls, X_train: np.ndarray) -> Standardizer:
        """Mean and standard deviation of each column of the training features."""
        X_train = np.asarray(X_train)
        if X_train.ndim != 2 or X_train.shape[0] < 1:
            raise DatasetError(f"Standardizer.fit needs a non-empty 2-D array, got {X_train.shape}")
        mean = X_train.mean(axis=0, dtype=np.float64)
        std = X_train.std(axis=0, dtype=np.float64)
        # An exact test for constant columns: a computed std of a constant column can be a
        # rounding-level 1e-17 rather than 0, and dividing by it would blow the column up.
        constant = np.ptp(X_train, axis=0) == 0
        # The column's own value, not its computed mean (0.1 * 3 / 3 != 0.1), so a constant
        # column becomes exactly zero.
        mean = np.where(constant, X_train[0], mean)
        return cls(mean=mean, scale=np.where(constant, 1.0, std))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """`(X - mean) / scale`, in the dtype of `X` (float64 arithmetic)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise DatasetError(
                f"Standardizer fitted on {self.mean.shape[0]} features, got shape {X.shape}"
            )
        out_dtype = X.dtype if X.dtype == np.float32 else np.float64
        return ((X - self.mean) / self.scale).astype(out_dtype, copy=False)


def standardize(X_train: np.ndarray, *X_other: np.ndarray) -> tuple[np.ndarray, ...]:
    """Standardise `X_train` and each of `X_other` with statistics of `X_train` only.

    Fitting on the training rows alone keeps the hold-out unseen: statistics that included
    hold-out rows would leak information about them into training, and hold-out loss would
    look better than it will on new data.
    """
    scaler = Standardizer.fit(X_train)
    return tuple(scaler.transform(X) for X in (X_train, *X_other))


@dataclass(frozen=True, eq=False)
class Split:
    """Training and hold-out arrays of one dataset, made by `make_split`.

    Targets are never standardised, so losses stay in the units of the data. The arrays are
    read-only, like the dataset's.
    """

    dataset: Dataset
    train_idx: np.ndarray = field(repr=False)
    holdout_idx: np.ndarray = field(repr=False)
    X_train: np.ndarray = field(repr=False)
    Y_train: np.ndarray = field(repr=False)
    X_holdout: np.ndarray = field(repr=False)
    Y_holdout: np.ndarray = field(repr=False)
    standardizer: Standardizer | None = None

    def __post_init__(self) -> None:
        for name in ("train_idx", "holdout_idx", "X_train", "Y_train", "X_holdout", "Y_holdout"):
            a = np.asarray(getattr(self, name)).view()
            a.setflags(write=False)
            object.__setattr__(self, name, a)


def make_split(
    ds: Dataset, holdout: float | None = None, seed: int = 0, *, standardize: bool = False
) -> Split:
    """Split `ds` (`holdout=None` means `ds.default_holdout`), optionally standardising X.

    With `standardize=True` the features are scaled by a `Standardizer` fitted on the
    training rows only (see `standardize` for why).
    """
    fraction = ds.default_holdout if holdout is None else holdout
    train_idx, holdout_idx = split(ds, fraction, seed)
    return split_rows(ds, train_idx, holdout_idx, standardize=standardize)


def split_rows(
    ds: Dataset, train_idx: np.ndarray, holdout_idx: np.ndarray, *, standardize: bool = False
) -> Split:
    """The `Split` of `ds` into the given rows (from `split`, or a source's fixed split).

    When every row trains, in order, the training arrays are the dataset's own (read-only)
    arrays, not copies: a 1e6-row set is then held once, not twice.
    """
    every_row = len(holdout_idx) == 0 and np.array_equal(train_idx, np.arange(ds.n))
    X_train = ds.X if every_row else ds.X[train_idx]
    Y_train = ds.Y if every_row else ds.Y[train_idx]
    X_holdout = ds.X[holdout_idx]
    scaler = None
    if standardize:
        scaler = Standardizer.fit(X_train)
        X_train, X_holdout = scaler.transform(X_train), scaler.transform(X_holdout)
    return Split(
        dataset=ds,
        train_idx=train_idx,
        holdout_idx=holdout_idx,
        X_train=X_train,
        Y_train=Y_train,
        X_holdout=X_holdout,
        Y_holdout=ds.Y[holdout_idx],
        standardizer=scaler,
    )
