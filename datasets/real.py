"""Small real datasets that ship inside scikit-learn, so they load without a network.

scikit-learn is imported inside each loader: importing `datasets` stays cheap, and the tables
and synthetic data work even where scikit-learn is missing.
"""

from __future__ import annotations

import numpy as np

from datasets.core import Dataset
from datasets.registry import canonical_name, register


@register("diabetes")
def diabetes(*, scaled: bool = True) -> Dataset:
    """Diabetes progression, 442 patients: age, sex, bmi, bp, s1-s6 -> progression.

    `scaled=True` (scikit-learn's default) gives features centred and scaled to unit norm
    per column; `scaled=False` gives the raw clinical units, which differ by orders of
    magnitude, like the seed tables.
    """
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=scaled)
    return Dataset(
        name=canonical_name("diabetes", {"scaled": scaled}),
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=np.asarray(bunch.target, dtype=np.float64).reshape(-1, 1),
        feature_names=tuple(bunch.feature_names),
        target_names=("progression",),
        description=(
            "Diabetes progression one year after baseline, 442 patients x 10 baseline "
            f"variables ({'scaled' if scaled else 'raw units'}); Efron et al. 2004, "
            "via sklearn.datasets.load_diabetes"
        ),
        default_holdout=0.2,
    )


@register("linnerud")
def linnerud() -> Dataset:
    """Linnerud fitness, 20 men: Chins, Situps, Jumps -> Weight, Waist, Pulse (3 targets)."""
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    return Dataset(
        name="linnerud",
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=np.asarray(bunch.target, dtype=np.float64),
        feature_names=tuple(bunch.feature_names),
        target_names=tuple(bunch.target_names),
        description=(
            "Linnerud fitness club data, 20 middle-aged men: exercises (Chins, Situps, Jumps) "
            "-> physiological measures (Weight, Waist, Pulse); via sklearn.datasets.load_linnerud"
        ),
        default_holdout=0.2,
    )


@register("digits", task="classification")
def digits() -> Dataset:
    """Handwritten digits, 1797 8x8 images: 64 pixel intensities (0-16) -> digit 0-9, 10 classes.

    `Y[i]` is the digit itself (class c is digit c); `X` is scikit-learn's raw 0-16 counts.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = np.asarray(bunch.target)
    return Dataset(
        name="digits",
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=labels.astype(np.int64),
        feature_names=tuple(bunch.feature_names),
        target_names=("digit",),
        class_names=tuple(str(int(c)) for c in bunch.target_names),
        task="classification",
        description=(
            "Optical recognition of handwritten digits (UCI), 1797 8x8 images -> 10 classes; "
            "via sklearn.datasets.load_digits"
        ),
        default_holdout=0.2,
    )


@register("breast_cancer", task="classification")
def breast_cancer() -> Dataset:
    """Breast cancer Wisconsin (diagnostic), 569 tumours: 30 features -> malignant/benign.

    Classes keep scikit-learn's integer coding, numeric order as for any integer labels:
    0 = malignant (212 rows), 1 = benign (357 rows).
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return Dataset(
        name="breast_cancer",
        X=np.asarray(bunch.data, dtype=np.float64),
        Y=np.asarray(bunch.target).astype(np.int64),
        feature_names=tuple(str(s) for s in bunch.feature_names),
        target_names=("diagnosis",),
        class_names=tuple(str(s) for s in bunch.target_names),
        task="classification",
        description=(
            "Breast cancer Wisconsin (diagnostic), 569 tumours x 30 cell-nucleus features -> "
            "malignant/benign; via sklearn.datasets.load_breast_cancer"
        ),
        default_holdout=0.2,
    )
