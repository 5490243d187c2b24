"""Datasets for optbench: seed tables, a synthetic generator, scikit-learn's small real sets, CSV.

Every loader returns a read-only `Dataset` (X: n x d, Y: n x k, float64). Typical use::

    import datasets
    ds = datasets.load("synthetic:n=50000:d=100:cond=100")
    part = datasets.make_split(ds, seed=0, standardize=True)
    W, b, loss_star = datasets.closed_form(part.X_train, part.Y_train)

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
from datasets.core import Dataset, DatasetError
from datasets.csvfile import load_csv
from datasets.optimum import closed_form
from datasets.preprocess import Split, Standardizer, make_split, split, standardize
from datasets.real import diabetes, linnerud
from datasets.registry import REGISTRY, canonical_name, defaults, describe, load, names, register
from datasets.synthetic import make_synthetic
from datasets.tables import crops5, crops15, sales5, sales15

__all__ = [
    "REGISTRY",
    "Dataset",
    "DatasetError",
    "Split",
    "Standardizer",
    "canonical_name",
    "closed_form",
    "crops5",
    "crops15",
    "defaults",
    "describe",
    "diabetes",
    "linnerud",
    "load",
    "load_csv",
    "make_split",
    "make_synthetic",
    "names",
    "register",
    "sales5",
    "sales15",
    "split",
    "standardize",
]
