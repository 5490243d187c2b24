"""The from-scratch optimizers (`optimizers.sgd.SGD`, `optimizers.adam.Adam`/`AdamW`) over
stacked runs with per-run hyperparameters, bitwise as `optimizers.transforms` computes them.

Per-run hyperparameters are [K, 1] tensors in the run's dtype, each the value the scratch
optimizer's Python scalar becomes inside torch's kernel (the double rounded once to the dtype),
computed from the same doubles (`1 - dampening`, `1 - lr * weight_decay`, `-(lr / bc1)` in
float64, Adam's bias corrections in Python, per distinct (beta1, beta2)). Where the scalar
optimizer passes a scalar as `alpha=` or `value=` the stacked one uses the fused forms that
compute the same thing (measured bitwise for every size and position): `p.add_(g, alpha=a)` is
`p.addcmul_(g, a)`, `m.addcmul_(g, g, value=c)` is `m.addcmul_(g * c, g)`,
`p.addcdiv_(m, d, value=v)` is `p.addcdiv_(m * v, d)`; `lerp_`, `mul_`, `div_`, `add_` take the
[K, 1] tensor as they took the scalar.

Overflow: torch converts an `alpha=`/`value=` scalar to float32 with a range check, and the
per-run path records "value cannot be converted to type float without overflow" as divergence,
at the step where it is raised, before that step changes a parameter. `overflow_steps` finds
that step for every run from the same doubles, so the run can stop exactly there. Scalars torch
converts without a check (`mul_(momentum)`, `add_(eps)`, AdamW's `mul_(1 - lr * wd)`) become
inf here as there.

Schedules: `lr` is the per-run peak rate; `rates(first, steps)` multiplies it by the group's
per-step multiplier `factor(t)` (every run of a group shares its schedule, a built-in of
`bench.run.schedules`): in doubles, as torch's `LambdaLR` computes `base_lr * factor(t)` for
the per-run path, so the rates are the same doubles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _column(values: Sequence[float]) -> Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def _overflows(x: Tensor, dtype: torch.dtype) -> Tensor:
    """Where converting the doubles `x` to `dtype` raises in torch (finite, out of range)."""
    if dtype != torch.float32:
        return torch.zeros(x.shape, dtype=torch.bool)
    return torch.isfinite(x) & (x.abs() > FLOAT32_MAX)


class Rule:
    """What both rules share: per-run peak rates, the step count, compaction."""

    state_names: tuple[str, ...] = ()

    def __init__(self, hparams: Sequence[dict[str, Any]], dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.lr = _column([h["lr"] for h in hparams])
        self.t = 0  # optimizer steps taken (all runs of a group step together)
        self.state: dict[str, Tensor] = {}
        self.factor: Callable[[int], float] | None = None  # the schedule's, of step t (0-based)

    def scalar(self, values: Tensor) -> Tensor:
        """Doubles [..., K] as the run dtype, broadcastable against [K, P]."""
        return values.to(self.dtype).unsqueeze(-1)

    def rates(self, first: int, steps: int) -> Tensor:
        """[steps, K] learning rates of global steps first .. first + steps - 1 (1-based)."""
        if self.factor is None:
            return self.lr.expand(steps, -1)
        factors = _column([self.factor(t - 1) for t in range(first, first + steps)])
        return factors.unsqueeze(1) * self.lr

    def rate_after(self) -> Tensor:
        """[K] the rate the next step would use (the `lr` column at the end of an epoch)."""
        return self.lr if self.factor is None else self.lr * self.factor(self.t)

    def select(self, index: Tensor) -> None:
        """Keep the runs at `index` (in that order)."""
        self._select(index)
        self.lr = self.lr[index]
        self.state = {k: v.index_select(0, index) for k, v in self.state.items()}

    def _select(self, index: Tensor) -> None:
        raise NotImplementedError


class StackedSGD(Rule):
    """`optimizers.SGD`: plain, momentum (dampening), Nesterov, coupled weight decay, maximize."""

    state_names = ("momentum_buffer",)

    def __init__(self, hparams: Sequence[dict[str, Any]], dtype: torch.dtype) -> None:
        super().__init__(hparams, dtype)
        self.momentum = _column([h["momentum"] for h in hparams])
        self.dampening = _column([h["dampening"] for h in hparams])
        self.weight_decay = _column([h["weight_decay"] for h in hparams])
        self.nesterov = bool(hparams[0]["nesterov"])
        self.maximize = bool(hparams[0]["maximize"])
        self.has_momentum = bool(hparams[0]["momentum"] != 0)
        self.has_decay = bool(hparams[0]["weight_decay"] != 0)
        self._derive()

    @staticmethod
    def structure(hp: dict[str, Any]) -> tuple[Any, ...] | None:
        """What must be equal across a group: the branches the scalar optimizer takes."""
        return (
            "sgd",
            hp["momentum"] != 0,
            hp["weight_decay"] != 0,
            bool(hp["nesterov"]),
            bool(hp["maximize"]),
        )

    def _derive(self) -> None:
        self.c_momentum = self.scalar(self.momentum)
        self.c_keep = self.scalar(1 - self.dampening)
        self.c_decay = self.scalar(self.weight_decay)

    def _select(self, index: Tensor) -> None:
        self.momentum = self.momentum[index]
        self.dampening = self.dampening[index]
        self.weight_decay = self.weight_decay[index]
        self._derive()

    def overflow_steps(self, first: int, rates: Tensor) -> Tensor:
        """[K] the first global step in this stretch whose checked scalars overflow (0: none)."""
        steps = torch.arange(first, first + rates.shape[0]).unsqueeze(1)
        bad = _overflows(-rates, self.dtype)
        if self.has_decay:
            bad = bad | _overflows(self.weight_decay, self.dtype)
        if self.nesterov:
            bad = bad | _overflows(self.momentum, self.dtype)
        if self.has_momentum:
            bad = bad | (_overflows(1 - self.dampening, self.dtype) & (steps >= 2))
        return _first(bad, steps)

    def coefficients(self, first: int, rates: Tensor) -> list[dict[str, Tensor]]:
        lr = self.scalar(-rates)
        return [{"neg_lr": lr[s]} for s in range(rates.shape[0])]

    def step(self, p: Tensor, grad: Tensor, c: dict[str, Tensor]) -> None:
        self.t += 1
        g = -grad if self.maximize else grad
        if self.has_decay:
            g = torch.addcmul(g, p, self.c_decay)
        if self.has_momentum:
            buf = self.state.get("momentum_buffer")
            if buf is None:
                buf = self.state["momentum_buffer"] = g.detach().clone()
            else:
                buf.mul_(self.c_momentum).addcmul_(g, self.c_keep)
            g = torch.addcmul(g, buf, self.c_momentum) if self.nesterov else buf
        p.addcmul_(g, c["neg_lr"])


class StackedAdam(Rule):
    """`optimizers.Adam` / `AdamW`: L2 or decoupled weight decay, AMSGrad, maximize."""

    state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self, hparams: Sequence[dict[str, Any]], dtype: torch.dtype, decoupled: bool = False
    ) -> None:
        super().__init__(hparams, dtype)
        self.betas = [tuple(float(b) for b in h["betas"]) for h in hparams]
        self.eps = _column([h["eps"] for h in hparams])
        self.weight_decay = _column([h["weight_decay"] for h in hparams])
        self.decoupled = decoupled or bool(hparams[0].get("decoupled_weight_decay", False))
        self.amsgrad = bool(hparams[0]["amsgrad"])
        self.maximize = bool(hparams[0]["maximize"])
        self.has_decay = bool(hparams[0]["weight_decay"] != 0)
        self._derive()

    @staticmethod
    def structure(hp: dict[str, Any]) -> tuple[Any, ...] | None:
        return (
            "adam",
            hp["weight_decay"] != 0,
            bool(hp.get("decoupled_weight_decay", False)),
            bool(hp["amsgrad"]),
            bool(hp["maximize"]),
        )

    def _derive(self) -> None:
        self.pairs = sorted(set(self.betas))
        self.pair_of = torch.tensor([self.pairs.index(b) for b in self.betas])
        beta1 = _column([b[0] for b in self.betas])
        beta2 = _column([b[1] for b in self.betas])
        self.c_lerp = self.scalar(1 - beta1)
        self.c_beta2 = self.scalar(beta2)
        self.c_square = self.scalar(1 - beta2)
        self.c_eps = self.scalar(self.eps)
        self.c_decay = self.scalar(self.weight_decay)

    def _select(self, index: Tensor) -> None:
        self.betas = [self.betas[i] for i in index.tolist()]
        self.eps = self.eps[index]
        self.weight_decay = self.weight_decay[index]
        self._derive()

    def _corrections(self, first: int, steps: int) -> tuple[Tensor, Tensor]:
        """[steps, K] bias corrections 1 - beta1**t and sqrt(1 - beta2**t), as Python floats
        (per distinct pair), exactly as `scale_by_adam` computes them."""
        bc1 = [[1 - b1**t for b1, _ in self.pairs] for t in range(first, first + steps)]
        bc2 = [[(1 - b2**t) ** 0.5 for _, b2 in self.pairs] for t in range(first, first + steps)]
        index = self.pair_of.expand(steps, -1)
        as_table = lambda rows: torch.tensor(rows, dtype=torch.float64).gather(1, index)  # noqa: E731
        return as_table(bc1), as_table(bc2)

    def _values(self, first: int, rates: Tensor) -> tuple[Tensor, Tensor]:
        bc1, bc2 = self._corrections(first, rates.shape[0])
        return -(rates / bc1), bc2

    def overflow_steps(self, first: int, rates: Tensor) -> Tensor:
        steps = torch.arange(first, first + rates.shape[0]).unsqueeze(1)
        bad = _overflows(self._values(first, rates)[0], self.dtype)
        if self.has_decay and not self.decoupled:
            bad = bad | _overflows(self.weight_decay, self.dtype)
        return _first(bad, steps)

    def coefficients(self, first: int, rates: Tensor) -> list[dict[str, Tensor]]:
        value, bc2 = self._values(first, rates)
        value, bc2 = self.scalar(value), self.scalar(bc2)
        decay = self.scalar(1 - rates * self.weight_decay) if self.decoupled else None
        out = []
        for s in range(rates.shape[0]):
            c = {"value": value[s], "bc2": bc2[s]}
            if decay is not None:
                c["decay"] = decay[s]
            out.append(c)
        return out

    def step(self, p: Tensor, grad: Tensor, c: dict[str, Tensor]) -> None:
        self.t += 1
        if not self.state:
            self.state = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            if self.amsgrad:
                self.state["max_exp_avg_sq"] = torch.zeros_like(p)
        g = -grad if self.maximize else grad
        if self.decoupled:
            if self.has_decay:
                p.mul_(c["decay"])
        elif self.has_decay:
            g = torch.addcmul(g, p, self.c_decay)
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        exp_avg.lerp_(g, self.c_lerp)
        exp_avg_sq.mul_(self.c_beta2).addcmul_(g * self.c_square, g)
        if self.amsgrad:
            second = self.state["max_exp_avg_sq"]
            torch.maximum(second, exp_avg_sq, out=second)
        else:
            second = exp_avg_sq
        denom = second.sqrt().div_(c["bc2"]).add_(self.c_eps)
        p.addcdiv_(exp_avg * c["value"], denom)


def _first(bad: Tensor, steps: Tensor) -> Tensor:
    """[K] the first step (from `steps`, [S, 1]) where `bad` ([S, K]) holds, 0 where never."""
    hit = torch.where(bad, steps.expand_as(bad), torch.zeros_like(bad, dtype=torch.long))
    big = torch.iinfo(torch.long).max
    first = torch.where(bad, hit, torch.full_like(hit, big)).min(dim=0).values
    return torch.where(first == big, torch.zeros_like(first), first)
