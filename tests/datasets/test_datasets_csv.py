"""Tests for user CSV files: the happy path, and every error as a one-line DatasetError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import DatasetError

CROPS_CSV = """region,temperature,rainfall,humidity,apples,oranges
north,73,67,43,56,70
south,91,88,64,81,101
east,87,134,58,119,133
west,102,43,37,22,37
centre,69,96,70,103,119
"""


def _write(tmp_path: Path, text: str, name: str = "crops.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path, targets=("y",), features=None) -> str:
    with pytest.raises(DatasetError) as info:
        datasets.load_csv(path, targets=targets, features=features)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_csv_happy_path_drops_the_text_column(tmp_path):
    path = _write(tmp_path, CROPS_CSV)
    ds = datasets.load_csv(path, targets=["apples", "oranges"])
    reference = datasets.load("crops5")
    assert ds.name == "crops"
    assert ds.feature_names == ("temperature", "rainfall", "humidity")
    assert ds.target_names == ("apples", "oranges")
    np.testing.assert_array_equal(ds.X, reference.X)
    np.testing.assert_array_equal(ds.Y, reference.Y)
    assert ds.X.dtype == np.float64
    assert str(path) in ds.description
    assert ds.default_holdout == 0.0  # 5 rows cannot spare one
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0, 0] = 0.0


def test_csv_explicit_features_keep_their_order_and_a_single_target(tmp_path):
    path = _write(tmp_path, CROPS_CSV)
    ds = datasets.load_csv(path, targets="apples", features=["humidity", "temperature"])
    assert ds.feature_names == ("humidity", "temperature")
    assert ds.target_names == ("apples",)
    assert ds.Y.shape == (5, 1)
    np.testing.assert_array_equal(ds.X[0], [43, 73])


def test_csv_through_load_and_default_holdout_for_larger_files(tmp_path):
    rows = "\n".join(f"{i}, {2 * i}, {i % 3}" for i in range(12))
    path = _write(tmp_path, "a, y, b\n" + rows + "\n", name="spaced.csv")
    ds = datasets.load(str(path), targets=["y"])
    assert ds.name == "spaced"
    assert ds.feature_names == ("a", "b")  # "a, y" headers: spaces after commas are skipped
    assert ds.n == 12
    assert ds.default_holdout == 0.2
    other = _write(tmp_path, "a,y\n1,2\n3,4\n", name="data.txt")
    assert datasets.load(str(other), targets=["y"]).name == "data"


def test_csv_skips_empty_and_boolean_columns_sensibly(tmp_path):
    # A trailing comma makes an unnamed empty column; True/False is numeric (0/1).
    path = _write(tmp_path, "a,flag,y,\n1,True,2,\n3,False,5,\n")
    ds = datasets.load_csv(path, targets=["y"])
    assert ds.feature_names == ("a", "flag")
    np.testing.assert_array_equal(ds.X[:, 1], [1.0, 0.0])


def test_csv_file_missing(tmp_path):
    message = _error(tmp_path / "nothere.csv")
    assert "not found" in message
    assert "nothere.csv" in message


def test_csv_path_is_a_directory(tmp_path):
    assert "not a file" in _error(tmp_path)


def test_csv_file_empty(tmp_path):
    message = _error(_write(tmp_path, "", name="blank.csv"))
    assert "'blank.csv' is empty" in message


def test_csv_header_without_rows(tmp_path):
    message = _error(_write(tmp_path, "a,y\n", name="head.csv"))
    assert "'head.csv' has a header but no data rows" in message


@pytest.mark.parametrize(
    "text", ["a,y\n1,2\n3,4,5\n", 'a,y\n1,"2\n3,4\n'], ids=["extra-field", "open-quote"]
)
def test_csv_unparsable(tmp_path, text):
    message = _error(_write(tmp_path, text, name="broken.csv"))
    assert "cannot parse CSV file 'broken.csv'" in message


def test_csv_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(bytes(range(256)) * 4)
    assert "cannot parse CSV file 'binary.csv'" in _error(path)


@pytest.mark.parametrize("targets", [None, [], ()])
def test_csv_no_targets_given(tmp_path, targets):
    message = _error(_write(tmp_path, CROPS_CSV), targets=targets)
    assert "no targets given for 'crops.csv'" in message
    assert "region, temperature, rainfall, humidity, apples, oranges" in message


def test_csv_load_without_targets(tmp_path):
    path = _write(tmp_path, CROPS_CSV)
    with pytest.raises(DatasetError, match="no targets given"):
        datasets.load(str(path))


def test_csv_target_absent_lists_the_columns(tmp_path):
    message = _error(_write(tmp_path, CROPS_CSV), targets=["pears"])
    assert "target column 'pears' not found in 'crops.csv'" in message
    assert "columns: region, temperature, rainfall, humidity, apples, oranges" in message


def test_csv_feature_absent(tmp_path):
    message = _error(_write(tmp_path, CROPS_CSV), targets=["apples"], features=["sunshine"])
    assert "feature column 'sunshine' not found in 'crops.csv'" in message


def test_csv_non_numeric_target_value(tmp_path):
    path = _write(tmp_path, "a,y\n1,2\n3,4\n5,abc\n")
    message = _error(path)
    assert "column 'y' of 'crops.csv' has a non-numeric value 'abc' at row 3" in message


def test_csv_text_column_named_as_a_feature(tmp_path):
    message = _error(_write(tmp_path, CROPS_CSV), targets=["apples"], features=["region"])
    assert "column 'region'" in message
    assert "non-numeric value 'north' at row 1" in message


def test_csv_column_mixing_numbers_and_text_is_not_dropped_silently(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n4,x5,6\n")
    message = _error(path)
    assert "column 'b'" in message
    assert "'x5' at row 2" in message
    assert "features=" in message
    # Naming the features leaves the column out.
    assert datasets.load_csv(path, targets=["y"], features=["a"]).feature_names == ("a",)


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("", "has a missing value at row 2"),
        ("NA", "has a missing value at row 2"),
        ("inf", "has an infinite value (inf) at row 2"),
        ("-inf", "has an infinite value (-inf) at row 2"),
    ],
)
def test_csv_missing_or_infinite_values(tmp_path, cell, words):
    path = _write(tmp_path, f"a,y\n1,2\n{cell},4\n")
    message = _error(path)
    assert "column 'a' of 'crops.csv'" in message
    assert words in message


def test_csv_no_feature_columns_left(tmp_path):
    path = _write(tmp_path, "name,y\nann,1\nbob,2\n")
    message = _error(path)
    assert "no numeric feature columns left in 'crops.csv'" in message
    assert "columns: name, y" in message


def test_csv_empty_feature_list(tmp_path):
    message = _error(_write(tmp_path, CROPS_CSV), targets=["apples"], features=[])
    assert "no feature columns given" in message


def test_csv_column_both_target_and_feature(tmp_path):
    path = _write(tmp_path, CROPS_CSV)
    message = _error(path, targets=["apples"], features=["apples", "rainfall"])
    assert "column 'apples' of 'crops.csv' is both a target and a feature" in message


def test_csv_column_listed_twice(tmp_path):
    message = _error(_write(tmp_path, CROPS_CSV), targets=["apples", "apples"])
    assert "target columns ['apples']" in message
    assert "more than once" in message


# ---------------------------------------------------------------- strict structure


def test_csv_row_with_a_trailing_extra_field_is_not_shifted_into_the_index(tmp_path):
    # pandas alone would take column "a" as the index and load a=2, b=3, y=4: shifted.
    path = _write(tmp_path, "a,b,y\n1,2,3,4\n5,6,7,8\n")
    message = _error(path)
    assert "line 2 (data row 1) has 4 fields but the header has 3" in message


def test_csv_row_with_a_missing_field_names_its_line(tmp_path):
    message = _error(_write(tmp_path, "a,b,y\n1,2,3\n4,5\n"))
    assert "line 3 (data row 2) has 2 fields but the header has 3" in message


def test_csv_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path):
    # Line 2-3 hold one record (a quoted newline), line 4 is blank, line 5 is bad.
    path = _write(tmp_path, 'a,y\n1,"2\n"\n\n3,4,5\n')
    assert "line 5 (data row 2) has 3 fields" in _error(path)


@pytest.mark.parametrize(
    ("header", "name", "columns"),
    [("x,y,x", "x", "1 and 3"), ("x, y, y", "y", "2 and 3")],
    ids=["plain", "after-spaces"],
)
def test_csv_duplicate_header_names_are_an_error(tmp_path, header, name, columns):
    # pandas alone would rename the second one "x.1" and carry on.
    message = _error(_write(tmp_path, f"{header}\n1,2,3\n"))
    assert f"column name {name!r} appears twice in the header (columns {columns})" in message


@pytest.mark.parametrize("text", ["\n", "\n  \n\n"], ids=["newline", "blank-lines"])
def test_csv_file_of_blank_lines_is_empty(tmp_path, text):
    assert "'crops.csv' is empty" in _error(_write(tmp_path, text))


def test_csv_header_followed_by_blank_lines_has_no_rows(tmp_path):
    assert "has a header but no data rows" in _error(_write(tmp_path, "a,y\n\n\n"))


def test_csv_blank_lines_between_rows_are_skipped(tmp_path):
    ds = datasets.load_csv(_write(tmp_path, "a,y\n1,2\n\n   \n3,4\n"), targets=["y"])
    np.testing.assert_array_equal(ds.X[:, 0], [1, 3])
    np.testing.assert_array_equal(ds.Y[:, 0], [2, 4])


def test_csv_text_after_a_closing_quote_is_an_error(tmp_path):
    # pandas alone would read '"1"x' as the string '1x'.
    message = _error(_write(tmp_path, 'a,y\n"1"x,2\n'))
    assert "cannot parse CSV file 'crops.csv': line 2:" in message


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,y\ncaf\xe9,1\n".encode("latin-1"))
    assert "cannot parse CSV file 'latin.csv': not UTF-8 text" in _error(path)


def test_csv_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffa,y\n1,2\n".encode())
    assert datasets.load_csv(path, targets=["y"]).feature_names == ("a",)


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("NaN", "has a missing value at row 2"),
        ("nan", "has a missing value at row 2"),
        ("1e999", "has an infinite value (inf) at row 2"),
        ("abc", "has a non-numeric value 'abc' at row 2"),
    ],
)
def test_csv_bad_feature_cells(tmp_path, cell, words):
    message = _error(_write(tmp_path, f"a,y\n1,2\n{cell},4\n"), features=["a"])
    assert f"column 'a' of 'crops.csv' {words}" in message


@pytest.mark.parametrize("cell", ["NaN", "inf", ""])
def test_csv_bad_target_cells(tmp_path, cell):
    message = _error(_write(tmp_path, f"a,y\n1,2\n3,{cell}\n"))
    assert "column 'y' of 'crops.csv' has" in message
    assert "at row 2" in message


def test_csv_text_target_hints_at_classification(tmp_path):
    message = _error(_write(tmp_path, "a,y\n1,cat\n2,dog\n"))
    assert "non-numeric value 'cat' at row 1" in message
    assert "task='classification'" in message


def test_csv_empty_header_cell_clashing_with_a_pandas_name(tmp_path):
    # pandas calls the empty second cell "Unnamed: 1", the very name of the third column.
    message = _error(_write(tmp_path, "a,,Unnamed: 1,y\n1,2,3,4\n"))
    assert "column name 'Unnamed: 1' appears twice in the header (columns 2 and 3)" in message


def test_csv_readers_disagreeing_is_an_error(tmp_path):
    # A quoted empty cell alone on its line: the csv module reads a blank line, pandas a
    # missing value. Neither reading is taken on trust.
    message = _error(_write(tmp_path, 'y\n1\n""\n2\n'))
    assert "pandas reads 3 data rows, the csv module 2" in message
