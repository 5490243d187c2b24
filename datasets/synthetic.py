"""A linear-regression problem with a chosen size, noise level and condition number."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from datasets.core import Dataset, DatasetError, check_size, format_bytes
from datasets.registry import canonical_name, register

# Rows generated per block: big enough for an efficient matmul, small enough that the float64
# scratch buffers stay in cache instead of doubling peak memory for n = 1e6.
_CHUNK_ROWS = 16384


def feature_variances(d: int, cond: float) -> np.ndarray:
    """Eigenvalues of the feature covariance: log-spaced from 1 down to 1/cond (d >= 2).

    With one feature the single variance is 1/cond, so that the loss Hessian, whose other
    eigenvalue comes from the intercept and is 1, still has condition number `cond`.
    """
    if d == 1:
        return np.array([1.0 / cond])
    return cond ** -np.linspace(0.0, 1.0, d)


@register("synthetic")
def make_synthetic(
    *,
    n: int = 1000,
    d: int = 10,
    k: int = 2,
    noise: float = 0.1,
    cond: float = 10.0,
    seed: int = 0,
    dtype: str = "float64",
) -> Dataset:
    """Synthetic linear regression with Gaussian features of chosen conditioning.

    Model: `Y = X @ W.T + b + noise * eps`, with `W` (k x d), `b` (k) and `eps` standard normal.

    Features: `X = Z @ diag(sqrt(lam)) @ Q.T` with `Z` standard normal (n x d), `Q` a
    uniformly random rotation and `lam` log-spaced from 1 down to 1/cond. So the rows are
    zero-mean Gaussian with covariance `Sigma = Q diag(lam) Q.T`.

    Meaning of `cond`: the condition number of the population Hessian of the MSE loss with
    respect to (W, b), i.e. of `E[[x, 1] [x, 1]^T] = diag(Sigma, 1)`; gradient descent's
    linear rate is governed by it. For d >= 2 it equals the condition number of `Sigma`, so
    `cond(Xc.T @ Xc)` of the centred sample tends to `cond` as n grows (and the singular
    values of X spread by sqrt(cond)). For d = 1 the feature variance is 1/cond.

    The rotation matters: with axis-aligned variances a per-coordinate method such as Adam
    would undo the conditioning for free, flattering it against SGD.

    `seed` fixes everything (numpy Generator, independent streams for the true model, the
    features and the noise). `dtype="float32"` stores the same draw rounded to float32, for
    half the memory; arithmetic is float64 either way.
    """
    n = _int_option("n", n, 1)
    d = _int_option("d", d, 1)
    k = _int_option("k", k, 1)
    seed = _int_option("seed", seed, 0)
    noise = _real_option("noise", noise, 0.0)
    cond = _real_option("cond", cond, 1.0)
    if dtype not in ("float64", "float32"):
        raise DatasetError(f"synthetic: dtype must be 'float64' or 'float32', got {dtype!r}")
    store = np.dtype(dtype)
    _check_memory(n, d, k, store)

    # Separate streams so that, for example, the true W does not change with n or noise.
    model_rng, feature_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    gauss = model_rng.standard_normal((d, d))
    q, r = np.linalg.qr(gauss)
    # Sign fix makes Q Haar-distributed rather than biased by the QR convention.
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    mix = np.sqrt(feature_variances(d, cond))[:, None] * q.T
    w_true = model_rng.standard_normal((k, d))
    b_true = model_rng.standard_normal(k)

    X = np.empty((n, d), dtype=store)
    Y = np.empty((n, k), dtype=store)
    z = np.empty((min(n, _CHUNK_ROWS), d))
    scratch = None if store == np.float64 else np.empty_like(z)
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(n, start + _CHUNK_ROWS)
        zc = z[: stop - start]
        feature_rng.standard_normal(out=zc)
        # float64 rows go straight into X: one pass over its memory instead of two.
        xc = X[start:stop] if scratch is None else scratch[: stop - start]
        np.matmul(zc, mix, out=xc)
        yc = xc @ w_true.T + b_true
        if noise > 0.0:
            yc += noise * noise_rng.standard_normal(yc.shape)
        if scratch is not None:
            X[start:stop] = xc
        Y[start:stop] = yc

    options = {"n": n, "d": d, "k": k, "noise": noise, "cond": cond, "seed": seed, "dtype": dtype}
    return Dataset(
        name=canonical_name("synthetic", options),
        X=X,
        Y=Y,
        feature_names=tuple(f"x{i}" for i in range(d)),
        target_names=tuple(f"y{j}" for j in range(k)),
        description=(
            f"Synthetic linear regression (n={n}, d={d}, k={k}, noise={noise:g}, "
            f"cond={cond:g}, seed={seed}): rotated Gaussian features; optbench generator"
        ),
        default_holdout=0.2,
    )


def _check_memory(n: int, d: int, k: int, store: np.dtype) -> None:
    """Refuse, before allocating anything, a draw whose arrays would exceed MAX_ARRAY_BYTES.

    Counts X and Y (n x (d + k) in the stored dtype), the d x d float64 rotation work arrays
    (the Gaussian draw, Q, R and the mixing matrix) and the float64 row-block buffers.
    """
    data = n * (d + k) * store.itemsize
    rotation = 4 * d * d * 8
    blocks = min(n, _CHUNK_ROWS) * d * 8 * (1 if store == np.float64 else 2)
    check_size(
        "synthetic",
        data + rotation + blocks,
        f"n={n}, d={d}, k={k} in {store.name}",
        f"X and Y {format_bytes(data)}, rotation {format_bytes(rotation)}",
    )


def _int_option(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise DatasetError(f"synthetic: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise DatasetError(f"synthetic: {name} must be >= {minimum}, got {value}")
    return int(value)


def _real_option(name: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise DatasetError(f"synthetic: {name} must be a finite number, got {value!r}")
    if value < minimum:
        raise DatasetError(f"synthetic: {name} must be >= {minimum:g}, got {value}")
    return float(value)
