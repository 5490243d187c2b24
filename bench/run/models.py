"""Models: a registry of architectures with seeded initial weights.

A model is a name in `MODELS` (filled by `@register`) plus options parsed from the command
line (`mlp:hidden=16`). Initial weights are a pure function of (model, d, k, seed), generated on
the CPU in float32 (as `torch.randn` in the notebooks), then copied to every method,
implementation, device and dtype of a run, so all of them start from the same point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError

Init = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ModelDef:
    """One architecture: `build(d, k, **options)` and `init(d, k, gen, **options)`."""

    name: str
    summary: str
    build: Callable[..., nn.Module]
    init: Callable[..., Init]
    options: Mapping[str, int] = field(default_factory=dict)  # integer options and defaults


MODELS: dict[str, ModelDef] = {}


def register(name: str, summary: str, **options: int):
    """Decorator on a class with static `build` and `init`: adds the model to `MODELS`."""

    def deco(cls: type) -> type:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelDef(name, summary, cls.build, cls.init, dict(options))
        return cls

    return deco


@register("linear", "x W^T + b (the notebooks' model); init W, b ~ N(0, 1) like torch.randn")
class Linear:
    @staticmethod
    def build(d: int, k: int) -> nn.Module:
        return nn.Linear(d, k)

    @staticmethod
    def init(d: int, k: int, gen: torch.Generator) -> Init:
        return {"weight": torch.randn(k, d, generator=gen), "bias": torch.randn(k, generator=gen)}


@register(
    "mlp",
    "d -> hidden -> k with ReLU (the notebooks' SimpleNet); init U(±1/sqrt(fan_in)) like "
    "nn.Linear; option hidden (default 3, as in the notebook)",
    hidden=3,
)
class MLP:
    @staticmethod
    def build(d: int, k: int, hidden: int) -> nn.Module:
        return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, k))

    @staticmethod
    def init(d: int, k: int, gen: torch.Generator, hidden: int) -> Init:
        state = {}
        for name, (fan_out, fan_in) in {"0": (hidden, d), "2": (k, hidden)}.items():
            bound = 1.0 / math.sqrt(fan_in)
            state[f"{name}.weight"] = _uniform((fan_out, fan_in), bound, gen)
            state[f"{name}.bias"] = _uniform((fan_out,), bound, gen)
        return state


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).uniform_(-bound, bound, generator=gen)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model with its options, parsed from `name[:opt=value...]`."""

    kind: str = "linear"
    options: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """'linear', 'mlp' or 'mlp:hidden=16'."""
        kind, *opts = text.strip().split(":")
        if kind not in MODELS:
            raise ConfigError(f"unknown model {kind!r}; known: {', '.join(MODELS)}")
        allowed = MODELS[kind].options
        values = dict(allowed)
        for opt in opts:
            key, sep, value = opt.partition("=")
            if key not in allowed or not sep:
                takes = ", ".join(f"{k}=N" for k in allowed) or "no options"
                raise ConfigError(f"bad model option {opt!r} in {text!r}; {kind} takes {takes}")
            try:
                values[key] = int(value)
            except ValueError:
                raise ConfigError(f"{kind} {key} must be an integer, got {value!r}") from None
            if values[key] < 1:
                raise ConfigError(f"{kind} {key} must be >= 1, got {values[key]}")
        return cls(kind, tuple(sorted(values.items())))

    @property
    def definition(self) -> ModelDef:
        return MODELS[self.kind]

    @property
    def label(self) -> str:
        return ":".join([self.kind, *(f"{k}={v}" for k, v in self.options)])

    def build(self, d: int, k: int) -> nn.Module:
        return self.definition.build(d, k, **dict(self.options))

    def initial_state(self, d: int, k: int, seed: int) -> Init:
        """The state dict every run of this (model, data shape, seed) starts from."""
        gen = torch.Generator().manual_seed(seed)
        return self.definition.init(d, k, gen, **dict(self.options))


def describe() -> dict[str, Any]:
    return {name: m.summary for name, m in MODELS.items()}
