"""Scratch optimizers vs torch.optim's for-loop: bitwise equal parameters and state.

Every comparison is bit for bit (same dtype, same bits; stricter than torch.equal). No tolerance
is needed anywhere on CPU: the scratch code repeats torch's operations in torch's order.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from optimizers import build, get, names
from optimizers.parity import (
    cases_for,
    compare,
    optimizer_diff,
    parity_table,
    set_gradients,
)
from tests.devices import DEVICES

STEPS = 100
DTYPES = ("float32", "float64")
METHOD_CASES = [
    pytest.param(name, case, id=f"{name}-{case.name}")
    for name in names()
    for case in cases_for(name)
]


@pytest.fixture(scope="module", params=DEVICES)
def parity_rows(request: pytest.FixtureRequest) -> dict[tuple[str, str, str], dict]:
    """The whole parity table for one device, computed once per module."""
    rows = parity_table(steps=STEPS, device=request.param, dtypes=DTYPES)
    return {(row["method"], row["case"], row["dtype"]): row for row in rows}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("method", "case"), METHOD_CASES)
def test_scratch_is_bitwise_equal_to_torch_for_loop(parity_rows, method, case, dtype):
    # The table runs a computation once per distinct (rule, resolved hyperparameters, dtype), so
    # e.g. gd/sgd/minibatch share a row: their optimizers are constructed identically.
    row = parity_rows[(method, case.name, dtype)]
    assert row["steps"] >= 100
    assert row["hparams"] == json.dumps(get(method).resolve(**case.hparams), sort_keys=True)
    assert row["bitwise"], (
        f"{method} {case.name} {dtype}: first mismatch at step {row['first_mismatch_step']}, "
        f"max abs diff {row['max_abs_diff']:.3g}, max rel diff {row['max_rel_diff']:.3g}"
    )
    assert row["max_abs_diff"] == row["max_rel_diff"] == 0.0


def test_parity_table_covers_every_method_case_and_dtype():
    rows = parity_table(steps=2, dtypes=("float64",))
    expected = {(name, case.name) for name in names() for case in cases_for(name)}
    assert {(row["method"], row["case"]) for row in rows} == expected
    assert len(rows) == len(expected)
    assert {row["dtype"] for row in rows} == {"float64"}
    assert {row["method"] for row in rows} == set(names())


def test_compare_record_fields():
    record = compare("momentum", {"lr": 0.1}, dtype=torch.float32, steps=3, seed=7)
    assert record == {
        "method": "momentum",
        "rule": "sgd",
        "hparams": (
            '{"dampening": 0, "lr": 0.1, "maximize": false, "momentum": 0.9, '
            '"nesterov": false, "weight_decay": 0}'
        ),
        "dtype": "float32",
        "device": "cpu",
        "steps": 3,
        "seed": 7,
        "status": "bitwise",
        "bitwise": True,
        "max_abs_diff": 0.0,
        "max_rel_diff": 0.0,
        "first_mismatch_step": None,
    }


def test_compare_rejects_unknown_dtype():
    with pytest.raises(ValueError, match=r"float16.*known: float32, float64"):
        compare("gd", dtype="float16", steps=1)


# --- torch's own pattern: a tiny MLP, a missing gradient, a frozen layer -----------------------


def _mlp(dtype: torch.dtype, device: str) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2), nn.Sigmoid()).to(
        device=device, dtype=dtype
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("method", "case"), METHOD_CASES)
def test_mlp_with_missing_grad_and_frozen_layer(method, case, dtype, device):
    """8 closure steps on an MLP: the first bias has no grad at step 2, the second layer is
    frozen for steps 4 and 5. Parameters, every state tensor and the loss stay bitwise equal, and
    skipped parameters do not move."""
    model_ours = _mlp(dtype, device)
    model_ref = copy.deepcopy(model_ours)
    opt_ours = build(method, model_ours.parameters(), impl="scratch", **case.hparams)
    opt_ref = build(method, model_ref.parameters(), impl="torch", **case.hparams)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(5, 3, generator=generator, dtype=dtype).to(device)
    targets = torch.rand(5, 2, generator=generator, dtype=dtype).to(device)

    def closure_for(model, opt, step):
        def closure():
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            if step == 2:
                model[0].bias.grad = None
            return loss

        return closure

    for step in range(8):
        frozen = step in (4, 5)
        for model in (model_ours, model_ref):
            model[2].requires_grad_(not frozen)
        before = [p.detach().clone() for p in (model_ours[0].bias, *model_ours[2].parameters())]

        loss_ours = opt_ours.step(closure_for(model_ours, opt_ours, step))
        loss_ref = opt_ref.step(closure_for(model_ref, opt_ref, step))

        assert torch.equal(loss_ours, loss_ref)
        equal, max_abs, _ = optimizer_diff(
            opt_ours, opt_ref, list(model_ours.parameters()), list(model_ref.parameters())
        )
        assert equal, f"step {step}: max abs diff {max_abs:.3g}"
        if step == 2:
            assert torch.equal(model_ours[0].bias, before[0])
        if frozen:
            for param, old in zip(model_ours[2].parameters(), before[1:], strict=True):
                assert torch.equal(param, old)


# --- state_dict round trips ----------------------------------------------------------------

# Extra settings so every kind of state is exercised (momentum buffers, AMSGrad's max).
STATE_HPARAMS = {
    "sgd": [{}, {"momentum": 0.5, "weight_decay": 0.1, "maximize": True}],
    "adam": [{}, {"amsgrad": True, "weight_decay": 0.1}],
    "adamw": [{}, {"amsgrad": True}],
}
ROUND_TRIPS = ["scratch->scratch", "torch->scratch", "scratch->torch"]


@pytest.mark.parametrize("direction", ROUND_TRIPS)
@pytest.mark.parametrize(
    ("method", "hparams"),
    [
        pytest.param(name, hparams, id=f"{name}-{i}")
        for name in names()
        for i, hparams in enumerate(STATE_HPARAMS[get(name).rule])
    ],
)
def test_state_dict_round_trip_then_continue_bitwise(method, hparams, direction):
    source_impl, target_impl = direction.split("->")
    generator = torch.Generator().manual_seed(3)
    shapes = [(), (4,), (3, 2)]
    source_params = [nn.Parameter(torch.randn(s, generator=generator)) for s in shapes]
    source = build(method, source_params, impl=source_impl, **hparams)
    for step in range(5):
        set_gradients(step, generator, source_params)
        source.step()

    target_params = [nn.Parameter(p.detach().clone()) for p in source_params]
    target = build(method, target_params, impl=target_impl, **hparams)
    # state_dict() shares tensors with the optimizer; copy so the two continue independently.
    target.load_state_dict(copy.deepcopy(source.state_dict()))

    steps = [s.get("step") for s in target.state.values() if "step" in s]
    if target_impl == "scratch":
        assert all(type(t) is int for t in steps)
        assert not {"foreach", "fused", "capturable", "differentiable"} & set(
            target.param_groups[0]
        )
    else:
        assert all(isinstance(t, torch.Tensor) for t in steps)
    assert optimizer_diff(source, target, source_params, target_params)[0]

    for step in range(5, 12):
        set_gradients(step, generator, source_params, target_params)
        source.step()
        target.step()
        equal, max_abs, _ = optimizer_diff(source, target, source_params, target_params)
        assert equal, f"step {step}: max abs diff {max_abs:.3g}"


def test_adamw_stays_decoupled_after_loading_adam_state():
    params = [nn.Parameter(torch.ones(2))]
    coupled = build("adam_l2", params, impl="torch")
    adamw = build("adamw", [nn.Parameter(torch.ones(2))])
    adamw.load_state_dict(coupled.state_dict())
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
