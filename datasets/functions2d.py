"""Two-dimensional test functions for drawing optimizer trajectories over contour plots.

A registry like the datasets': `FUNCTIONS_2D` is a plain dict filled by `@register_function`,
and `function_2d(name)` looks one up (an unknown name lists the known ones). Each entry's `f`
takes `xy` and reads only `xy[0]` and `xy[1]` with arithmetic operators, so the same formula
serves a 2-element torch tensor (a differentiable scalar, in the tensor's dtype, float32 or
float64) and a stacked numpy grid of shape (2, H, W) (an H x W array for `contour`). Nothing
here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datasets.core import DatasetError

Point = tuple[float, float]


@dataclass(frozen=True)
class Function2D:
    """A 2-D test function with its known global minimum.

    `minimizers` lists every global minimiser (the first is the one to aim for);
    `minimum` is `f` there. `start` is the conventional starting point, from which plain
    gradient descent with `lr` converges (a tested promise). `bounds` is
    `((x_min, x_max), (y_min, y_max))` for contour plots; it contains start and minimisers.
    """

    name: str
    f: Callable[[Any], Any]
    minimizers: tuple[Point, ...]
    minimum: float
    start: Point
    lr: float
    bounds: tuple[Point, Point]
    description: str

    @property
    def minimizer(self) -> Point:
        """The first (for most functions the only) global minimiser."""
        return self.minimizers[0]


FUNCTIONS_2D: dict[str, Function2D] = {}


def register_function(
    name: str,
    *,
    minimizers: tuple[Point, ...],
    minimum: float,
    start: Point,
    lr: float,
    bounds: tuple[Point, Point],
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register the decorated formula under `name`; its docstring's first line describes it."""

    def decorate(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if name in FUNCTIONS_2D:
            raise ValueError(f"2-D function {name!r} is already registered")
        description = (f.__doc__ or "").strip().split("\n", 1)[0]
        FUNCTIONS_2D[name] = Function2D(
            name, f, minimizers, minimum, start, lr, bounds, description
        )
        return f

    return decorate


def functions_2d() -> list[str]:
    """Registered 2-D function names, in registration order."""
    return list(FUNCTIONS_2D)


def function_2d(name: str) -> Function2D:
    """The registered 2-D function `name`."""
    try:
        return FUNCTIONS_2D[name]
    except KeyError:
        raise DatasetError(
            f"unknown 2-D function {name!r}; known: {', '.join(FUNCTIONS_2D)}"
        ) from None


@register_function(
    "rosenbrock",
    minimizers=((1.0, 1.0),),
    minimum=0.0,
    start=(-1.2, 1.0),
    lr=1e-3,
    bounds=((-2.0, 2.0), (-1.0, 3.0)),
)
def rosenbrock(xy: Any) -> Any:
    """Rosenbrock's banana valley, a = 1, b = 100: (a - x)^2 + b (y - x^2)^2.

    Minimum 0 at (1, 1), at the end of a long curved valley. Start (-1.2, 1) is
    Rosenbrock's own (1960); plain GD with lr = 1e-3 follows the valley without diverging.
    """
    x, y = xy[0], xy[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


@register_function(
    "beale",
    minimizers=((3.0, 0.5),),
    minimum=0.0,
    start=(1.0, 1.5),
    lr=1e-2,
    bounds=((-4.5, 4.5), (-4.5, 4.5)),
)
def beale(xy: Any) -> Any:
    """Beale's function: (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2.

    Minimum 0 at (3, 0.5), in a flat valley ringed by steep walls (the y^3 term). From
    (1, 1.5), plain GD with lr = 1e-2 reaches the minimum; starts further out such as
    (2, 2) diverge at that learning rate. Bounds are the customary [-4.5, 4.5]^2.
    """
    x, y = xy[0], xy[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


@register_function(
    "himmelblau",
    minimizers=(
        (3.0, 2.0),
        (-2.805118, 3.131312),
        (-3.779310, -3.283186),
        (3.584428, -1.848126),
    ),
    minimum=0.0,
    start=(0.0, 0.0),
    lr=1e-2,
    bounds=((-5.0, 5.0), (-5.0, 5.0)),
)
def himmelblau(xy: Any) -> Any:
    """Himmelblau's function: (x^2 + y - 11)^2 + (x + y^2 - 7)^2, four global minima of 0.

    (3, 2) is exact; the other three are known to 6 decimals. From (0, 0), plain GD with
    lr = 1e-2 goes to (3, 2).
    """
    x, y = xy[0], xy[1]
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2
