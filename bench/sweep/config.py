"""The `[sweep]` table of a suite: grid, selection and rerun settings, validated once."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import ConfigError


@dataclass(frozen=True)
class SweepConfig:
    """The `[sweep]` table of a suite; validated on construction."""

    decades: float = 2.0  # grid spans lr x 10^[-decades, +decades]
    points_per_decade: int = 2
    momentum: tuple[float, ...] = ()  # extra axis for methods with momentum
    beta1: tuple[float, ...] = ()  # extra axis for the Adam family
    select_seeds: tuple[int, ...] = (0, 1)
    seeds: tuple[int, ...] = (100, 101, 102, 103, 104)
    rel_tol: float = 0.01  # target: relative gap (L - L*) / (L0 - L*) <= rel_tol ...
    strict_tol: float = 0.001  # ... and a stricter second target
    target: float | None = None  # ... or this absolute training loss instead
    claims: bool | None = None  # the notebooks' crops15 claims: None = when crops15 is swept
    max_extensions: int = 2  # grid points added beyond an edge the selection sits at, per side

    def __post_init__(self) -> None:
        if not (math.isfinite(self.decades) and self.decades > 0):
            raise ConfigError(f"sweep decades must be > 0, got {self.decades!r}")
        if self.points_per_decade < 1:
            raise ConfigError(f"sweep points_per_decade must be >= 1, got {self.points_per_decade}")
        for m in self.momentum:
            if not 0 <= m < 1:
                raise ConfigError(f"sweep momentum values must be in [0, 1), got {m!r}")
        for b in self.beta1:
            if not 0 <= b < 1:
                raise ConfigError(f"sweep beta1 values must be in [0, 1), got {b!r}")
        if not (isinstance(self.max_extensions, int) and 0 <= self.max_extensions <= 10):
            raise ConfigError(f"sweep max_extensions must be 0..10, got {self.max_extensions!r}")
        if not self.select_seeds or not self.seeds:
            raise ConfigError("sweep needs at least one selection seed and one rerun seed")
        if not (math.isfinite(self.rel_tol) and 0 <= self.rel_tol < 1):
            raise ConfigError(f"sweep rel_tol must be in [0, 1), got {self.rel_tol!r}")
        if not (math.isfinite(self.strict_tol) and 0 <= self.strict_tol < 1):
            raise ConfigError(f"sweep strict_tol must be in [0, 1), got {self.strict_tol!r}")
        if self.claims is not None and not isinstance(self.claims, bool):
            raise ConfigError(f"sweep claims must be true or false, got {self.claims!r}")
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise ConfigError(f"sweep target must be a loss > 0, got {self.target!r}")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> SweepConfig:
        known = {f for f in cls.__dataclass_fields__}
        bad = sorted(set(table) - known)
        if bad:
            raise ConfigError(
                f"[sweep]: unknown key {', '.join(bad)}; allowed: {', '.join(sorted(known))}"
            )
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ConfigError(f"[sweep]: {exc}") from None

    def half_width(self) -> int:
        """Grid points on each side of the suite's learning rate."""
        return round(self.decades * self.points_per_decade)

    def lr_factors(self) -> np.ndarray:
        k = self.half_width()
        return 10.0 ** (np.arange(-k, k + 1) / self.points_per_decade)
