"""Learning-rate schedules: `--schedule NAME[:key=value,...]`, stepped once per optimizer step.

A schedule multiplies each parameter group's peak rate (the spec's `lr`, which sweeps scale)
by a factor that depends on the optimizer steps taken so far, t = 0, 1, ..., T - 1, where T is
the run's total number of steps (epochs x steps per epoch). The factor for step t is applied
before that step, so the first step uses factor(0), and the rate "in effect at the end of an
epoch" (the `lr` column of epochs.csv) is what the next step would use.

Built-in schedules (closed forms, applied through `torch.optim.lr_scheduler.LambdaLR`):

| name | factor at step t of T (after warm-up: s = t - W of D = T - W decay steps) |
|---|---|
| `constant` | 1 (the default; no scheduler object at all) |
| `cosine` | final + (1 - final) (1 + cos(pi s / D)) / 2  (torch's CosineAnnealingLR, T_max = D) |
| `linear` | 1 + (final - 1) min(s, D) / D  (torch's LinearLR from 1 to final over D steps) |
| `step` | gamma ^ floor(s / step_size)  (torch's StepLR) |

Every built-in takes `warmup=W`: W steps (an integer), or a fraction of T (a number in (0, 1));
the warm-up counts in T: steps t < W use (t + 1) / W (torch's LinearLR from 1/W to 1 over
W - 1 steps), and the schedule proper runs over the remaining D = T - W steps. `cosine` and
`linear` take `final` (the factor they end at, default 0); `step` takes `step_size` (steps, or a
fraction of T; default a tenth of T) and `gamma` (default 0.1).

Any `LRScheduler` subclass can be named by import path instead, with its keywords:
`torch.optim.lr_scheduler:OneCycleLR:max_lr=0.1,total_steps=total` (the value `total` is the
run's T). It is constructed as `cls(optimizer, **keywords)` and stepped once per optimizer
step like the built-ins. `ReduceLROnPlateau` needs a metric at each step and is refused.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.errors import ConfigError
from optimizers.loading import load_object, parse_spec

CONSTANT = "constant"
TOTAL = "total"  # a keyword value of an imported scheduler: the run's total number of steps


@dataclass(frozen=True)
class Builtin:
    """A built-in schedule: `factor(s, D, **options)` over the D steps after warm-up."""

    name: str
    summary: str
    factor: Callable[..., float]
    options: dict[str, float]  # its own options (besides warmup) and their defaults


SCHEDULES: dict[str, Builtin] = {}


def register(name: str, summary: str, **options: float):
    """Decorator: a factor function `f(s, D, **options)` becomes the schedule `name`."""

    def deco(fn: Callable[..., float]) -> Callable[..., float]:
        if name in SCHEDULES:
            raise ValueError(f"schedule {name!r} is already registered")
        SCHEDULES[name] = Builtin(name, summary, fn, dict(options))
        return fn

    return deco


@register(CONSTANT, "the peak rate throughout (after any warm-up)")
def _constant(s: int, D: int) -> float:
    return 1.0


@register(
    "cosine", "cosine decay from the peak to final x peak (torch's CosineAnnealingLR)", final=0.0
)
def _cosine(s: int, D: int, final: float) -> float:
    return final + (1.0 - final) * (1.0 + math.cos(math.pi * s / D)) / 2.0


@register("linear", "linear decay from the peak to final x peak (torch's LinearLR)", final=0.0)
def _linear(s: int, D: int, final: float) -> float:
    return 1.0 + (final - 1.0) * min(s, D) / D


@register("step", "x gamma every step_size steps (torch's StepLR)", step_size=0.1, gamma=0.1)
def _step(s: int, D: int, step_size: float, gamma: float) -> float:
    return gamma ** (s // _steps(step_size, D))


def _steps(value: float, total: int) -> int:
    """A count of steps given as an integer, or as a fraction of `total` (at least 1)."""
    if isinstance(value, float) and 0 < value < 1:
        return max(1, round(value * total))
    return int(value)


def _number(text: str, where: str) -> Any:
    """An option value: an integer, a float, true/false or `total`; anything else is an error."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    if text == TOTAL:
        return TOTAL
    raise ConfigError(f"{where}: cannot read {text!r}; write a number, true/false or 'total'")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: a built-in name, or an imported scheduler class (`target`)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()
    target: str | None = None  # import spec of an LRScheduler subclass

    @property
    def text(self) -> str:
        """The canonical spelling (what a RunSpec stores): `cosine:final=0.1,warmup=10`."""
        head = f"{self.target}" if self.target else self.name
        if not self.options:
            return head
        return head + ":" + ",".join(f"{k}={_show(v)}" for k, v in self.options)

    @property
    def is_constant(self) -> bool:
        """No scheduler at all: the rate stays the spec's throughout."""
        return self.target is None and self.name == CONSTANT and not self.options

    def factor(self, t: int, total: int) -> float:
        """A built-in's factor for step t (0-based) of `total` steps."""
        opts = dict(self.options)
        warmup = _steps(opts.pop("warmup", 0), total)
        if t < warmup:
            return (t + 1) / warmup
        return SCHEDULES[self.name].factor(t - warmup, max(1, total - warmup), **_own(self, opts))

    def build(
        self, optimizer: torch.optim.Optimizer, total: int
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The scheduler over `total` steps (None for the constant schedule)."""
        if self.is_constant:
            return None
        if self.target is None:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: self.factor(t, total))
        cls = load_object(self.target)
        kwargs = {k: total if v == TOTAL else v for k, v in self.options}
        return cls(optimizer, **kwargs)


def _own(schedule: Schedule, opts: dict[str, Any]) -> dict[str, Any]:
    return {**SCHEDULES[schedule.name].options, **opts}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse(text: Any, where: str = "schedule") -> Schedule:
    """`NAME[:key=value,...]` (options also separated by `:`), or an import path
    `module:Class[:key=value,...]`; a ConfigError names what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where} must be a schedule name such as 'cosine', got {text!r}")
    text = text.strip()
    head, _, rest = text.partition(":")
    target = None
    first = rest.partition(":")[0].strip()
    if head not in SCHEDULES and first.isidentifier():  # module:Class[:options]
        cls_name, _, rest = rest.partition(":")
        target = f"{head}:{cls_name}"
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.replace(",", ":").split(":"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{where} {text!r}: expected key=value, got {item!r}")
        options[key.strip()] = _number(value.strip(), f"{where} {text!r}: {key.strip()}")
    if target is not None:
        return _imported(target, options, f"{where} {text!r}")
    if head not in SCHEDULES:
        raise ConfigError(
            f"unknown {where} {head!r}; known: {', '.join(SCHEDULES)}, or an LRScheduler by "
            "import path (torch.optim.lr_scheduler:StepLR:step_size=100)"
        )
    allowed = {"warmup", *SCHEDULES[head].options}
    for key, value in options.items():
        if key not in allowed:
            raise ConfigError(f"{where} {head!r} takes {', '.join(sorted(allowed))}; not {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where} {text!r}: {key} must be a number >= 0, got {value!r}")
    if isinstance(options.get("warmup"), float) and not 0 < options["warmup"] < 1:
        raise ConfigError(f"{where} {text!r}: warmup is steps (an integer) or a fraction in (0, 1)")
    if "final" in options and not 0 <= options["final"] <= 1:
        raise ConfigError(f"{where} {text!r}: final must be in [0, 1], got {options['final']}")
    if head == "step" and options.get("step_size", 1) == 0:
        raise ConfigError(f"{where} {text!r}: step_size must be > 0")
    if head == "step" and not 0 < options.get("gamma", 0.1) <= 1:
        raise ConfigError(f"{where} {text!r}: gamma must be in (0, 1]")
    return Schedule(head, tuple(sorted(options.items())))


def _imported(target: str, options: dict[str, Any], where: str) -> Schedule:
    try:
        target = parse_spec(target).spec
        cls = load_object(target)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    base = torch.optim.lr_scheduler.LRScheduler
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{where}: {cls!r} is not a torch.optim.lr_scheduler.LRScheduler")
    if issubclass(cls, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ConfigError(f"{where}: ReduceLROnPlateau steps on a metric, not per step; "
                          "optbench steps schedules once per optimizer step")  # fmt: skip
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise ConfigError(
            f"{where}: {cls.__name__} does not take {', '.join(unknown)}; it takes "
            f"{', '.join(n for n in accepted if n not in ('self', 'optimizer'))}"
        )
    schedule = Schedule(cls.__name__, tuple(sorted(options.items())), target)
    try:  # its own checks, on a throwaway optimizer, with a stand-in total
        schedule.build(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 100)
    except Exception as exc:  # whatever the scheduler's constructor raises
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc}") from None
    return schedule


def canonical(text: str, where: str = "schedule") -> str:
    """The canonical text of a schedule spec (validated)."""
    return parse(text, where).text


def describe() -> dict[str, str]:
    return {name: s.summary for name, s in SCHEDULES.items()}
