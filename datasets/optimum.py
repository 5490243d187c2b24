"""The reference optimum of a dataset's loss, where one can be computed, and why not otherwise.

Which optimum exists for which task (`reference_optimum` dispatches on `Dataset.task`):

| task           | loss                             | reference optimum                          |
|----------------|----------------------------------|--------------------------------------------|
| regression     | mean squared error, linear model | exact least squares (`least_squares`)      |
| classification | softmax cross-entropy            | none: NaN, with the reason                 |

A skipped optimum is never silent: it is NaN with a one-line `reason`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datasets.core import TASKS, DatasetError, format_bytes

# Largest d for which the d x d float64 Gram matrix is formed: 4096 features make a 128 MiB
# matrix and an eigendecomposition of a few seconds on two cores. Wider data (a CSV with
# 20,000 columns would need a 3 GiB Gram matrix) get no reference optimum, with a reason.
MAX_GRAM_FEATURES = 4096

# Largest float64 centred copy of X (n x d) that the ill-conditioned fallback, a full lstsq
# (SVD), may make; beyond it the optimum is skipped with a reason.
MAX_LSTSQ_BYTES = 2**30


@dataclass(frozen=True, eq=False)
class Optimum:
    """The reference optimum of one task's loss on one set of rows, or why there is none.

    `loss` is the minimum training loss (NaN when skipped); `W` (k x d) and `b` (k,) the
    minimiser of the linear model when computed, else None; `reason` is "" when computed and
    otherwise one line saying why not.
    """

    task: str
    loss: float
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        """Whether the optimum was computed."""
        return not self.reason


# Normal equations lose about log10(cond(G)) digits of W; one refinement step with an exact
# residual wins most of them back while cond(G) * eps << 1. Beyond this the full-matrix
# lstsq (SVD) is used, which also handles exact rank deficiency.
_GRAM_COND_LIMIT = 1e8

# Rows per block when streaming over X: keeps the float64 centred copy of a block in cache
# and avoids a second n x d array for float32 or very tall inputs.
_CHUNK_ROWS = 16384


def closed_form(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares `(W, b, loss)` for the model `X @ W.T + b`, computed in float64.

    The tuple form of `least_squares`; see there for the maths. When the optimum is skipped
    for size (d > MAX_GRAM_FEATURES, or an ill-conditioned problem whose lstsq copy would
    exceed MAX_LSTSQ_BYTES), `W` and `b` are NaN-filled and `loss` is NaN: call
    `least_squares` to get the reason. Classification labels (a 1-D Y) are an error: their
    loss has no closed-form optimum (`reference_optimum` says so with a reason).
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    if Y.ndim == 1 and np.issubdtype(Y.dtype, np.integer):
        raise DatasetError(
            "closed_form is least squares for regression targets (n x k); classification "
            "labels have no closed-form optimum (see datasets.reference_optimum)"
        )
    opt = least_squares(X, Y)
    if opt.W is None or opt.b is None:
        k, d = Y.shape[1], X.shape[1]
        return np.full((k, d), math.nan), np.full(k, math.nan), math.nan
    return opt.W, opt.b, opt.loss


def least_squares(X: np.ndarray, Y: np.ndarray) -> Optimum:
    """The exact least-squares optimum for the model `X @ W.T + b`, computed in float64.

    `loss` is the minimum of the mean squared error over all n*k entries, the convention of
    `torch.nn.functional.mse_loss` and of the seed notebooks (`sum(diff * diff) / numel`):

        loss = min over W, b of  mean((X @ W.T + b - Y) ** 2)

    `W` has shape (k, d) and `b` shape (k,). The intercept is handled by centring: with
    column means `x_bar`, `y_bar`, the optimum is `W` solving least squares on the centred
    data and `b = y_bar - W @ x_bar`. When the data are rank deficient (duplicate columns,
    fewer rows than features) `W` is the minimum-norm optimum; `loss` is the optimum either
    way. Because an affine change of the features is absorbed by `W` and `b`, `loss` is the
    same for raw and standardised features.

    Well-conditioned data (cond(Xc.T @ Xc) <= 1e8) are solved through the d x d Gram matrix
    plus one step of iterative refinement, streaming over row blocks (n = 1e6, d = 100:
    under 2 s on two cores, against 12 s for a full lstsq); anything worse goes to
    `numpy.linalg.lstsq` on the full centred matrix. `loss` is always computed from an
    explicit residual, never as a difference of large sums.

    Skipped, before allocating, with NaN and a reason: d > MAX_GRAM_FEATURES, or the lstsq
    fallback's float64 copy of X over MAX_LSTSQ_BYTES.
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 1:
        raise DatasetError(
            f"closed_form needs X (n x d) and Y (n x k) with n >= 1, got {X.shape} and {Y.shape}"
        )
    n, d = X.shape
    if d > MAX_GRAM_FEATURES:
        return _skipped(
            "regression",
            f"least-squares optimum skipped: d={d} features would need a {d} x {d} Gram matrix "
            f"of {format_bytes(8 * d * d)} (limit d <= {MAX_GRAM_FEATURES}, "
            "datasets.optimum.MAX_GRAM_FEATURES)",
        )
    x_bar = X.mean(axis=0, dtype=np.float64)
    y_bar = Y.mean(axis=0, dtype=np.float64)

    gram = np.zeros((d, d))
    cross = np.zeros((d, Y.shape[1]))
    for xc, yc in _centred_blocks(X, Y, x_bar, y_bar):
        gram += xc.T @ xc
        cross += xc.T @ yc
    eig = np.linalg.eigvalsh(gram)
    if eig[0] > 0 and eig[-1] <= _GRAM_COND_LIMIT * eig[0]:
        coef = np.linalg.solve(gram, cross)
        correction = np.zeros_like(cross)
        for xc, yc in _centred_blocks(X, Y, x_bar, y_bar):
            correction += xc.T @ (yc - xc @ coef)
        coef += np.linalg.solve(gram, correction)
    else:
        if 8 * n * d > MAX_LSTSQ_BYTES:
            return _skipped(
                "regression",
                f"least-squares optimum skipped: the data are ill-conditioned and the full "
                f"lstsq of {n} x {d} would copy {format_bytes(8 * n * d)} (limit "
                f"{format_bytes(MAX_LSTSQ_BYTES)}, datasets.optimum.MAX_LSTSQ_BYTES)",
            )
        xc = np.subtract(X, x_bar, dtype=np.float64)
        yc = np.subtract(Y, y_bar, dtype=np.float64)
        coef = np.linalg.lstsq(xc, yc, rcond=None)[0]

    sse = 0.0
    for xc, yc in _centred_blocks(X, Y, x_bar, y_bar):
        resid = yc - xc @ coef
        sse += float(np.einsum("ij,ij->", resid, resid))
    W = coef.T.copy()
    b = y_bar - W @ x_bar
    return Optimum(task="regression", loss=sse / Y.size, W=W, b=b)


_SOLVERS: dict[str, Callable[[np.ndarray, np.ndarray], Optimum]] = {}


def _solver_for(task: str):
    def decorate(fn: Callable[[np.ndarray, np.ndarray], Optimum]):
        _SOLVERS[task] = fn
        return fn

    return decorate


@_solver_for("regression")
def _regression(X: np.ndarray, Y: np.ndarray) -> Optimum:
    return least_squares(X, Y)


@_solver_for("classification")
def _classification(X: np.ndarray, Y: np.ndarray) -> Optimum:
    # The minimiser of softmax cross-entropy has no closed form, and on linearly separable
    # data (common with d close to n) the infimum 0 is not attained at any finite W.
    return _skipped(
        "classification",
        "no closed-form optimum for softmax cross-entropy (and none is attained when the "
        "classes are linearly separable)",
    )


def reference_optimum(task: str, X: np.ndarray, Y: np.ndarray) -> Optimum:
    """The reference optimum of `task`'s loss on rows `X`, `Y` (see the module's table).

    Regression: the exact least-squares optimum (`least_squares`), or NaN with a reason when
    it is too large to compute. Classification: always NaN, with the reason.
    """
    try:
        solver = _SOLVERS[task]
    except KeyError:
        raise DatasetError(f"unknown task {task!r}; known: {', '.join(TASKS)}") from None
    return solver(X, Y)


def _skipped(task: str, reason: str) -> Optimum:
    return Optimum(task=task, loss=math.nan, reason=reason)


def _centred_blocks(X: np.ndarray, Y: np.ndarray, x_bar: np.ndarray, y_bar: np.ndarray):
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        yield (
            np.subtract(X[start:stop], x_bar, dtype=np.float64),
            np.subtract(Y[start:stop], y_bar, dtype=np.float64),
        )
