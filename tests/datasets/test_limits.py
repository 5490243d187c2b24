"""Resource limits: oversized synthetic specs and oversized optima fail fast, before allocating."""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pytest

import datasets
from datasets import DatasetError, core, optimum


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("synthetic:n=1e12", "n=1000000000000, d=10, k=2 in float64 would take 87.3 TiB"),
        ("synthetic:n=10:d=50000", "rotation 74.5 GiB"),
        ("synthetic:n=2e8:d=10:dtype=float32", "in float32 would take 8.9 GiB"),
    ],
)
def test_oversized_synthetic_spec_is_refused_before_allocation(spec, words):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as info:
            datasets.load(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert words in message
    assert "over the 4.0 GiB limit (datasets.core.MAX_ARRAY_BYTES)" in message
    assert "\n" not in message
    assert peak < 10 * 2**20
    assert time.perf_counter() - start < 1.0


def test_size_limit_counts_the_arrays_exactly(monkeypatch):
    # n=100, d=3, k=2 in float64: X and Y 4000 B, rotation 4*3*3*8 = 288 B, row blocks 2400 B.
    monkeypatch.setattr(core, "MAX_ARRAY_BYTES", 4000 + 288 + 2400)
    assert datasets.make_synthetic(n=100, d=3, k=2).n == 100
    monkeypatch.setattr(core, "MAX_ARRAY_BYTES", 4000 + 288 + 2400 - 1)
    with pytest.raises(DatasetError, match=r"would take 6\.5 KiB"):
        datasets.make_synthetic(n=100, d=3, k=2)


def test_wide_data_get_no_optimum_and_no_gram_matrix():
    # 20,000 features: the Gram matrix alone would be 3 GiB.
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 20_000)), rng.normal(size=(3, 2))
    tracemalloc.start()
    try:
        opt = datasets.least_squares(X, Y)
        W, b, loss = datasets.closed_form(X, Y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    assert math.isnan(opt.loss)
    assert opt.W is None
    assert not opt.available
    assert opt.reason == (
        "least-squares optimum skipped: d=20000 features would need a 20000 x 20000 Gram "
        "matrix of 3.0 GiB (limit d <= 4096, datasets.optimum.MAX_GRAM_FEATURES)"
    )
    assert math.isnan(loss)
    assert W.shape == (2, 20_000)
    assert np.isnan(W).all()
    assert np.isnan(b).all()


def test_gram_limit_boundary(monkeypatch):
    X, Y = np.random.default_rng(1).normal(size=(50, 4)), np.ones((50, 1))
    monkeypatch.setattr(optimum, "MAX_GRAM_FEATURES", 4)
    assert datasets.least_squares(X, Y).available
    monkeypatch.setattr(optimum, "MAX_GRAM_FEATURES", 3)
    assert "d=4 features" in datasets.least_squares(X, Y).reason


def test_wide_csv_loads_and_reports_why_it_has_no_optimum(tmp_path):
    d = optimum.MAX_GRAM_FEATURES + 1
    rng = np.random.default_rng(2)
    header = ",".join([f"x{j}" for j in range(d)] + ["y"])
    rows = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(4, d + 1)))
    path = tmp_path / "wide.csv"
    path.write_text(header + "\n" + rows + "\n")
    ds = datasets.load_csv(path, targets=["y"])
    assert ds.X.shape == (4, d)
    opt = datasets.reference_optimum(ds.task, ds.X, ds.Y)
    assert math.isnan(opt.loss)
    assert f"d={d} features" in opt.reason


def test_ill_conditioned_fallback_is_skipped_when_its_copy_is_too_big(monkeypatch):
    # A duplicated column makes the Gram matrix singular, so the full lstsq would be used.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    X = np.hstack([X, X[:, :1]])
    Y = rng.normal(size=(200, 1))
    assert datasets.least_squares(X, Y).available
    monkeypatch.setattr(optimum, "MAX_LSTSQ_BYTES", 200 * 4 * 8 - 1)
    opt = datasets.least_squares(X, Y)
    assert math.isnan(opt.loss)
    assert "ill-conditioned" in opt.reason
    assert "200 x 4 would copy 6.2 KiB" in opt.reason
