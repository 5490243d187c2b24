"""The parity check can fail: deliberately wrong optimizers are reported as not bitwise equal."""

from __future__ import annotations

import math

import pytest
import torch

from optimizers import SGD, Adam
from optimizers.base import no_grad_step
from optimizers.parity import bitwise_equal, compare
from optimizers.transforms import (
    add_decayed_weights,
    init_adam_state,
    signed_gradient,
)


class DampedFirstStepSGD(SGD):
    """Wrong on purpose: dampens the gradient on the first momentum step too (torch does not)."""

    @no_grad_step
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = add_decayed_weights(
                    signed_gradient(p, group["maximize"]), p, group["weight_decay"]
                )
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.mul(1 - group["dampening"])  # the bug
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(
                        g, alpha=1 - group["dampening"]
                    )
                p.add_(state["momentum_buffer"], alpha=-group["lr"])


class EpsBeforeBiasCorrectionAdam(Adam):
    """Wrong on purpose: ``sqrt(v) + eps`` is divided by sqrt(bc2), i.e. eps is corrected too."""

    @no_grad_step
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    init_adam_state(state, p, group["amsgrad"])
                g = add_decayed_weights(
                    signed_gradient(p, group["maximize"]), p, group["weight_decay"]
                )
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].lerp_(g, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"]) / (1 - beta2**t) ** 0.5
                p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1**t))


class ReorderedMomentAdam(Adam):
    """Algebraically right, numerically not torch's: ``m = beta1*m + (1-beta1)*g`` as mul_/add_
    instead of lerp_. Differs by rounding only, and the bitwise check still sees it."""

    @no_grad_step
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    init_adam_state(state, p, group["amsgrad"])
                g = p.grad
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)  # the reordering
                state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (state["exp_avg_sq"].sqrt() / (1 - beta2**t) ** 0.5).add_(group["eps"])
                p.addcdiv_(state["exp_avg"], denom, value=-(group["lr"] / (1 - beta1**t)))


class ExtraStateKeySGD(SGD):
    """Wrong on purpose: keeps a state entry torch.optim.SGD does not have."""

    def step(self, closure=None):
        loss = super().step(closure)
        for state in self.state.values():
            state["velocity"] = state["momentum_buffer"]
        return loss


def test_first_step_dampening_is_caught():
    hparams = {"momentum": 0.9, "dampening": 0.5}
    assert compare("momentum", hparams, dtype="float64", steps=20)["bitwise"]
    record = compare("momentum", hparams, dtype="float64", steps=20, scratch_cls=DampedFirstStepSGD)
    assert record["bitwise"] is False
    assert record["first_mismatch_step"] == 0
    assert record["max_abs_diff"] > 1e-4
    assert record["max_rel_diff"] > 0


def test_eps_before_bias_correction_is_caught():
    hparams = {"eps": 1e-3}
    assert compare("adam", hparams, dtype="float64", steps=20)["bitwise"]
    record = compare(
        "adam", hparams, dtype="float64", steps=20, scratch_cls=EpsBeforeBiasCorrectionAdam
    )
    assert record["bitwise"] is False
    assert record["first_mismatch_step"] == 0
    assert record["max_abs_diff"] > 1e-6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ulp_level_reordering_is_caught(dtype):
    record = compare("adam", {}, dtype=dtype, steps=100, scratch_cls=ReorderedMomentAdam)
    assert record["bitwise"] is False
    # ... although every element stays within the absolute tolerance of torch's assert_close
    # defaults (float32 1e-5, float64 1e-7): only rounding differs.
    assert 0 < record["max_abs_diff"] <= {"float32": 1e-5, "float64": 1e-7}[dtype]


def test_different_state_keys_are_an_infinite_difference():
    record = compare("momentum", {}, dtype="float32", steps=3, scratch_cls=ExtraStateKeySGD)
    assert record["bitwise"] is False
    assert record["max_abs_diff"] == math.inf


def test_bitwise_equal_is_stricter_than_torch_equal():
    zero, negative_zero = torch.tensor([0.0]), torch.tensor([-0.0])
    nan = torch.tensor([math.nan])
    assert torch.equal(zero, negative_zero)
    assert not bitwise_equal(zero, negative_zero)
    assert not torch.equal(nan, nan)
    assert bitwise_equal(nan, nan.clone())
    assert not bitwise_equal(zero, zero.double())
    assert not bitwise_equal(torch.zeros(2), torch.zeros(1, 2))
