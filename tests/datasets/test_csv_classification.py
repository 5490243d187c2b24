"""CSV files as classification problems: label coding, and every bad label column as an error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import datasets
from datasets import DatasetError


def _write(tmp_path: Path, text: str, name: str = "pets.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(path: Path, targets=("label",), **kw):
    return datasets.load_csv(path, targets=list(targets), task="classification", **kw)


def _error(path: Path, targets=("label",)) -> str:
    with pytest.raises(DatasetError) as info:
        _load(path, targets)
    message = str(info.value)
    assert "\n" not in message
    return message


def _rows(labels) -> str:
    return "weight,name,label\n" + "".join(f"{i},n{i},{lab}\n" for i, lab in enumerate(labels))


def test_text_labels_are_coded_in_sorted_order(tmp_path):
    labels = ["cat", "dog", "cat", "bird", "ant", "dog"]
    ds = _load(_write(tmp_path, _rows(labels)))
    order = sorted(set(labels))
    assert ds.task == "classification"
    assert ds.class_names == tuple(order) == ("ant", "bird", "cat", "dog")
    assert ds.Y.dtype == np.int64
    assert ds.Y.tolist() == [order.index(s) for s in labels]
    np.testing.assert_array_equal(np.array(ds.class_names)[ds.Y], labels)
    assert ds.target_names == ("label",)
    assert ds.feature_names == ("weight",)  # the text column "name" is skipped as usual
    assert ds.k == ds.n_classes == 4


def test_integer_labels_keep_numeric_order(tmp_path):
    # As text, "10" < "2"; as numbers, -1 < 2 < 10.
    ds = _load(_write(tmp_path, _rows([10, 2, -1, 2, 10])))
    assert ds.class_names == ("-1", "2", "10")
    assert ds.Y.tolist() == [2, 1, 0, 1, 2]


def test_integral_float_labels_are_integers(tmp_path):
    ds = _load(_write(tmp_path, _rows(["1.0", "0.0", "1.0"])))
    assert ds.class_names == ("0", "1")
    assert ds.Y.tolist() == [1, 0, 1]


def test_boolean_labels(tmp_path):
    ds = _load(_write(tmp_path, _rows(["True", "False", "True"])))
    assert ds.class_names == ("False", "True")
    assert ds.Y.tolist() == [1, 0, 1]


def test_classification_through_load_and_split(tmp_path):
    labels = ["a"] * 8 + ["b"] * 4
    path = _write(tmp_path, _rows(labels))
    ds = datasets.load(str(path), targets=["label"], task="classification")
    assert ds.class_names == ("a", "b")
    assert ds.default_holdout == 0.2
    _, hold = datasets.split(ds, 0.25, seed=0)
    assert np.bincount(ds.Y[hold]).tolist() == [2, 1]  # 3 held out, stratified 8:4


def test_regression_is_still_the_default_task(tmp_path):
    ds = datasets.load_csv(_write(tmp_path, _rows([1, 2, 3])), targets=["label"])
    assert ds.task == "regression"
    assert ds.Y.shape == (3, 1)


@pytest.mark.parametrize("cell", ["", "NA"])
def test_missing_label(tmp_path, cell):
    message = _error(_write(tmp_path, _rows(["a", cell, "b"])))
    assert "label column 'label' of 'pets.csv' has a missing value at row 2" in message


def test_single_class(tmp_path):
    message = _error(_write(tmp_path, _rows(["a", "a", "a"])))
    assert "has 1 class ('a'); classification needs at least 2" in message


def test_two_target_columns(tmp_path):
    path = _write(tmp_path, "x,y1,y2\n1,a,b\n2,b,a\n")
    message = _error(path, targets=("y1", "y2"))
    assert "classification needs exactly one target (label) column in 'pets.csv', got 2" in message


def test_non_integer_number_label(tmp_path):
    message = _error(_write(tmp_path, _rows([1, 2.5, 1])))
    assert "non-integer number 2.5 at row 2" in message


def test_labels_mixing_numbers_and_text(tmp_path):
    message = _error(_write(tmp_path, _rows(["cat", "3", "dog"])))
    assert "mixes numbers ('3' at row 2) and text ('cat' at row 1)" in message


def test_labels_differing_only_in_spaces(tmp_path):
    # Leading spaces are dropped on reading ("a, b"); trailing ones would make a new class.
    message = _error(_write(tmp_path, 'x,label\n1,"cat "\n2,cat\n3,dog\n'))
    assert "labels 'cat' and 'cat ' that differ only in surrounding spaces" in message


def test_unknown_task(tmp_path):
    path = _write(tmp_path, _rows(["a", "b"]))
    with pytest.raises(DatasetError, match="task must be one of regression, classification"):
        datasets.load_csv(path, targets=["label"], task="ranking")


# Integer labels are read exactly: never through a float64, where 2**53 + 1 becomes 2**53.


def test_integer_labels_beyond_2_53_stay_distinct_classes(tmp_path):
    big = 2**53
    labels = [big + 1, big, 1, big + 1, big, 1]
    ds = _load(_write(tmp_path, _rows(labels)))
    assert ds.class_names == ("1", str(big), str(big + 1))
    assert ds.Y.tolist() == [2, 1, 0, 2, 1, 0]


def test_the_64_bit_integer_range_is_accepted_to_its_edges(tmp_path):
    labels = [-(2**63), 2**63 - 1, 0]
    ds = _load(_write(tmp_path, _rows(labels)))
    assert ds.class_names == tuple(str(v) for v in sorted(labels))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 10**19, 2 * 10**19], "integer labels beyond the 64-bit range (at rows 2, 3)"),
        ([0, 10**19, 1], "integer labels beyond the 64-bit range (at row 2)"),
        ([0, -(2**63) - 1, 1], "integer labels beyond the 64-bit range (at row 2)"),
        (["0", "1e19", "2e19"], "labels read as floats beyond 2**53 (1e+19 at rows 2, 3)"),
        (["0", "1.0", f"{2.0**54:.1f}"], "beyond 2**53 (1.80144e+16 at row 3)"),
    ],
    ids=["wider", "uint64", "below", "1e19-would-merge", "float-above-2**53"],
)
def test_labels_that_cannot_be_held_exactly_are_refused_naming_the_rows(tmp_path, labels, expected):
    message = _error(_write(tmp_path, _rows(labels)))
    assert message.startswith("label column 'label' of 'pets.csv' has ")
    assert expected in message


def test_a_long_list_of_rows_is_cut_short(tmp_path):
    labels = [0] + [10**19] * 12
    message = _error(_write(tmp_path, _rows(labels)))
    assert "(at rows 2, 3, 4, 5, 6 and 7 more)" in message
