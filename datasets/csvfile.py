"""Any user CSV file with a header row, as a regression or classification `Dataset`.

Parsing is strict: the file is first scanned with Python's `csv` module (the dialect pandas
uses: comma, double quotes, spaces after a comma skipped, blank lines skipped) to check its
structure, because pandas papers over two mistakes: a data row with one field more than the
header makes pandas take the first column as the index, shifting every column by one, and
repeated header names are renamed `x.1`. Every row must have exactly the header's number of
fields, and header names must be unique. pandas then types the columns, and the two reads
must agree on the header and the row count.

Row numbers in messages count data rows from 1 (the header is not a row); structural errors
also give the line of the file (the header is line 1).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from datasets.core import TASKS, Dataset, DatasetError

if TYPE_CHECKING:
    import pandas as pd

# Tables this small cannot spare rows for a hold-out (the 5-row seed tables use 0.0 too).
_MIN_ROWS_FOR_HOLDOUT = 10


def load_csv(
    path: str | os.PathLike[str],
    targets: Sequence[str] | None,
    features: Sequence[str] | None = None,
    *,
    task: str = "regression",
) -> Dataset:
    """Load a CSV file: the `targets` columns become `Y`, the `features` columns `X`.

    `features` defaults to every other column holding numbers. Columns in which no value is a
    number (names, dates, empty columns) are skipped silently; a column mixing numbers with
    text is an error, since it is almost always a typo in the data: name the features
    explicitly to leave it out. Used columns must be fully numeric, with no missing or
    infinite values. The dataset's name is the file's stem; its default hold-out is 0.2, or
    0.0 below 10 rows.

    `task="classification"`: exactly one target, the label column, holding integers or text
    (not both); labels are mapped to class indices 0..C-1 in sorted order (numeric order for
    integers, code-point order for text), and `class_names` keeps them as strings. A missing
    label (an empty cell or one of pandas' NA spellings such as "NA"), a non-integer number,
    labels differing only in surrounding spaces, or fewer than 2 classes is an error.
    """
    if task not in TASKS:
        raise DatasetError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    path = Path(path)
    label = path.name
    targets = _as_names(targets)
    features = None if features is None else _as_names(features)
    frame = _read(path)
    columns = [str(c) for c in frame.columns]
    known = set(columns)  # membership tests stay O(1) for files with thousands of columns
    available = ", ".join(columns)
    if not targets:
        raise DatasetError(
            f"no targets given for {label!r}; name them (--targets on the command line) from its "
            f"columns: {available}"
        )
    _check_unique("target", targets, label)
    for col in targets:
        if col not in known:
            raise DatasetError(
                f"target column {col!r} not found in {label!r}; columns: {available}"
            )
    if task == "classification" and len(targets) != 1:
        raise DatasetError(
            f"classification needs exactly one target (label) column in {label!r}, "
            f"got {len(targets)}: {', '.join(targets)}"
        )
    if features is None:
        # Numeric-dtype columns are decided in one vectorised pass: per-column pandas calls
        # cost ~0.5 ms each, which a 20,000-column file would pay many times over.
        numeric = _numeric_dtype_columns(frame)
        present = {str(c): bool(v) for c, v in frame.notna().any().items()}
        features = [
            c
            for c in columns
            if c not in targets
            and (present[c] if c in numeric else _has_number(frame[c], c, label))
        ]
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
            if col not in known:
                raise DatasetError(
                    f"feature column {col!r} not found in {label!r}; columns: {available}"
                )
            if col in targets:
                raise DatasetError(f"column {col!r} of {label!r} is both a target and a feature")
    X = _matrix(frame, features, label)
    class_names: tuple[str, ...] = ()
    if task == "classification":
        Y, class_names = _labels(frame[targets[0]], targets[0], label)
    else:
        hint = "; for class labels load it with task='classification'"
        Y = _matrix(frame, targets, label, hint)
    return Dataset(
        name=path.stem,
        X=X,
        Y=Y,
        feature_names=tuple(features),
        target_names=tuple(targets),
        description=f"CSV file {path} ({len(frame)} rows)",
        default_holdout=0.2 if len(frame) >= _MIN_ROWS_FOR_HOLDOUT else 0.0,
        task=task,
        class_names=class_names,
    )


def _as_names(names: Sequence[str] | str | None) -> list[str]:
    # A bare string is a Sequence[str] too; treat it as one column, not as its characters.
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    return [str(s) for s in names]


def _check_unique(which: str, names: list[str], label: str) -> None:
    repeated = sorted(s for s, count in Counter(names).items() if count > 1)
    if repeated:
        raise DatasetError(f"{which} columns {repeated} of {label!r} are listed more than once")


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise DatasetError(f"CSV file not found: {str(path)!r}")
    if not path.is_file():
        raise DatasetError(f"not a file: {str(path)!r}")
    header, rows = _scan(path)
    try:
        # skipinitialspace: "a, b" headers and values are common in hand-written files.
        # low_memory=False: type each column from all its rows, never chunk by chunk.
        # index_col=False: never take the first column as an index (the scan has already
        # refused rows whose width could make pandas do so).
        frame = pd.read_csv(path, skipinitialspace=True, low_memory=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"CSV file {path.name!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"cannot parse CSV file {path.name!r}: {first_line}") from None
    # The two readers must agree, or one of them has guessed.
    expected = _column_names(header)
    got = [str(c) for c in frame.columns]
    if len(frame) != rows:
        raise DatasetError(
            f"cannot parse CSV file {path.name!r}: pandas reads {len(frame)} data rows, the csv "
            f"module {rows}"
        )
    if got != expected:
        width = max(len(got), len(expected))
        got, expected = got + [""] * (width - len(got)), expected + [""] * (width - len(expected))
        i = next(i for i in range(width) if got[i] != expected[i])
        raise DatasetError(
            f"cannot parse CSV file {path.name!r}: pandas reads column {i + 1} as {got[i]!r}, "
            f"the csv module as {expected[i]!r}"
        )
    return frame


def _scan(path: Path) -> tuple[list[str], int]:
    """The header's names and the number of data rows, checking widths and unique names."""
    label = path.name
    header: list[str] | None = None
    rows = 0
    line = 1
    try:
        # utf-8-sig: a byte-order mark is not part of the first column's name (pandas agrees).
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, skipinitialspace=True, strict=True)
            for record in reader:
                start, line = line, reader.line_num + 1
                # A blank or whitespace-only line: pandas skips those too.
                if not record or record == [""]:
                    continue
                if header is None:
                    header = record
                    _check_header(header, label)
                    continue
                if len(record) != len(header):
                    raise DatasetError(
                        f"cannot parse CSV file {label!r}: line {start} (data row {rows + 1}) "
                        f"has {len(record)} fields but the header has {len(header)}"
                    )
                rows += 1
    except csv.Error as exc:
        raise DatasetError(f"cannot parse CSV file {label!r}: line {line}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"cannot parse CSV file {label!r}: not UTF-8 text ({exc})") from None
    if header is None:
        raise DatasetError(f"CSV file {label!r} is empty")
    if rows == 0:
        raise DatasetError(f"CSV file {label!r} has a header but no data rows")
    return header, rows


def _column_names(header: list[str]) -> list[str]:
    """The names pandas gives the header's columns: an empty cell is "Unnamed: <position>"."""
    return [name or f"Unnamed: {i}" for i, name in enumerate(header)]


def _check_header(header: list[str], label: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(_column_names(header), start=1):
        if name in seen:
            raise DatasetError(
                f"CSV file {label!r}: column name {name!r} appears twice in the header "
                f"(columns {seen[name]} and {i})"
            )
        seen[name] = i


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


def _numeric_dtype_columns(frame: pd.DataFrame) -> set[str]:
    import pandas as pd

    return {str(c) for c, dtype in frame.dtypes.items() if pd.api.types.is_numeric_dtype(dtype)}


def _matrix(frame: pd.DataFrame, names: list[str], label: str, hint: str = "") -> np.ndarray:
    """The named columns as one float64 matrix (n x len(names)), every cell a finite number.

    The first bad column in `names` order is reported: a text cell (`hint` appended), else
    its first missing or infinite cell. Numeric-dtype columns are converted in one block.
    """
    numeric = _numeric_dtype_columns(frame)
    out = np.empty((len(frame), len(names)))
    block = [j for j, c in enumerate(names) if c in numeric]
    if block:
        out[:, block] = frame[[names[j] for j in block]].to_numpy(np.float64, na_value=np.nan)
    text_error: dict[int, DatasetError] = {}
    for j, c in enumerate(names):
        if c in numeric:
            continue
        column = frame[c]
        parsed = _parsed(column)
        try:
            _first_text(column, parsed, c, label, hint)
        except DatasetError as exc:
            text_error[j] = exc
        out[:, j] = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    # NaN and inf reach a column's sum, so only columns with a non-finite sum are scanned
    # (a finite column whose sum overflows is scanned too, and passes).
    suspects = set(np.flatnonzero(~np.isfinite(out.sum(axis=0))).tolist()) | set(text_error)
    for j in sorted(suspects):
        if j in text_error:
            raise text_error[j]
        values = out[:, j]
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = (
                "a missing value" if np.isnan(values[row]) else f"an infinite value ({values[row]})"
            )
            raise DatasetError(f"column {names[j]!r} of {label!r} has {what} at row {row + 1}")
    return out


# float64 holds every integer up to 2**53; beyond, neighbouring integers share one value.
_EXACT_FLOAT_INT = 2.0**53


def _rows(mask: np.ndarray, shown: int = 5) -> str:
    """'at rows 2, 5 and 3 more' for the True entries of `mask` (rows count from 1)."""
    rows = np.flatnonzero(mask) + 1
    listed = ", ".join(str(r) for r in rows[:shown])
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    return f"at row{'s' if len(rows) > 1 else ''} {listed}{more}"


def _fits_int64(value: object) -> bool:
    try:
        return -(2**63) <= int(str(value)) < 2**63
    except ValueError:
        return False


def _refuse_wide(where: str, wide: np.ndarray) -> None:
    """DatasetError if any label (`wide` marks them) is an integer beyond int64."""
    if wide.any():
        raise DatasetError(
            f"{where} has integer labels beyond the 64-bit range ({_rows(wide)}); class "
            "labels must be integers within +-9.2e18, or text (e.g. with a letter in front)"
        )


def _labels(column: pd.Series, name: str, label: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices (int64) and class names of a label column, in sorted label order."""
    import pandas as pd

    where = f"label column {name!r} of {label!r}"
    missing = column.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DatasetError(f"{where} has a missing value at row {row + 1}")
    if pd.api.types.is_bool_dtype(column):
        column = column.astype(str)
    if pd.api.types.is_integer_dtype(column):  # exact: never through a float
        values = column.to_numpy()
        if values.dtype.kind == "u":
            _refuse_wide(where, values > np.iinfo(np.int64).max)
        classes, codes = np.unique(values.astype(np.int64), return_inverse=True)
        names = tuple(str(int(c)) for c in classes)
    elif pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(values) & (values == np.round(values)))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DatasetError(
                f"{where} has a non-integer number {values[row]:g} at row {row + 1}; "
                "class labels must be integers or text"
            )
        inexact = np.abs(values) > _EXACT_FLOAT_INT
        if inexact.any():  # 1e19 and 1e19 + 1 are one float: distinct labels could merge
            raise DatasetError(
                f"{where} has labels read as floats beyond 2**53 ({values[inexact][0]:g} "
                f"{_rows(inexact)}), where a float no longer tells neighbouring integers "
                "apart; write labels as integers within the 64-bit range, or as text"
            )
        classes, codes = np.unique(values.astype(np.int64), return_inverse=True)
        names = tuple(str(int(c)) for c in classes)
    else:
        text = column.astype(str).to_numpy(dtype=object)
        numeric = pd.to_numeric(column, errors="coerce").notna().to_numpy()
        if numeric.all():  # numbers pandas holds as Python objects: integers beyond 64 bits
            _refuse_wide(where, np.array([not _fits_int64(v) for v in column]))
            raise DatasetError(f"{where} holds numbers of no single type; labels must be integers")
        if numeric.any():
            number, word = int(np.flatnonzero(numeric)[0]), int(np.flatnonzero(~numeric)[0])
            raise DatasetError(
                f"{where} mixes numbers ({text[number]!r} at row {number + 1}) and text "
                f"({text[word]!r} at row {word + 1}), so no single label order applies"
            )
        classes, codes = np.unique(text, return_inverse=True)
        names = tuple(str(c) for c in classes)
        stripped: dict[str, str] = {}
        for c in names:
            if c.strip() in stripped:
                raise DatasetError(
                    f"{where} has labels {stripped[c.strip()]!r} and {c!r} that differ only in "
                    "surrounding spaces"
                )
            stripped[c.strip()] = c
    if len(names) < 2:
        raise DatasetError(
            f"{where} has {len(names)} class ({names[0]!r}); classification needs at least 2"
        )
    return codes.astype(np.int64).reshape(-1), names
