"""2-D test functions: known minima, zero gradients there, values against numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets import DatasetError, function_2d, functions_2d
from datasets import functions2d as f2d


def _np_rosenbrock(x, y):
    return np.square(1 - x) + 100 * np.square(y - np.square(x))


def _np_beale(x, y):
    return (
        np.square(1.5 - x * (1 - y))
        + np.square(2.25 - x * (1 - np.power(y, 2)))
        + np.square(2.625 - x * (1 - np.power(y, 3)))
    )


def _np_himmelblau(x, y):
    return np.square(np.square(x) + y - 11) + np.square(x + np.square(y) - 7)


NUMPY = {"rosenbrock": _np_rosenbrock, "beale": _np_beale, "himmelblau": _np_himmelblau}
POINTS = [(0.0, 0.0), (-1.2, 1.0), (1.5, -0.5), (2.0, 3.0), (-3.0, 1.25)]


def test_registry_lists_the_functions_in_order():
    assert functions_2d() == ["rosenbrock", "beale", "himmelblau"]
    assert set(f2d.FUNCTIONS_2D) == set(NUMPY)


@pytest.mark.parametrize("name", list(NUMPY))
@pytest.mark.parametrize("point", POINTS)
def test_values_match_numpy_formulas(name, point):
    fn = function_2d(name)
    xy = torch.tensor(point, dtype=torch.float64)
    assert fn.f(xy).item() == pytest.approx(NUMPY[name](*point), rel=1e-14, abs=1e-14)


def test_hand_computed_values():
    # Rosenbrock at its conventional start: (2.2)^2 + 100 (1 - 1.44)^2 = 4.84 + 19.36.
    assert function_2d("rosenbrock").f(torch.tensor([-1.2, 1.0])).item() == pytest.approx(24.2)
    # Beale at (1, 1.5): 2^2 + 3.5^2 + 5^2 = 41.25; Himmelblau at 0: 121 + 49 = 170.
    assert function_2d("beale").f(torch.tensor([1.0, 1.5])).item() == pytest.approx(41.25)
    assert function_2d("himmelblau").f(torch.tensor([0.0, 0.0])).item() == pytest.approx(170.0)


@pytest.mark.parametrize("name", list(NUMPY))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_minimum_and_zero_gradient_at_the_exact_minimiser(name, dtype):
    fn = function_2d(name)
    xy = torch.tensor(fn.minimizer, dtype=dtype, requires_grad=True)
    value = fn.f(xy)
    assert value.dtype == dtype
    assert value.shape == ()
    (grad,) = torch.autograd.grad(value, xy)
    assert value.item() == fn.minimum == 0.0
    assert torch.equal(grad, torch.zeros(2, dtype=dtype))


def test_himmelblaus_other_minima_to_their_published_precision():
    fn = function_2d("himmelblau")
    assert len(fn.minimizers) == 4
    for point in fn.minimizers[1:]:
        xy = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        value = fn.f(xy)
        (grad,) = torch.autograd.grad(value, xy)
        assert value.item() < 1e-9
        assert grad.abs().max().item() < 1e-3


@pytest.mark.parametrize("name", list(NUMPY))
def test_f_evaluates_a_numpy_grid_for_contours(name):
    fn = function_2d(name)
    (x0, x1), (y0, y1) = fn.bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, 7), np.linspace(y0, y1, 5))
    grid = fn.f(np.stack([xs, ys]))
    assert grid.shape == (5, 7)
    np.testing.assert_allclose(grid, NUMPY[name](xs, ys), rtol=1e-14)


@pytest.mark.parametrize("name", list(NUMPY))
def test_bounds_hold_the_start_and_the_minimisers(name):
    fn = function_2d(name)
    (x0, x1), (y0, y1) = fn.bounds
    for x, y in (fn.start, *fn.minimizers):
        assert x0 <= x <= x1
        assert y0 <= y <= y1
    assert fn.description
    assert "\n" not in fn.description


@pytest.mark.parametrize(
    ("name", "steps", "tolerance"),
    [("rosenbrock", 3000, 0.4), ("beale", 1000, 0.03), ("himmelblau", 300, 1e-6)],
)
def test_plain_gradient_descent_from_the_start_reaches_the_minimiser(name, steps, tolerance):
    # The documented promise: from `start`, GD with `lr` does not diverge and gets there
    # (Rosenbrock's curved valley is slow: after 3000 steps it is still 0.33 away).
    fn = function_2d(name)
    xy = torch.tensor(fn.start, dtype=torch.float64, requires_grad=True)
    start_value = fn.f(xy).item()
    for _ in range(steps):
        (grad,) = torch.autograd.grad(fn.f(xy), xy)
        with torch.no_grad():
            xy -= fn.lr * grad
    assert torch.isfinite(xy).all()
    assert fn.f(xy).item() < 1e-2 * start_value
    distance = np.hypot(*(xy.detach().numpy() - np.array(fn.minimizer)))
    assert distance < tolerance


def test_unknown_function_lists_the_known_ones():
    with pytest.raises(DatasetError) as info:
        function_2d("ackley")
    assert str(info.value) == "unknown 2-D function 'ackley'; known: rosenbrock, beale, himmelblau"


def test_register_refuses_a_second_function_of_the_same_name(monkeypatch):
    monkeypatch.setattr(f2d, "FUNCTIONS_2D", {})

    def make():
        @f2d.register_function(
            "bowl",
            minimizers=((0.0, 0.0),),
            minimum=0.0,
            start=(1.0, 1.0),
            lr=0.1,
            bounds=((-1.0, 1.0), (-1.0, 1.0)),
        )
        def bowl(xy):
            """A round bowl: x^2 + y^2."""
            return xy[0] ** 2 + xy[1] ** 2

    make()
    assert f2d.function_2d("bowl").description == "A round bowl: x^2 + y^2."
    with pytest.raises(ValueError, match="already registered"):
        make()
