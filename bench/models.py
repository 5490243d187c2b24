"""Models: the seeds' linear regression and their small feed-forward net, with seeded inits.

Initial weights are a pure function of (model, d, k, seed) and are generated on the CPU in
float32 (as `torch.randn` in the notebooks), then copied to every method, implementation,
device and dtype of a run, so all of them start from the same point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bench.errors import ConfigError

MODELS: dict[str, str] = {
    "linear": "x W^T + b (the notebooks' model); init W, b ~ N(0, 1) like torch.randn",
    "mlp": "d -> hidden -> k with ReLU (the notebooks' SimpleNet); init U(±1/sqrt(fan_in)) "
    "like nn.Linear; option hidden (default 3, as in the notebook)",
}


@dataclass(frozen=True)
class ModelSpec:
    kind: str = "linear"
    hidden: int = 3

    def __post_init__(self) -> None:
        if self.kind not in MODELS:
            raise ConfigError(f"unknown model {self.kind!r}; known: {', '.join(MODELS)}")
        if self.hidden < 1:
            raise ConfigError(f"mlp hidden size must be >= 1, got {self.hidden}")

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """'linear', 'mlp' or 'mlp:hidden=16'."""
        kind, *opts = text.strip().split(":")
        hidden = cls.hidden
        for opt in opts:
            key, sep, value = opt.partition("=")
            if kind != "mlp" or key != "hidden" or not sep:
                raise ConfigError(f"bad model option {opt!r} in {text!r}; mlp takes hidden=N")
            try:
                hidden = int(value)
            except ValueError:
                raise ConfigError(f"mlp hidden must be an integer, got {value!r}") from None
        return cls(kind, hidden)

    @property
    def label(self) -> str:
        return self.kind if self.kind == "linear" else f"mlp:hidden={self.hidden}"

    def build(self, d: int, k: int) -> nn.Module:
        if self.kind == "linear":
            return nn.Linear(d, k)
        return nn.Sequential(nn.Linear(d, self.hidden), nn.ReLU(), nn.Linear(self.hidden, k))

    def initial_state(self, d: int, k: int, seed: int) -> dict[str, torch.Tensor]:
        """The state dict every run of this (model, data shape, seed) starts from."""
        gen = torch.Generator().manual_seed(seed)
        if self.kind == "linear":
            return {
                "weight": torch.randn(k, d, generator=gen),
                "bias": torch.randn(k, generator=gen),
            }
        state = {}
        for name, (fan_out, fan_in) in {"0": (self.hidden, d), "2": (k, self.hidden)}.items():
            bound = 1.0 / math.sqrt(fan_in)
            state[f"{name}.weight"] = _uniform((fan_out, fan_in), bound, gen)
            state[f"{name}.bias"] = _uniform((fan_out,), bound, gen)
        return state


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).uniform_(-bound, bound, generator=gen)
