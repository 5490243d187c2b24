"""Classification datasets: the record, digits and breast_cancer, stratified splits, optima."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import datasets
from datasets import Dataset, DatasetError, registry


def _cls(Y, class_names=("a", "b", "c"), X=None, name: str = "c", **kw) -> Dataset:
    Y = np.asarray(Y)
    X = np.arange(len(Y) * 2, dtype=float).reshape(len(Y), 2) if X is None else X
    return Dataset(
        name=name,
        X=X,
        Y=Y,
        feature_names=("f0", "f1"),
        target_names=("label",),
        description="test data",
        task="classification",
        class_names=class_names,
        **kw,
    )


# ---------------------------------------------------------------- the Dataset record


def test_classification_dataset_fields_shape_and_dtype():
    ds = _cls(np.array([0, 2, 1, 2], dtype=np.int32))
    assert ds.task == "classification"
    assert ds.Y.dtype == np.int64
    assert ds.Y.shape == (4,)
    assert ds.n_classes == 3
    assert ds.k == 3  # one logit per class
    assert ds.class_names == ("a", "b", "c")
    with pytest.raises(ValueError, match="read-only"):
        ds.Y[0] = 1


def test_regression_datasets_keep_their_fields():
    ds = datasets.load("crops5")
    assert ds.task == "regression"
    assert ds.class_names == ()
    assert ds.n_classes == 0
    assert ds.k == 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"Y": np.array([0.0, 1.0, 2.0])}, "integer class indices"),
        ({"Y": np.array([[0], [1], [2]])}, "must be 1-D"),
        ({"Y": np.array([0, 1, 3])}, "class index 3 out of range for 3 classes"),
        ({"Y": np.array([0, -1, 2])}, "class index -1 out of range"),
        ({"Y": np.array([0, 0, 0]), "class_names": ("a",)}, "at least 2 class names"),
        ({"Y": np.array([0, 1, 0]), "class_names": ("a", "a")}, "duplicated class names"),
        ({"Y": np.array([0, 1, 0]), "class_names": ("a", "")}, "non-empty strings"),
        ({"Y": np.array([0, 1]), "X": np.ones((3, 2))}, "X has 3 rows but Y has 2"),
    ],
)
def test_classification_dataset_rejects_bad_construction(kwargs, words):
    with pytest.raises(DatasetError) as info:
        _cls(**kwargs)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_dataset_rejects_unknown_task_and_class_names_for_regression():
    common = {
        "name": "t",
        "X": np.ones((2, 1)),
        "Y": np.ones((2, 1)),
        "feature_names": ("f",),
        "target_names": ("y",),
        "description": "d",
    }
    with pytest.raises(DatasetError, match="task must be one of regression, classification"):
        Dataset(**common, task="ranking")
    with pytest.raises(DatasetError, match="class_names given for a regression task"):
        Dataset(**common, class_names=("a", "b"))


def test_classification_tensors_are_long_labels_fit_for_cross_entropy():
    ds = datasets.load("digits")
    X, Y = ds.tensors(dtype=torch.float32)
    assert X.dtype == torch.float32
    assert Y.dtype == torch.long
    assert Y.shape == (ds.n,)
    # Zero logits give every class probability 1/C: the loss is log C exactly.
    logits = torch.zeros(ds.n, ds.k)
    assert F.cross_entropy(logits, Y).item() == pytest.approx(math.log(10), rel=1e-6)


# ---------------------------------------------------------------- digits and breast_cancer


def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = datasets.load("digits")
    assert ds.name == "digits"
    assert ds.X.shape == (1797, 64)
    assert ds.X.dtype == np.float64
    np.testing.assert_array_equal(ds.X, ref.data)
    np.testing.assert_array_equal(ds.Y, ref.target)
    assert ds.class_names == tuple(str(d) for d in range(10))
    assert ds.feature_names[:2] == ("pixel_0_0", "pixel_0_1")
    assert ds.target_names == ("digit",)
    assert ds.default_holdout == 0.2
    assert np.bincount(ds.Y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_breast_cancer_keeps_scikit_learns_integer_coding():
    from sklearn.datasets import load_breast_cancer

    ref = load_breast_cancer()
    ds = datasets.load("breast_cancer")
    assert ds.X.shape == (569, 30)
    np.testing.assert_array_equal(ds.X, ref.data)
    assert ds.class_names == ("malignant", "benign")
    # Class names follow each row's own sklearn label name.
    names = np.array(ds.class_names)[ds.Y]
    np.testing.assert_array_equal(names, ref.target_names[ref.target])
    assert np.bincount(ds.Y).tolist() == [212, 357]
    assert ds.feature_names[0] == "mean radius"
    assert ds.default_holdout == 0.2


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_classification_sets_are_listed_with_their_task(name):
    assert name in datasets.names()
    assert datasets.task_of(name) == "classification"
    text = datasets.describe(name)
    assert "Task: classification." in text
    assert "\n" not in text


def test_describe_shows_the_regression_task_too():
    assert "Task: regression." in datasets.describe("crops5")
    assert datasets.describe("synthetic").endswith("seed=0, dtype=float64.")


def test_load_checks_the_task_of_registered_datasets():
    assert datasets.load("digits", task="classification").task == "classification"
    with pytest.raises(DatasetError, match="'digits' is a classification dataset"):
        datasets.load("digits", task="regression")
    with pytest.raises(DatasetError, match="'crops5' is a regression dataset"):
        datasets.load("crops5", task="classification")
    with pytest.raises(DatasetError, match="task must be one of"):
        datasets.load("crops5", task="clustering")


def test_register_rejects_unknown_tasks_and_load_catches_a_lying_loader(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "TASK_OF", {})
    with pytest.raises(ValueError, match="task must be one of"):
        registry.register("x", task="ranking")

    @registry.register("liar", task="classification")
    def liar() -> Dataset:
        """Says classification, returns regression."""
        return datasets.crops5()

    with pytest.raises(TypeError, match="registered as classification returned a regression"):
        registry.load("liar")


# ---------------------------------------------------------------- stratified split


def _expected_shares(counts, n_holdout):
    """Largest-remainder shares of n_holdout among classes, written out independently."""
    n = sum(counts)
    exact = [c * n_holdout / n for c in counts]
    shares = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda c: (-(exact[c] - shares[c]), c))
    for c in by_remainder[: n_holdout - sum(shares)]:
        shares[c] += 1
    return shares


@pytest.mark.parametrize(("name", "seed"), [("digits", 0), ("digits", 3), ("breast_cancer", 1)])
def test_classification_split_is_stratified(name, seed):
    ds = datasets.load(name)
    train, hold = datasets.split(ds, 0.2, seed)
    n_holdout = math.floor(0.2 * ds.n + 0.5)
    assert len(hold) == n_holdout
    np.testing.assert_array_equal(np.union1d(train, hold), np.arange(ds.n))
    assert np.intersect1d(train, hold).size == 0
    assert np.all(np.diff(hold) > 0)
    assert np.all(np.diff(train) > 0)
    counts = np.bincount(ds.Y).tolist()
    got = np.bincount(ds.Y[hold], minlength=ds.n_classes).tolist()
    assert got == _expected_shares(counts, n_holdout)


def test_breast_cancer_holdout_shares_worked_by_hand():
    # 114 held out of 569: malignant 212 * 114 / 569 = 42.47, benign 357 * 114 / 569 = 71.53;
    # floors 42 + 71 = 113, and the one row left goes to the larger remainder, benign.
    ds = datasets.load("breast_cancer")
    _, hold = datasets.split(ds, 0.2, seed=0)
    assert np.bincount(ds.Y[hold]).tolist() == [42, 72]


def test_classification_split_is_deterministic_and_seeded():
    ds = datasets.load("digits")
    first = datasets.split(ds, 0.25, seed=5)
    np.testing.assert_array_equal(first[1], datasets.split(ds, 0.25, seed=5)[1])
    assert not np.array_equal(first[1], datasets.split(ds, 0.25, seed=6)[1])


def test_classification_split_with_rare_and_absent_classes():
    # Class 2 has no rows, class 1 a single one: shares stay within the class sizes.
    Y = np.array([0] * 9 + [1])
    ds = _cls(Y)
    for seed in range(5):
        train, hold = datasets.split(ds, 0.3, seed)
        assert len(hold) == 3
        assert np.bincount(Y[hold], minlength=3).tolist() == [3, 0, 0]
        assert 9 in train


def test_make_split_standardises_only_the_features_of_a_classification_set():
    ds = datasets.load("breast_cancer")
    part = datasets.make_split(ds, seed=0, standardize=True)
    np.testing.assert_allclose(part.X_train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(part.X_train.std(axis=0), 1.0)
    np.testing.assert_array_equal(part.Y_train, ds.Y[part.train_idx])
    np.testing.assert_array_equal(part.Y_holdout, ds.Y[part.holdout_idx])
    assert part.Y_train.dtype == np.int64
    assert part.Y_train.ndim == 1


# ---------------------------------------------------------------- which optimum exists


def test_reference_optimum_for_classification_is_nan_with_a_reason():
    ds = datasets.load("breast_cancer")
    opt = datasets.reference_optimum(ds.task, ds.X, ds.Y)
    assert math.isnan(opt.loss)
    assert not opt.available
    assert opt.W is None
    assert "cross-entropy" in opt.reason
    assert "\n" not in opt.reason


def test_reference_optimum_for_regression_is_the_least_squares_one():
    ds = datasets.load("crops15")
    opt = datasets.reference_optimum("regression", ds.X, ds.Y)
    W, b, loss = datasets.closed_form(ds.X, ds.Y)
    assert opt.available
    assert opt.reason == ""
    assert opt.loss == loss
    np.testing.assert_array_equal(opt.W, W)
    np.testing.assert_array_equal(opt.b, b)


def test_reference_optimum_rejects_unknown_tasks():
    with pytest.raises(DatasetError, match="unknown task 'ranking'; known: regression"):
        datasets.reference_optimum("ranking", np.ones((2, 1)), np.ones((2, 1)))


def test_closed_form_refuses_class_labels():
    ds = datasets.load("digits")
    with pytest.raises(DatasetError, match="classification labels have no closed-form optimum"):
        datasets.closed_form(ds.X, ds.Y)
