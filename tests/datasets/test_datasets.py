"""Tests for datasets: seed tables, synthetic data, real sets, specs, splits and the optimum."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import datasets
from datasets import Dataset, DatasetError, optimum, registry

REPO = Path(__file__).resolve().parents[2]
ALL_NAMES = [
    "crops5",
    "crops15",
    "sales5",
    "sales15",
    "synthetic",
    "diabetes",
    "linnerud",
    "digits",
    "breast_cancer",
]


def _ds(X, Y, name: str = "t", **kw) -> Dataset:
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    kw.setdefault("feature_names", tuple(f"f{i}" for i in range(X.shape[1])))
    kw.setdefault("target_names", tuple(f"t{i}" for i in range(Y.shape[1])))
    kw.setdefault("description", "test data")
    return Dataset(name=name, X=X, Y=Y, **kw)


def _mse(X, Y, W, b) -> float:
    return float(np.mean((X @ W.T + b - Y) ** 2))


# ---------------------------------------------------------------- seed tables


@pytest.mark.parametrize(
    ("name", "rows", "features", "targets", "holdout"),
    [
        ("crops5", 5, ("temperature", "rainfall", "humidity"), ("apples", "oranges"), 0.0),
        ("crops15", 15, ("temperature", "rainfall", "humidity"), ("apples", "oranges"), 0.2),
        ("sales5", 5, ("sales_people", "ads", "posts"), ("product1", "product2"), 0.0),
        ("sales15", 15, ("sales_people", "ads", "posts"), ("product1", "product2"), 0.2),
    ],
)
def test_seed_table_shape_names_and_holdout(name, rows, features, targets, holdout):
    ds = datasets.load(name)
    assert ds.name == name
    assert ds.X.shape == (rows, 3)
    assert ds.Y.shape == (rows, 2)
    assert ds.X.dtype == ds.Y.dtype == np.float64
    assert ds.feature_names == features
    assert ds.target_names == targets
    assert ds.default_holdout == holdout
    assert "\n" not in ds.description
    assert "notebook" in ds.description


# (table, row, X row, Y row), read off the notebooks: 002 "New dataset" and 000 Parts A/B.
SPOT_CHECKS = [
    ("crops5", 0, [73, 67, 43], [56, 70]),
    ("crops5", 2, [87, 134, 58], [119, 133]),
    ("crops5", 4, [69, 96, 70], [103, 119]),
    ("crops15", 7, [88, 134, 59], [118, 132]),
    ("crops15", 9, [68, 96, 71], [104, 118]),
    ("crops15", 13, [103, 43, 36], [20, 38]),
    ("crops15", 14, [68, 97, 70], [102, 120]),
    ("sales5", 0, [8, 500, 6], [40, 20]),
    ("sales5", 3, [4, 300, 8], [20, 15]),
    ("sales15", 6, [7, 250, 20], [30, 25]),
    ("sales15", 10, [5, 400, 20], [35, 10]),
    ("sales15", 13, [8, 50, 18], [10, 16]),
    ("sales15", 14, [8, 150, 20], [20, 14]),
]


@pytest.mark.parametrize(("name", "row", "x", "y"), SPOT_CHECKS)
def test_seed_table_cells(name, row, x, y):
    ds = datasets.load(name)
    np.testing.assert_array_equal(ds.X[row], x)
    np.testing.assert_array_equal(ds.Y[row], y)


@pytest.mark.parametrize(
    ("name", "x_sums", "y_sums"),
    [
        # Column sums of the notebook arrays: any mistyped cell changes one of them.
        ("crops5", [422, 428, 272], [381, 460]),
        ("crops15", [1267, 1283, 818], [1140, 1380]),
        ("sales5", [29, 1350, 44], [125, 80]),
        ("sales15", [101, 3800, 215], [385, 260]),
    ],
)
def test_seed_table_column_sums(name, x_sums, y_sums):
    ds = datasets.load(name)
    np.testing.assert_array_equal(ds.X.sum(axis=0), x_sums)
    np.testing.assert_array_equal(ds.Y.sum(axis=0), y_sums)


@pytest.mark.parametrize("kind", ["crops", "sales"])
def test_five_row_tables_are_the_first_rows_of_the_fifteen_row_ones(kind):
    small, big = datasets.load(f"{kind}5"), datasets.load(f"{kind}15")
    np.testing.assert_array_equal(small.X, big.X[:5])
    np.testing.assert_array_equal(small.Y, big.Y[:5])


def test_dataset_arrays_are_read_only_and_loads_are_independent():
    ds = datasets.load("crops5")
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0, 0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        ds.Y[0] += 1.0
    assert datasets.load("crops5").X is not ds.X


# ---------------------------------------------------------------- Dataset validation


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"X": np.ones((3, 2)), "Y": np.ones((4, 1))}, "X has 3 rows but Y has 4"),
        ({"X": np.ones((3, 2)), "Y": np.ones(3)}, "Y must be 2-D"),
        ({"X": np.ones(3), "Y": np.ones((3, 1))}, "X must be 2-D"),
        ({"X": np.ones((0, 2)), "Y": np.ones((0, 1))}, "no rows"),
        ({"X": np.ones((3, 0)), "Y": np.ones((3, 1))}, "at least one feature"),
        ({"X": np.array([["a"], ["b"]]), "Y": np.ones((2, 1))}, "real numbers"),
        ({"X": np.ones((2, 2), np.float32), "Y": np.ones((2, 1))}, "share a dtype"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "feature_names": ("a",)}, "1 feature names"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "target_names": ("a", "b")}, "2 target"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "feature_names": ("a", "a")}, "duplicated"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "description": "a\nb"}, "single line"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "default_holdout": 1.0}, "[0, 1)"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "default_holdout": -0.1}, "[0, 1)"),
        ({"X": np.ones((3, 2)), "Y": np.ones((3, 1)), "name": ""}, "non-empty"),
    ],
)
def test_dataset_rejects_bad_construction(kwargs, words):
    base = {
        "name": "t",
        "feature_names": ("f0", "f1"),
        "target_names": ("t0",),
        "description": "d",
        "default_holdout": 0.2,
    }
    with pytest.raises(DatasetError) as info:
        Dataset(**{**base, **kwargs})
    assert words in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("which", "bad"), [("X", np.nan), ("X", np.inf), ("Y", -np.inf)])
def test_dataset_rejects_non_finite_values_naming_row_and_column(which, bad):
    X, Y = np.ones((4, 2)), np.ones((4, 1))
    (X if which == "X" else Y)[2, -1] = bad
    with pytest.raises(DatasetError, match=r"first at row 2 column '(f1|t0)'"):
        _ds(X, Y)


def test_dataset_widens_integers_and_does_not_freeze_the_callers_array():
    X = np.arange(6, dtype=np.float64).reshape(3, 2)
    ds = _ds(X, np.array([[1], [2], [3]], dtype=np.int64))
    assert ds.Y.dtype == np.float64
    X[0, 0] = 42.0  # the caller's array stays writable
    assert ds.n == 3
    assert ds.d == 2
    assert ds.k == 1


def test_dataset_tensors_are_writable_copies_without_warnings():
    ds = datasets.load("crops5")
    X, Y = ds.tensors(dtype=torch.float32)
    assert X.dtype == Y.dtype == torch.float32
    assert X.shape == (5, 3)
    assert Y.shape == (5, 2)
    X[0, 0] = -1.0  # a copy: the dataset is untouched
    assert ds.X[0, 0] == 73.0
    assert ds.tensors()[0].dtype == torch.float64


# ---------------------------------------------------------------- synthetic


def test_synthetic_shapes_names_and_defaults():
    ds = datasets.load("synthetic")
    assert ds.name == "synthetic"
    assert ds.X.shape == (1000, 10)
    assert ds.Y.shape == (1000, 2)
    assert ds.feature_names == tuple(f"x{i}" for i in range(10))
    assert ds.target_names == ("y0", "y1")
    assert ds.default_holdout == 0.2


def test_synthetic_is_deterministic_by_seed():
    a = datasets.make_synthetic(n=300, d=5, k=3, seed=4)
    b = datasets.make_synthetic(n=300, d=5, k=3, seed=4)
    c = datasets.make_synthetic(n=300, d=5, k=3, seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)
    assert not np.array_equal(a.X, c.X)
    assert not np.array_equal(a.Y, c.Y)


def test_synthetic_true_model_does_not_depend_on_n():
    # Noise-free, the optimum recovers the true (W, b), which comes from its own stream.
    small = datasets.make_synthetic(n=40, d=4, noise=0.0, seed=2)
    large = datasets.make_synthetic(n=400, d=4, noise=0.0, seed=2)
    W1, b1, _ = datasets.closed_form(small.X, small.Y)
    W2, b2, _ = datasets.closed_form(large.X, large.Y)
    np.testing.assert_allclose(W1, W2, atol=1e-9)
    np.testing.assert_allclose(b1, b2, atol=1e-9)


def test_synthetic_without_noise_is_fitted_exactly():
    ds = datasets.make_synthetic(n=500, d=8, k=2, noise=0.0, cond=100.0)
    _, _, loss = datasets.closed_form(ds.X, ds.Y)
    assert loss < 1e-24 * np.mean(ds.Y**2)


def test_synthetic_noise_sets_the_optimal_loss():
    # E[loss*] = noise^2 * (1 - (d + 1) / n) for least squares with an intercept.
    ds = datasets.make_synthetic(n=40_000, d=5, k=2, noise=0.5, seed=1)
    _, _, loss = datasets.closed_form(ds.X, ds.Y)
    assert loss == pytest.approx(0.25 * (1 - 6 / 40_000), rel=0.03)


@pytest.mark.parametrize("cond", [1.0, 10.0, 1000.0])
def test_synthetic_condition_number_of_centred_gram_matrix(cond):
    ds = datasets.make_synthetic(n=100_000, d=8, cond=cond, seed=3)
    Xc = ds.X - ds.X.mean(axis=0)
    eig = np.linalg.eigvalsh(Xc.T @ Xc / ds.n)
    assert eig[-1] / eig[0] == pytest.approx(cond, rel=0.1)
    # Covariance eigenvalues span [1/cond, 1]: the largest is 1.
    assert eig[-1] == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("d", [1, 6])
def test_synthetic_cond_is_the_condition_number_of_the_loss_hessian(d):
    # The Hessian of the MSE in (w_j, b_j) is proportional to [X 1]^T [X 1] / n.
    ds = datasets.make_synthetic(n=100_000, d=d, cond=50.0, seed=9)
    A = np.hstack([ds.X, np.ones((ds.n, 1))])
    eig = np.linalg.eigvalsh(A.T @ A / ds.n)
    assert eig[-1] / eig[0] == pytest.approx(50.0, rel=0.1)


def test_synthetic_features_are_rotated_not_axis_aligned():
    ds = datasets.make_synthetic(n=50_000, d=6, cond=100.0)
    cov = np.cov(ds.X, rowvar=False)
    off_diagonal = cov - np.diag(np.diag(cov))
    assert np.abs(off_diagonal).max() > 0.05


def test_synthetic_float32_is_the_float64_draw_rounded():
    a = datasets.make_synthetic(n=20_000, d=3, dtype="float32", seed=6)
    b = datasets.make_synthetic(n=20_000, d=3, seed=6)
    assert a.X.dtype == a.Y.dtype == np.float32
    assert a.name == "synthetic:n=20000:d=3:seed=6:dtype=float32"
    np.testing.assert_array_equal(a.X, b.X.astype(np.float32))
    np.testing.assert_array_equal(a.Y, b.Y.astype(np.float32))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n": 0}, "n must be >= 1"),
        ({"d": 0}, "d must be >= 1"),
        ({"k": 0}, "k must be >= 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"n": True}, "n must be an integer"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"noise": -0.1}, "noise must be >= 0"),
        ({"noise": math.nan}, "noise must be a finite number"),
        ({"cond": 0.5}, "cond must be >= 1"),
        ({"cond": math.inf}, "cond must be a finite number"),
        ({"dtype": "float16"}, "dtype must be"),
    ],
)
def test_synthetic_rejects_bad_options(kwargs, words):
    with pytest.raises(DatasetError, match=words):
        datasets.make_synthetic(**kwargs)


# ---------------------------------------------------------------- real datasets


def test_diabetes():
    ds = datasets.load("diabetes")
    assert ds.name == "diabetes"
    assert ds.X.shape == (442, 10)
    assert ds.Y.shape == (442, 1)
    assert ds.feature_names == ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    assert ds.target_names == ("progression",)
    assert ds.Y[0, 0] == 151.0
    # scikit-learn's scaling: centred columns with unit sum of squares.
    np.testing.assert_allclose((ds.X**2).sum(axis=0), 1.0, rtol=1e-6)
    assert "load_diabetes" in ds.description


def test_diabetes_raw_units():
    ds = datasets.load("diabetes:scaled=false")
    assert ds.name == "diabetes:scaled=false"
    np.testing.assert_allclose(ds.X[0, :4], [59.0, 2.0, 32.1, 101.0])
    np.testing.assert_array_equal(ds.Y, datasets.load("diabetes").Y)


def test_linnerud():
    ds = datasets.load("linnerud")
    assert ds.X.shape == (20, 3)
    assert ds.Y.shape == (20, 3)
    assert ds.feature_names == ("Chins", "Situps", "Jumps")
    assert ds.target_names == ("Weight", "Waist", "Pulse")
    np.testing.assert_array_equal(ds.X[0], [5, 162, 60])
    np.testing.assert_array_equal(ds.Y[0], [191, 36, 50])
    assert ds.default_holdout == 0.2


def test_importing_the_package_does_not_import_heavy_dependencies():
    code = (
        "import sys, datasets; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- registry and specs


def test_names_lists_every_dataset_in_registration_order():
    assert datasets.names() == ALL_NAMES


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_registered_dataset_loads_and_is_described(name):
    ds = datasets.load(name)
    assert isinstance(ds, Dataset)
    assert ds.name == name
    text = datasets.describe(name)
    assert text.startswith(inspect.getdoc(datasets.REGISTRY[name]).split("\n")[0])
    assert "\n" not in text


def test_describe_lists_options_with_defaults():
    text = datasets.describe("synthetic")
    assert "n=1000, d=10, k=2, noise=0.1, cond=10, seed=0, dtype=float64" in text


def test_spec_with_options():
    ds = datasets.load("synthetic:n=500:d=7:k=1:noise=0.5:cond=100:seed=3")
    assert (ds.n, ds.d, ds.k) == (500, 7, 1)
    assert ds.name == "synthetic:n=500:d=7:k=1:noise=0.5:cond=100:seed=3"
    same = datasets.make_synthetic(n=500, d=7, k=1, noise=0.5, cond=100.0, seed=3)
    np.testing.assert_array_equal(ds.X, same.X)
    np.testing.assert_array_equal(ds.Y, same.Y)


def test_spec_name_lists_only_non_default_options_in_declaration_order():
    assert datasets.load("synthetic:seed=0:n=1000").name == "synthetic"
    assert datasets.load("synthetic:d=3: n = 2e3").name == "synthetic:n=2000:d=3"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("synthetic:x=1", "unknown option 'x' for dataset 'synthetic'; accepted: n, d, k, noise"),
        ("crops5:n=3", "unknown option 'n' for dataset 'crops5'; accepted: none"),
        ("synthetic:n=abc", "bad value 'abc' for option 'n' of dataset 'synthetic'"),
        ("synthetic:n=2.5", "expected an integer"),
        ("synthetic:noise=abc", "expected a number"),
        ("synthetic:noise=nan", "expected a finite number"),
        ("diabetes:scaled=maybe", "expected true or false"),
        ("synthetic:n", "bad option 'n'"),
        ("synthetic:=3", "expected key=value"),
        ("synthetic:n=5:n=6", "given twice"),
        ("synthetic:n=0", "n must be >= 1"),
        ("synthetic:dtype=", "expected a non-empty string"),
    ],
)
def test_bad_specs(spec, words):
    with pytest.raises(DatasetError) as info:
        datasets.load(spec)
    assert words in str(info.value)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError) as info:
        datasets.load("nope")
    assert str(info.value) == (
        "unknown dataset 'nope'; known: crops5, crops15, sales5, sales15, synthetic, diabetes, "
        "linnerud, digits, breast_cancer; or a path to a .csv file"
    )
    with pytest.raises(DatasetError, match="unknown dataset 'nope'; known: crops5"):
        datasets.describe("nope")


def test_targets_are_rejected_for_registered_datasets():
    with pytest.raises(DatasetError, match="only to CSV files"):
        datasets.load("crops5", targets=["apples"])


@given(
    n=st.integers(1, 60),
    d=st.integers(1, 4),
    k=st.integers(1, 3),
    noise=st.sampled_from([0.0, 0.1, 0.37, 2.0]),
    cond=st.floats(1.0, 1e4),
    seed=st.integers(0, 2**40),
)
def test_dataset_name_is_a_spec_that_rebuilds_the_same_data(n, d, k, noise, cond, seed):
    ds = datasets.make_synthetic(n=n, d=d, k=k, noise=noise, cond=cond, seed=seed)
    again = datasets.load(ds.name)
    assert again.name == ds.name
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(again.Y, ds.Y)


def test_register_parses_options_by_default_type(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {})
    seen = {}

    @registry.register("toy")
    def toy(*, flag: bool = False, label: str = "a", scale: float = 1.0) -> Dataset:
        """A toy loader."""
        seen.update(flag=flag, label=label, scale=scale)
        return _ds(np.ones((2, 1)), np.ones((2, 1)), name="toy")

    registry.load("toy:flag=yes:label=b c:scale=3")
    assert seen == {"flag": True, "label": "b c", "scale": 3.0}
    assert registry.canonical_name("toy", seen) == "toy:flag=true:label=b c:scale=3"
    with pytest.raises(ValueError, match="already registered"):
        registry.register("toy")(toy)


def test_register_rejects_loaders_that_specs_cannot_call(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {})

    def positional(n: int = 3) -> Dataset:
        raise AssertionError

    def no_default(*, n: int) -> Dataset:
        raise AssertionError

    for loader in (positional, no_default):
        with pytest.raises(TypeError, match="keyword-only"):
            registry.register("bad")(loader)
    with pytest.raises(ValueError, match="ambiguous"):
        registry.register("a:b")(positional)
    assert registry.REGISTRY == {}


# ---------------------------------------------------------------- hold-out split


def test_split_sizes_disjoint_and_covering():
    ds = datasets.load("crops15")
    train, hold = datasets.split(ds, 0.2, seed=0)
    assert train.dtype == hold.dtype == np.int64
    assert len(hold) == 3
    assert len(train) == 12
    assert np.intersect1d(train, hold).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, hold])), np.arange(15))
    assert np.all(np.diff(train) > 0)
    assert np.all(np.diff(hold) > 0)


def test_split_is_reproducible_across_processes():
    # Fixed values: a split seeded through Python's per-process hash() would not match them.
    train, hold = datasets.split(datasets.load("crops15"), 0.2, seed=0)
    np.testing.assert_array_equal(hold, [9, 10, 13])
    np.testing.assert_array_equal(train, [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14])
    _, hold = datasets.split(datasets.load("synthetic:n=20"), 0.25, seed=7)
    np.testing.assert_array_equal(hold, [4, 6, 10, 13, 17])


def test_split_depends_on_seed_and_dataset_name():
    ds = datasets.load("synthetic:n=200")
    first = datasets.split(ds, 0.3, seed=1)
    np.testing.assert_array_equal(first[1], datasets.split(ds, 0.3, seed=1)[1])
    assert not np.array_equal(first[1], datasets.split(ds, 0.3, seed=2)[1])
    renamed = _ds(ds.X, ds.Y, name="other")
    assert not np.array_equal(first[1], datasets.split(renamed, 0.3, seed=1)[1])


def test_split_holdout_zero_keeps_every_row_for_training():
    train, hold = datasets.split(datasets.load("sales5"), 0.0, seed=3)
    np.testing.assert_array_equal(train, np.arange(5))
    assert hold.shape == (0,)
    assert hold.dtype == np.int64


@pytest.mark.parametrize(
    ("n", "holdout", "expected"),
    [(2, 0.01, 1), (10, 0.99, 9), (5, 0.2, 1), (15, 0.2, 3), (10, 0.25, 3), (442, 0.2, 88)],
)
def test_split_holdout_size_is_rounded_and_clamped(n, holdout, expected):
    ds = _ds(np.arange(n, dtype=float)[:, None], np.ones((n, 1)))
    train, hold = datasets.split(ds, holdout, seed=0)
    assert len(hold) == expected
    assert len(train) == n - expected


@pytest.mark.parametrize("holdout", [-0.1, 1.0, 1.5, math.nan, True, "0.2", None])
def test_split_rejects_invalid_fractions(holdout):
    with pytest.raises(DatasetError, match="holdout must be"):
        datasets.split(datasets.load("crops15"), holdout, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_split_rejects_invalid_seeds(seed):
    with pytest.raises(DatasetError, match="seed must be a non-negative integer"):
        datasets.split(datasets.load("crops15"), 0.2, seed=seed)


def test_split_of_a_single_row_cannot_hold_out():
    ds = _ds(np.ones((1, 1)), np.ones((1, 1)))
    with pytest.raises(DatasetError, match="has 1 row"):
        datasets.split(ds, 0.5, seed=0)
    train, hold = datasets.split(ds, 0.0, seed=0)
    assert train.tolist() == [0]
    assert hold.size == 0


@given(n=st.integers(2, 300), holdout=st.floats(0.0, 0.999), seed=st.integers(0, 2**32))
def test_split_partitions_the_rows(n, holdout, seed):
    ds = _ds(np.zeros((n, 1)), np.zeros((n, 1)))
    train, hold = datasets.split(ds, holdout, seed)
    assert np.array_equal(np.union1d(train, hold), np.arange(n))
    assert len(train) + len(hold) == n
    assert len(train) >= 1
    assert (len(hold) >= 1) == (holdout > 0)
    if holdout > 0:
        assert len(hold) == min(max(math.floor(holdout * n + 0.5), 1), n - 1)


# ---------------------------------------------------------------- make_split and standardisation


def test_make_split_uses_default_holdout_and_gathers_rows():
    ds = datasets.load("crops15")
    part = datasets.make_split(ds, seed=0)
    train, hold = datasets.split(ds, ds.default_holdout, 0)
    np.testing.assert_array_equal(part.train_idx, train)
    np.testing.assert_array_equal(part.X_train, ds.X[train])
    np.testing.assert_array_equal(part.Y_holdout, ds.Y[hold])
    assert part.standardizer is None
    with pytest.raises(ValueError, match="read-only"):
        part.X_train[0, 0] = 0.0
    assert datasets.make_split(datasets.load("crops5")).X_holdout.shape == (0, 3)


def test_split_rows_shares_the_datasets_arrays_only_when_every_row_trains():
    """No hold-out: the training arrays are the dataset's own (a big set is held once); with
    a hold-out, or rows out of order, they are gathered copies, equal either way."""
    ds = datasets.load("sales15")
    every = np.arange(ds.n)
    whole = datasets.split_rows(ds, every, every[:0])
    assert np.shares_memory(whole.X_train, ds.X)
    assert np.shares_memory(whole.Y_train, ds.Y)
    assert np.shares_memory(datasets.make_split(ds, 0.0).X_train, ds.X)
    for train, hold in ((every[::-1], every[:0]), (every[2:], every[:2])):
        part = datasets.split_rows(ds, train, hold)
        assert not np.shares_memory(part.X_train, ds.X)
        np.testing.assert_array_equal(part.X_train, ds.X[train])
        np.testing.assert_array_equal(part.Y_holdout, ds.Y[hold])
    scaled = datasets.split_rows(ds, every, every[:0], standardize=True)
    assert not np.shares_memory(scaled.X_train, ds.X)  # scaling never writes into the dataset
    np.testing.assert_array_equal(scaled.X_train, datasets.standardize(ds.X)[0])


def test_make_split_standardises_features_with_training_statistics_only():
    ds = datasets.load("sales15")
    part = datasets.make_split(ds, 0.2, seed=4, standardize=True)
    raw_train, raw_hold = ds.X[part.train_idx], ds.X[part.holdout_idx]
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    np.testing.assert_allclose(part.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(part.X_train.std(axis=0), 1.0)
    np.testing.assert_allclose(part.X_holdout, (raw_hold - mean) / std)
    # Targets are never touched.
    np.testing.assert_array_equal(part.Y_train, ds.Y[part.train_idx])
    np.testing.assert_array_equal(part.Y_holdout, ds.Y[part.holdout_idx])


def test_standardize_ignores_the_other_arrays_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal(5.0, 2.0, size=(200, 3))
    X_other = rng.normal(-40.0, 9.0, size=(50, 3))
    train_a, other_a = datasets.standardize(X_train, X_other)
    train_b, other_b = datasets.standardize(X_train, X_other * 3 + 100)
    np.testing.assert_array_equal(train_a, train_b)
    np.testing.assert_allclose(other_a, (X_other - X_train.mean(0)) / X_train.std(0))
    assert not np.allclose(other_a.mean(axis=0), 0.0, atol=1.0)
    assert not np.allclose(other_a, other_b)


def test_standardizer_leaves_constant_columns_unscaled():
    X = np.array([[1.0, 0.1], [2.0, 0.1], [3.0, 0.1]])
    scaler = datasets.Standardizer.fit(X)
    assert scaler.scale[1] == 1.0
    out = scaler.transform(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_allclose(scaler.transform(np.array([[2.0, 1.1]])), [[0.0, 1.0]])


def test_standardizer_keeps_float32_and_validates():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert datasets.Standardizer.fit(X).transform(X).dtype == np.float32
    with pytest.raises(DatasetError, match="fitted on 3 features"):
        datasets.Standardizer.fit(X).transform(np.ones((2, 2)))
    with pytest.raises(DatasetError, match="positive scale"):
        datasets.Standardizer(mean=np.zeros(2), scale=np.array([1.0, 0.0]))
    with pytest.raises(DatasetError, match="non-empty 2-D"):
        datasets.Standardizer.fit(np.ones((0, 3)))


# ---------------------------------------------------------------- closed-form optimum


def _random_problem(n=200, d=4, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1, 3.0][:d] + 5.0
    Y = X @ rng.normal(size=(k, d)).T + rng.normal(size=k) + rng.normal(size=(n, k))
    return X, Y


def test_closed_form_matches_the_normal_equations():
    X, Y = _random_problem()
    A = np.hstack([X, np.ones((len(X), 1))])
    theta = np.linalg.solve(A.T @ A, A.T @ Y)
    W, b, loss = datasets.closed_form(X, Y)
    assert W.shape == (2, 4)
    assert b.shape == (2,)
    np.testing.assert_allclose(W, theta[:-1].T, rtol=1e-9)
    np.testing.assert_allclose(b, theta[-1], rtol=1e-9)
    assert loss == pytest.approx(np.mean((A @ theta - Y) ** 2), rel=1e-12)


def test_closed_form_loss_is_torch_mse_loss_at_the_optimum():
    ds = datasets.load("crops15")
    W, b, loss = datasets.closed_form(ds.X, ds.Y)
    X, Y = ds.tensors()
    pred = X @ torch.tensor(W).T + torch.tensor(b)
    assert F.mse_loss(pred, Y).item() == pytest.approx(loss, rel=1e-10)


@pytest.mark.parametrize("name", ["crops5", "crops15", "sales15", "diabetes", "linnerud"])
def test_closed_form_beats_perturbed_solutions(name):
    ds = datasets.load(name)
    W, b, loss = datasets.closed_form(ds.X, ds.Y)
    assert loss == pytest.approx(_mse(ds.X, ds.Y, W, b), rel=1e-9)
    rng = np.random.default_rng(1)
    for _ in range(5):
        dW = rng.normal(size=W.shape) * 1e-3 * (1 + np.abs(W))
        db = rng.normal(size=b.shape) * 1e-3 * (1 + np.abs(b))
        assert _mse(ds.X, ds.Y, W + dW, b) > loss
        assert _mse(ds.X, ds.Y, W, b + db) > loss


def test_closed_form_matches_scikit_learn():
    from sklearn.linear_model import LinearRegression

    ds = datasets.load("sales15")
    ref = LinearRegression().fit(ds.X, ds.Y)
    W, b, _ = datasets.closed_form(ds.X, ds.Y)
    np.testing.assert_allclose(W, ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(b, ref.intercept_, rtol=1e-8)


def test_closed_form_handles_rank_deficiency():
    X, Y = _random_problem(d=3)
    duplicated = np.hstack([X, X[:, :1]])
    _, _, loss = datasets.closed_form(X, Y)
    W, b, loss_dup = datasets.closed_form(duplicated, Y)
    assert np.all(np.isfinite(W))
    assert loss_dup == pytest.approx(loss, rel=1e-9)
    # Fewer rows than parameters: an exact fit.
    W, b, loss = datasets.closed_form(X[:3], Y[:3])
    assert loss < 1e-20
    # One row: the intercept alone fits it.
    W, b, loss = datasets.closed_form(X[:1], Y[:1])
    np.testing.assert_allclose(b, Y[0])
    assert loss == 0.0


def test_closed_form_gram_path_agrees_with_full_lstsq(monkeypatch):
    # cond(Gram) = 1e6: plain normal equations are off by ~1e-11 here, the refined ones
    # by ~1e-14, so the bound below needs the refinement step.
    ds = datasets.make_synthetic(n=3000, d=6, cond=1e6, noise=0.01)
    fast = datasets.closed_form(ds.X, ds.Y)
    monkeypatch.setattr(optimum, "_GRAM_COND_LIMIT", 0.0)
    reference = datasets.closed_form(ds.X, ds.Y)
    for got, want in zip(fast[:2], reference[:2], strict=True):
        assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
    assert fast[2] == pytest.approx(reference[2], rel=1e-10)


def test_closed_form_streams_over_row_blocks(monkeypatch):
    X, Y = _random_problem(n=101)
    whole = datasets.closed_form(X, Y)
    monkeypatch.setattr(optimum, "_CHUNK_ROWS", 7)
    blocks = datasets.closed_form(X, Y)
    for a, b in zip(whole[:2], blocks[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert blocks[2] == pytest.approx(whole[2], rel=1e-12)


def test_closed_form_is_float64_for_float32_data_and_invariant_to_standardisation():
    ds = datasets.make_synthetic(n=2000, d=5, dtype="float32")
    W, b, loss = datasets.closed_form(ds.X, ds.Y)
    assert W.dtype == b.dtype == np.float64
    (Xs,) = datasets.standardize(ds.X.astype(np.float64))
    _, _, loss_std = datasets.closed_form(Xs, ds.Y)
    assert loss_std == pytest.approx(loss, rel=1e-6)


def test_closed_form_rejects_mismatched_shapes():
    with pytest.raises(DatasetError, match="closed_form needs"):
        datasets.closed_form(np.ones((3, 2)), np.ones((4, 1)))
    with pytest.raises(DatasetError, match="closed_form needs"):
        datasets.closed_form(np.ones((3, 2)), np.ones(3))
