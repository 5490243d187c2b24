"""DeepOBS's `quadratic_deep` test problem, rebuilt exactly, with its closed-form optimum.

The problem (Schneider, Balles & Hennig, "DeepOBS: A Deep Learning Optimizer Benchmark Suite",
ICLR 2019): minimise over theta in R^100 the mean over data points x of

    loss(theta; x) = 0.5 * (theta - x)^T Q (theta - x)

with Q = R^T diag(lambda) R, 90 eigenvalues lambda drawn uniformly from (0, 1) and 10 from
(30, 60), R a Haar-random rotation; the x are 1000 draws of N(0, 0.6^2 I) for training and
1000 others for testing; theta starts at ones(100); batch size 128 (remainder dropped), 100
epochs. Since Q is positive definite, the mean training loss is minimised by the mean of the
training points, theta* = mean_i x_i, and the population loss E_x[loss] = 0.5 theta^T Q theta
+ 0.5 * 0.6^2 * tr(Q) by theta = 0.

Sources read (GitHub fsschneider/DeepOBS, through the stored index; commit shown after @):

- `deepobs/pytorch/testproblems/quadratic_deep.py` @ 923307b2aa8640451760a1225b4bea5527d083ea:
  the module-level `rng = np.random.RandomState(42)`; `random_rotation(D)` (subgroup algorithm
  of Diaconis & Shahshahani: `t = 2*pi*rng.uniform()`, a 2 x 2 rotation, then for d = 2..D-1
  `v = rng.normal(size=(d+1, 1))` normalised, `x = (e - v) / |e - v|`, `R = D - 2 outer(x,
  x^T D)` with D the block matrix diag(1, R); returns `-R`), which draws from that module
  rng; and `set_up()`: a local `rng = np.random.RandomState(42)`, `eigenvalues =
  np.concatenate((rng.uniform(0., 1., 90), rng.uniform(30., 60., 10)))`, `R =
  random_rotation(100)`, `Hessian = np.matmul(np.transpose(R), np.matmul(D, R))`,
  `torch.from_numpy(Hessian).to(device, torch.float32)`; reduction "mean" over the batch.
  `_rotation` and `_draw` below reproduce these lines.
- `deepobs/pytorch/testproblems/testproblems_modules.py`, class `net_quadratic_deep`:
  `theta = nn.Parameter(torch.ones(dim))`, forward `q = theta - x`,
  `0.5 * torch.diag(torch.mm(q, torch.mm(Hessian, q.T)))` (one loss per example).
- `deepobs/pytorch/datasets/quadratic.py`: `dim=100, train_size=1000, noise_level=0.6`; train
  `np.random.RandomState(42).normal(0.0, noise_level, (train_size, dim))`, test the same with
  `RandomState(43)`, both cast with `np.float32`; `DataLoader(..., drop_last=True)`, train
  shuffled, test not; the train-eval loader is the train loader.
- `deepobs/config.py` @ 06e33ed4525bfe0b891f8c9c920ee2929309c7d0,
  `DEFAULT_TEST_PROBLEMS_SETTINGS["quadratic_deep"] = {"batch_size": 128, "num_epochs": 100}`.
- `deepobs/tensorflow/testproblems/quadratic_deep.py` @ 01a989d97aa9779438bc312c3702b4d63093d08a
  and `deepobs/tensorflow/testproblems/_quadratic.py`: the same recipe, but the eigenvalues
  and the rotation come from one module-level `RandomState(42)` stream (eigenvalues first),
  the Hessian is cast to float32 and theta initialised to 1.0. The earlier PyTorch file
  (@ 07c7144967311875cdfbd917bb876341a3af7533) draws from one stream the same way.

So DeepOBS has two different Q matrices under one name. `variant="pytorch"` (the default) is
the current PyTorch code; `variant="tensorflow"` is the TensorFlow code (and the earlier
PyTorch code), on which the published baselines were run: their logged test loss at epoch 0,
353.44676426478793, is this variant's initial test loss over the evaluated 896 points
(353.4468 here), while the PyTorch variant's is 228.89. Two more DeepOBS facts the numbers
here follow: its module-level rng is consumed by every instance, so these are the matrices of
the *first* quadratic_deep built in a process; and evaluation runs over whole batches only
(drop_last), so a logged test loss is the mean over the first 7 x 128 = 896 test points
(`evaluated_loss`), not over all 1000 (`loss`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from datasets.core import DatasetError

DIM = 100
TRAIN_SIZE = 1000
NOISE_LEVEL = 0.6
BATCH_SIZE = 128
NUM_EPOCHS = 100
VARIANTS = ("pytorch", "tensorflow")


@dataclass(frozen=True, eq=False)
class QuadraticProblem:
    """One variant of `quadratic_deep`: its matrices, data, start point and optimum.

    `hessian` is the float32 Q the DeepOBS loss multiplies by; `hessian64` the float64 matrix
    it was rounded from; `eigenvalues` (float64, in draw order) and `rotation` R give
    `hessian64 = R^T diag(eigenvalues) R` up to rounding. Q is symmetric only to rounding, as
    in DeepOBS (nothing symmetrises it). `X_train`, `X_test`: float32 (1000 x 100).
    `theta0`: float32 ones. Losses are computed in float64 from these exact float32 values.
    """

    variant: str
    eigenvalues: np.ndarray = field(repr=False)
    rotation: np.ndarray = field(repr=False)
    hessian64: np.ndarray = field(repr=False)
    hessian: np.ndarray = field(repr=False)
    X_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    theta0: np.ndarray = field(repr=False)
    name: str = "quadratic_deep"
    noise_level: float = NOISE_LEVEL
    batch_size: int = BATCH_SIZE
    num_epochs: int = NUM_EPOCHS

    def losses(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Per-point `0.5 (theta - x)^T Q (theta - x)`, float64, for each row x of `X`."""
        q = np.asarray(theta, dtype=np.float64) - np.asarray(X, dtype=np.float64)
        return 0.5 * np.einsum("ij,ij->i", q @ self.hessian.astype(np.float64), q)

    def loss(self, theta: np.ndarray, X: np.ndarray) -> float:
        """Mean of `losses` over all rows of `X` (DeepOBS's "mean" reduction)."""
        return float(self.losses(theta, X).mean())

    def evaluated_loss(self, theta: np.ndarray, X: np.ndarray) -> float:
        """The mean over the rows DeepOBS's evaluation of an unshuffled loader sees.

        Only whole batches are kept (drop_last): the first (n // 128) * 128 = 896 rows.
        """
        kept = (len(X) // self.batch_size) * self.batch_size
        return float(self.losses(theta, X[:kept]).mean())

    def gradient(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Gradient of `loss` in theta: `0.5 (Q + Q^T) (theta - mean(x))`, float64."""
        q64 = self.hessian.astype(np.float64)
        mean = np.asarray(X, dtype=np.float64).mean(axis=0)
        return 0.5 * (q64 + q64.T) @ (np.asarray(theta, dtype=np.float64) - mean)

    def expected_loss(self, theta: np.ndarray) -> float:
        """Population loss over x ~ N(0, noise^2 I): `0.5 th^T Q th + 0.5 noise^2 tr(Q)`."""
        theta = np.asarray(theta, dtype=np.float64)
        q64 = self.hessian.astype(np.float64)
        return float(0.5 * theta @ q64 @ theta + 0.5 * self.noise_level**2 * np.trace(q64))

    @functools.cached_property
    def theta_star(self) -> np.ndarray:
        """The minimiser of the mean training loss: the mean of the training points (float64)."""
        star = self.X_train.mean(axis=0, dtype=np.float64)
        star.setflags(write=False)
        return star

    @property
    def train_loss_star(self) -> float:
        """Minimum of the mean training loss, `loss(theta_star, X_train)`."""
        return self.loss(self.theta_star, self.X_train)

    @property
    def test_loss_star(self) -> float:
        """Test loss at the training optimum, over all 1000 test points."""
        return self.loss(self.theta_star, self.X_test)

    @property
    def initial_train_loss(self) -> float:
        """Mean training loss at `theta0`."""
        return self.loss(self.theta0, self.X_train)

    @property
    def initial_test_loss(self) -> float:
        """Test loss at `theta0`, over all 1000 test points."""
        return self.loss(self.theta0, self.X_test)

    @property
    def expected_loss_star(self) -> float:
        """Minimum of the population loss (at theta = 0): `0.5 noise^2 tr(Q)`."""
        return self.expected_loss(np.zeros(DIM))


def quadratic_deep(variant: str = "pytorch") -> QuadraticProblem:
    """DeepOBS's `quadratic_deep`, as its PyTorch code (default) or TensorFlow code builds it.

    See the module docstring for the sources and how the two variants differ. The arrays are
    read-only and shared between calls (the build is cached).
    """
    if variant not in VARIANTS:
        raise DatasetError(
            f"quadratic_deep: unknown variant {variant!r}; known: {', '.join(VARIANTS)}"
        )
    return _build(variant)


@functools.lru_cache(maxsize=len(VARIANTS))
def _build(variant: str) -> QuadraticProblem:
    eigenvalues, rotation = _draw(variant)
    hessian64 = np.matmul(np.transpose(rotation), np.matmul(np.diag(eigenvalues), rotation))
    arrays = {
        "eigenvalues": eigenvalues,
        "rotation": rotation,
        "hessian64": hessian64,
        "hessian": hessian64.astype(np.float32),
        "X_train": _points(42),
        "X_test": _points(43),
        "theta0": np.ones(DIM, dtype=np.float32),
    }
    for a in arrays.values():
        a.setflags(write=False)
    return QuadraticProblem(variant=variant, **arrays)


def _draw(variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues and rotation, from the RandomState streams each DeepOBS variant uses."""
    module_rng = np.random.RandomState(42)  # DeepOBS's module-level `rng`, freshly imported
    # PyTorch's set_up draws the eigenvalues from its own local RandomState(42); the
    # TensorFlow code draws them from the module rng, which the rotation then continues.
    eig_rng = np.random.RandomState(42) if variant == "pytorch" else module_rng
    eigenvalues = np.concatenate(
        (eig_rng.uniform(0.0, 1.0, 90), eig_rng.uniform(30.0, 60.0, 10)), axis=0
    )
    return eigenvalues, _rotation(module_rng, DIM)


def _rotation(rng: np.random.RandomState, dim: int) -> np.ndarray:
    """DeepOBS's `random_rotation(D)`, operation for operation (the draws must match exactly)."""
    t = 2 * np.pi * rng.uniform()
    R = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    for d in range(2, dim):
        v = rng.normal(size=(d + 1, 1))
        v = np.divide(v, np.sqrt(np.transpose(v).dot(v)))
        e = np.concatenate((np.array([[1.0]]), np.zeros((d, 1))), axis=0)
        x = np.divide((e - v), (np.sqrt(np.transpose(e - v).dot(e - v))))
        block = np.vstack(
            [np.hstack([[[1.0]], np.zeros((1, d))]), np.hstack([np.zeros((d, 1)), R])]
        )
        R = block - 2 * np.outer(x, np.transpose(x).dot(block))
    return np.negative(R)


def _points(seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return np.float32(rng.normal(0.0, NOISE_LEVEL, (TRAIN_SIZE, DIM)))


class Baseline(NamedTuple):
    """One published DeepOBS baseline run on quadratic_deep (TensorFlow variant), with the
    final test losses of the other seeds DeepOBS ran at the same setting (`other_seeds`)."""

    optimizer: str
    hyperparameters: str
    learning_rate: float
    random_seed: int
    initial_test_loss: float  # the run's logged test loss at epoch 0
    final_test_loss: float  # the run's logged test loss after epoch 100
    source: str
    other_seeds: tuple[tuple[int, float], ...] = ()  # (seed, final test loss), same folder

    @property
    def finals(self) -> dict[int, float]:
        """Final test loss by seed: the seed-42 run and the others read."""
        return {self.random_seed: self.final_test_loss, **dict(self.other_seeds)}


_BASELINE_DIR = "fsschneider/DeepOBS deepobs/baselines/quadratic_deep"

# Values copied from DeepOBS's baseline JSON files (`test_losses[0]` and `test_losses[-1]`),
# each the seed-42 run at the one learning rate for which the folder also holds runs with
# other seeds (43-51), i.e. the tuned one. `other_seeds`: `test_losses[-1]` of those other
# seeds' files in the same folder (`random_seed__NN__<time>.json`), as many as the stored index
# holds (SGD 43, 45, 47, 49 @ 26c0ff7c / af662ac6; Momentum 45-48, 51; Adam 48, 51): DeepOBS's
# own spread over seeds, which a comparison with one seed-42 number must be read against. They
# are TensorFlow runs (GradientDescentOptimizer etc.), so they belong to `variant="tensorflow"`,
# and their losses are means over 896 test points (`evaluated_loss`). The paper's own table
# could not be read here, so it is not quoted.
DEEPOBS_BASELINES: tuple[Baseline, ...] = (
    Baseline(
        optimizer="SGD",
        hyperparameters="",
        learning_rate=0.01584893192461114,
        random_seed=42,
        initial_test_loss=353.44676426478793,
        final_test_loss=87.27961948939732,
        source=(
            f"{_BASELINE_DIR}/GradientDescentOptimizer/num_epochs__100__batch_size__128__lr__"
            "1.5848931925e-02/random_seed__42__2019-02-13-14-35-54.json "
            "@ af662ac6e7b3825e8d154e678e7c5ba79da4fa9e"
        ),
        other_seeds=(
            (43, 87.52840859549386),
            (45, 87.52428436279297),
            (47, 87.15270342145648),
            (49, 87.48712267194476),
        ),
    ),
    Baseline(
        optimizer="Momentum",
        hyperparameters="momentum=0.99, use_nesterov=False",
        learning_rate=0.002511886431509582,
        random_seed=42,
        initial_test_loss=353.44676426478793,
        final_test_loss=87.0404074532645,
        source=(
            f"{_BASELINE_DIR}/MomentumOptimizer/num_epochs__100__batch_size__128__momentum__"
            "9.9e-01__use_nesterov__False__lr__2.5118864315e-03/random_seed__42__"
            "2019-02-13-14-35-46.json @ 26c0ff7c70c48f684609fe48b1f8b32a76a4be38"
        ),
        other_seeds=(
            (45, 87.0701174054827),
            (46, 87.04070063999721),
            (47, 86.99585287911552),
            (48, 87.0719964163644),
            (51, 87.02962711879185),
        ),
    ),
    Baseline(
        optimizer="Adam",
        hyperparameters="beta1=0.9, beta2=0.999, epsilon=1e-08",
        learning_rate=0.039810717055349734,
        random_seed=42,
        initial_test_loss=353.44676426478793,
        final_test_loss=87.12013244628906,
        source=(
            f"{_BASELINE_DIR}/AdamOptimizer/num_epochs__100__batch_size__128__beta1__9.e-01__"
            "beta2__9.99e-01__epsilon__1.e-08__lr__3.9810717055e-02/random_seed__42__"
            "2019-02-13-14-35-55.json @ af662ac6e7b3825e8d154e678e7c5ba79da4fa9e"
        ),
        other_seeds=((48, 87.12100219726562), (51, 87.12828935895648)),
    ),
)
