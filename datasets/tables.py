"""The seed notebooks' tables, values copied exactly (the notebooks store them as float32).

Rows are tuples, not module-level arrays, so every load builds fresh arrays that nothing
else holds a writable reference to.
"""

from __future__ import annotations

import numpy as np

from datasets.core import Dataset
from datasets.registry import register

CROPS_FEATURES = ("temperature", "rainfall", "humidity")
CROPS_TARGETS = ("apples", "oranges")
SALES_FEATURES = ("sales_people", "ads", "posts")
SALES_TARGETS = ("product1", "product2")

# Notebook 002, "New dataset" cell (the same 15 rows appear in notebooks 001 and 003);
# the first 5 rows are the 5-row table of notebooks 001-003.
_CROPS_X = (
    (73, 67, 43),
    (91, 88, 64),
    (87, 134, 58),
    (102, 43, 37),
    (69, 96, 70),
    (74, 66, 43),
    (91, 87, 65),
    (88, 134, 59),
    (101, 44, 37),
    (68, 96, 71),
    (73, 66, 44),
    (92, 87, 64),
    (87, 135, 57),
    (103, 43, 36),
    (68, 97, 70),
)
_CROPS_Y = (
    (56, 70),
    (81, 101),
    (119, 133),
    (22, 37),
    (103, 119),
    (57, 69),
    (80, 102),
    (118, 132),
    (21, 38),
    (104, 118),
    (57, 69),
    (82, 100),
    (118, 134),
    (20, 38),
    (102, 120),
)

# Notebook 000, Part B (15 rows); its first 5 rows are Part A's table.
_SALES_X = (
    (8, 500, 6),
    (5, 200, 15),
    (6, 100, 12),
    (4, 300, 8),
    (6, 250, 3),
    (6, 300, 8),
    (7, 250, 20),
    (8, 350, 15),
    (8, 150, 8),
    (6, 150, 24),
    (5, 400, 20),
    (7, 350, 22),
    (9, 300, 16),
    (8, 50, 18),
    (8, 150, 20),
)
_SALES_Y = (
    (40, 20),
    (25, 15),
    (15, 10),
    (20, 15),
    (25, 20),
    (35, 25),
    (30, 25),
    (35, 25),
    (20, 12),
    (15, 10),
    (35, 10),
    (30, 17),
    (30, 26),
    (10, 16),
    (20, 14),
)

_SOURCES = {
    "crops": (
        "Crop yields of {rows} regions (temperature, rainfall, humidity -> apples, oranges); "
        "seed notebooks 001-003, Jovian.ml 'Linear regression with PyTorch' toy data"
    ),
    "sales": (
        "Monthly sales over {rows} months (sales_people, ads, posts -> product1, product2); "
        "seed notebook 000 Part {part}, toy data after Jovian.ml's crops example"
    ),
}


def _table(kind: str, rows: int) -> Dataset:
    x, y, features, targets = {
        "crops": (_CROPS_X, _CROPS_Y, CROPS_FEATURES, CROPS_TARGETS),
        "sales": (_SALES_X, _SALES_Y, SALES_FEATURES, SALES_TARGETS),
    }[kind]
    return Dataset(
        name=f"{kind}{rows}",
        X=np.array(x[:rows], dtype=np.float64),
        Y=np.array(y[:rows], dtype=np.float64),
        feature_names=features,
        target_names=targets,
        description=_SOURCES[kind].format(rows=rows, part="A" if rows == 5 else "B"),
        # Five rows cannot spare one for a hold-out; fifteen can spare three.
        default_holdout=0.0 if rows <= 5 else 0.2,
    )


@register("crops5")
def crops5() -> Dataset:
    """Crop yields, 5 regions: temperature, rainfall, humidity -> apples, oranges."""
    return _table("crops", 5)


@register("crops15")
def crops15() -> Dataset:
    """Crop yields, 15 regions: temperature, rainfall, humidity -> apples, oranges."""
    return _table("crops", 15)


@register("sales5")
def sales5() -> Dataset:
    """Monthly sales, 5 months: sales people, ad spend, social posts -> product1, product2."""
    return _table("sales", 5)


@register("sales15")
def sales15() -> Dataset:
    """Monthly sales, 15 months: sales people, ad spend, social posts -> product1, product2."""
    return _table("sales", 15)
