"""Datasets for optbench: seed tables, a synthetic generator, scikit-learn's small real sets, CSV.

Every loader returns a read-only `Dataset` of a regression task (X: n x d, Y: n x k, float) or
a classification task (Y: int64 class indices of shape (n,), with `class_names`). Typical use::

    import datasets
    ds = datasets.load("synthetic:n=50000:d=100:cond=100")
    part = datasets.make_split(ds, seed=0, standardize=True)
    W, b, loss_star = datasets.closed_form(part.X_train, part.Y_train)
    best = datasets.reference_optimum(ds.task, part.X_train, part.Y_train)  # NaN + reason if none

Besides datasets: `quadratic_deep()` rebuilds DeepOBS's noisy quadratic problem with its
optimum and published baselines, and `function_2d(name)` gives 2-D test functions (Rosenbrock,
Beale, Himmelblau) for trajectory plots.

Importing the package is cheap: scikit-learn, pandas and torch are imported only by the
loaders or helpers that need them. The package is used from the checkout and never installed
(its name collides with HuggingFace's `datasets`).
"""

from __future__ import annotations

# isort: off
# Imported first and in this order for their @register side effect: names() lists datasets in
# registration order, seed tables first.
from datasets import tables, synthetic, real  # noqa: F401

# isort: on
from datasets.core import MAX_ARRAY_BYTES, TASKS, Dataset, DatasetError
from datasets.csvfile import load_csv
from datasets.deepobs import DEEPOBS_BASELINES, QuadraticProblem, quadratic_deep
from datasets.functions2d import FUNCTIONS_2D, Function2D, function_2d, functions_2d
from datasets.optimum import Optimum, closed_form, least_squares, reference_optimum
from datasets.preprocess import (
    Split,
    Standardizer,
    make_split,
    split,
    split_rows,
    standardize,
)
from datasets.real import breast_cancer, diabetes, digits, linnerud
from datasets.registry import (
    REGISTRY,
    canonical_name,
    defaults,
    describe,
    load,
    names,
    register,
    task_of,
)
from datasets.synthetic import make_synthetic
from datasets.tables import crops5, crops15, sales5, sales15

__all__ = [
    "DEEPOBS_BASELINES",
    "FUNCTIONS_2D",
    "MAX_ARRAY_BYTES",
    "REGISTRY",
    "TASKS",
    "Dataset",
    "DatasetError",
    "Function2D",
    "Optimum",
    "QuadraticProblem",
    "Split",
    "Standardizer",
    "breast_cancer",
    "canonical_name",
    "closed_form",
    "crops5",
    "crops15",
    "defaults",
    "describe",
    "diabetes",
    "digits",
    "function_2d",
    "functions_2d",
    "least_squares",
    "linnerud",
    "load",
    "load_csv",
    "make_split",
    "make_synthetic",
    "names",
    "quadratic_deep",
    "reference_optimum",
    "register",
    "sales5",
    "sales15",
    "split",
    "split_rows",
    "standardize",
    "task_of",
]
