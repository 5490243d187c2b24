"""Models: a registry of architectures with seeded initial weights, and plug-in factories.

A model is a name in `MODELS` (filled by `@register`) plus options parsed from the command
line (`mlp:hidden=16`), or a plug-in factory `make_model(d, k) -> nn.Module` named by an import
spec (`path/to/file.py:make_model` or `module.path:make_model`; d features, k outputs).
Initial weights are a pure function of (model, d, k, seed), generated on the CPU in float32
(as `torch.randn` in the notebooks), then copied to every method, implementation, device and
dtype of a run, so all of them start from the same point. A plug-in's initial weights are its
module's own initialisation, run under `torch.manual_seed(seed)` inside a forked RNG (the
global generator is left as it was).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError
from optimizers.loading import parse_spec

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


class Theta(nn.Module):
    """The parameter itself: `theta` (k values), the same output for every row of the input."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta.expand(x.shape[0], -1)


@register(
    "theta",
    "a point theta in R^k, no features (output theta for every row); the model of the tasks "
    "whose objective is a function of the parameters (quadratic_deep, the 2-D functions)",
)
class ThetaModel:
    @staticmethod
    def build(d: int, k: int) -> nn.Module:
        return Theta(k)

    @staticmethod
    def init(d: int, k: int, gen: torch.Generator) -> Init:
        return {"theta": torch.zeros(k)}


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).uniform_(-bound, bound, generator=gen)


PLUGIN = "plugin"


def is_plugin(text: str) -> bool:
    """An import spec (`file.py:func`, `module:func`) rather than `name[:opt=value...]`."""
    kind, sep, attr = text.strip().rpartition(":")
    return bool(sep) and kind.split(":")[0] not in MODELS and "=" not in attr


@dataclass(frozen=True)
class ModelSpec:
    """A registered model with its options, parsed from `name[:opt=value...]`, or a plug-in
    factory (`kind == "plugin"`, `plugin` = the import spec, a file as an absolute path)."""

    kind: str = "linear"
    options: tuple[tuple[str, int], ...] = ()
    plugin: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """'linear', 'mlp', 'mlp:hidden=16', 'path/to/file.py:make_model' or 'module:func'."""
        if is_plugin(text):
            return cls(PLUGIN, (), _factory(text.strip())[0])
        kind, *opts = text.strip().split(":")
        if kind not in MODELS:
            raise ConfigError(
                f"unknown model {kind!r}; known: {', '.join(MODELS)}, or a factory "
                "'path/to/file.py:make_model'"
            )
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
        """Short name for tables: `mlp:hidden=16`, or `file.func` for a plug-in."""
        if self.plugin is not None:
            where, _, attr = self.plugin.rpartition(":")
            return f"{Path(where).stem if where.endswith('.py') else where}.{attr}"
        return ":".join([self.kind, *(f"{k}={v}" for k, v in self.options)])

    def build(self, d: int, k: int) -> nn.Module:
        if self.plugin is not None:  # its own init is overwritten; keep the global RNG as is
            with torch.random.fork_rng(devices=[]):
                return _make(self.plugin, d, k)
        return self.definition.build(d, k, **dict(self.options))

    def initial_state(self, d: int, k: int, seed: int) -> Init:
        """The state dict every run of this (model, data shape, seed) starts from."""
        if self.plugin is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                module = _make(self.plugin, d, k)
            return {n: t.detach().to("cpu", torch.float32).clone() for n, t in
                    module.state_dict().items()}  # fmt: skip
        gen = torch.Generator().manual_seed(seed)
        return self.definition.init(d, k, gen, **dict(self.options))


def _error(spec: str, cause: object) -> ConfigError:
    return ConfigError(" ".join(f"model plug-in {spec!r}: {cause}".split()))


def _factory(spec: str) -> tuple[str, Callable[[int, int], nn.Module]]:
    """(normalised spec, factory) of a model plug-in (a file spec made absolute)."""
    try:
        normalised = parse_spec(spec).spec
    except ValueError as exc:
        raise ConfigError(str(exc).replace("plug-in", "model plug-in", 1)) from None
    return normalised, _load_factory(normalised)


@cache
def _load_factory(spec: str) -> Callable[[int, int], nn.Module]:
    """The factory an absolute spec names; a file is imported once per process."""
    target = parse_spec(spec)
    try:
        if target.file is not None:
            module = sys.modules.get(target.module)
            if module is None:
                loader = importlib.util.spec_from_file_location(target.module, target.file)
                if loader is None or loader.loader is None:
                    raise ImportError(f"cannot load {target.file!r}")
                module = importlib.util.module_from_spec(loader)
                sys.modules[target.module] = module
                try:
                    loader.loader.exec_module(module)
                except BaseException:
                    del sys.modules[target.module]
                    raise
        else:
            module = importlib.import_module(target.module)
    except (Exception, SystemExit) as exc:
        raise _error(spec, f"importing it raised {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in target.attr.split("."):
        obj = getattr(obj, part, None)
    if not callable(obj):
        raise _error(spec, f"no function {target.attr!r} in {target.file or target.module}")
    return obj


def _make(spec: str, d: int, k: int) -> nn.Module:
    try:
        module = _factory(spec)[1](d, k)
    except Exception as exc:  # whatever the user's factory raises
        raise _error(spec, f"{spec.rpartition(':')[2]}({d}, {k}) raised "
                           f"{type(exc).__name__}: {exc}") from None  # fmt: skip
    if not isinstance(module, nn.Module):
        raise _error(spec, f"returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def describe() -> dict[str, Any]:
    return {name: m.summary for name, m in MODELS.items()}


def check(text: str, d: int, k: int) -> None:
    """Build the model once for data of this shape (a plug-in's errors surface here)."""
    ModelSpec.parse(text).initial_state(d, k, 0)
