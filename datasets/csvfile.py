"""Any user CSV file with a header row, as a `Dataset`.

Row numbers in messages count data rows from 1 (the header is not a row).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from datasets.core import Dataset, DatasetError

if TYPE_CHECKING:
    import pandas as pd

# Tables this small cannot spare rows for a hold-out (the 5-row seed tables use 0.0 too).
_MIN_ROWS_FOR_HOLDOUT = 10


def load_csv(
    path: str | os.PathLike[str],
    targets: Sequence[str] | None,
    features: Sequence[str] | None = None,
) -> Dataset:
    """Load a CSV file: the `targets` columns become `Y`, the `features` columns `X`.

    `features` defaults to every other column holding numbers. Columns in which no value is a
    number (names, dates, empty columns) are skipped silently; a column mixing numbers with
    text is an error, since it is almost always a typo in the data: name the features
    explicitly to leave it out. Used columns must be fully numeric, with no missing or
    infinite values. The dataset's name is the file's stem; its default hold-out is 0.2, or
    0.0 below 10 rows.
    """
    path = Path(path)
    label = path.name
    targets = _as_names(targets)
    features = None if features is None else _as_names(features)
    frame = _read(path)
    columns = [str(c) for c in frame.columns]
    available = ", ".join(columns)
    if not targets:
        raise DatasetError(
            f"no targets given for {label!r}; name them (--targets on the command line) from its "
            f"columns: {available}"
        )
    _check_unique("target", targets, label)
    for col in targets:
        if col not in columns:
            raise DatasetError(
                f"target column {col!r} not found in {label!r}; columns: {available}"
            )
    if features is None:
        features = [c for c in columns if c not in targets and _has_number(frame[c], c, label)]
        if not features:
            raise DatasetError(
                f"no numeric feature columns left in {label!r} besides the targets; "
                f"columns: {available}"
            )
    else:
        if not features:
            raise DatasetError(f"no feature columns given for {label!r}")
        _check_unique("feature", features, label)
        for col in features:
            if col not in columns:
                raise DatasetError(
                    f"feature column {col!r} not found in {label!r}; columns: {available}"
                )
            if col in targets:
                raise DatasetError(f"column {col!r} of {label!r} is both a target and a feature")
    X = np.column_stack([_numeric(frame[c], c, label) for c in features])
    Y = np.column_stack([_numeric(frame[c], c, label) for c in targets])
    return Dataset(
        name=path.stem,
        X=X,
        Y=Y,
        feature_names=tuple(features),
        target_names=tuple(targets),
        description=f"CSV file {path} ({len(frame)} rows)",
        default_holdout=0.2 if len(frame) >= _MIN_ROWS_FOR_HOLDOUT else 0.0,
    )


def _as_names(names: Sequence[str] | str | None) -> list[str]:
    # A bare string is a Sequence[str] too; treat it as one column, not as its characters.
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    return [str(s) for s in names]


def _check_unique(which: str, names: list[str], label: str) -> None:
    repeated = sorted({s for s in names if names.count(s) > 1})
    if repeated:
        raise DatasetError(f"{which} columns {repeated} of {label!r} are listed more than once")


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise DatasetError(f"CSV file not found: {str(path)!r}")
    if not path.is_file():
        raise DatasetError(f"not a file: {str(path)!r}")
    try:
        # skipinitialspace: "a, b" headers and values are common in hand-written files.
        # low_memory=False: type each column from all its rows, never chunk by chunk.
        frame = pd.read_csv(path, skipinitialspace=True, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"CSV file {path.name!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot parse CSV file {path.name!r}: {first_line}") from None
    if len(frame) == 0:
        raise DatasetError(f"CSV file {path.name!r} has a header but no data rows")
    return frame


def _parsed(column: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return column.astype(np.float64)
    if pd.api.types.is_numeric_dtype(column):
        return column
    return pd.to_numeric(column, errors="coerce")


def _has_number(column: pd.Series, name: str, label: str) -> bool:
    """Whether a column counts as numeric when features are chosen automatically."""
    parsed = _parsed(column)
    if parsed.notna().sum() == 0:
        return False
    _first_text(column, parsed, name, label, hint="; pass features=[...] to leave it out")
    return True


def _first_text(
    column: pd.Series, parsed: pd.Series, name: str, label: str, hint: str = ""
) -> None:
    text = column.notna() & parsed.isna()
    if text.any():
        row = int(np.flatnonzero(text.to_numpy())[0])
        raise DatasetError(
            f"column {name!r} of {label!r} has a non-numeric value {column.iloc[row]!r} at "
            f"row {row + 1}{hint}"
        )


def _numeric(column: pd.Series, name: str, label: str) -> np.ndarray:
    parsed = _parsed(column)
    _first_text(column, parsed, name, label)
    values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "a missing value" if np.isnan(values[row]) else f"an infinite value ({values[row]})"
        raise DatasetError(f"column {name!r} of {label!r} has {what} at row {row + 1}")
    return values
