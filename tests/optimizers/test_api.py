"""Registry, constructor validation and behaviour of the from-scratch optimizers."""

from __future__ import annotations

import inspect
import math
import pickle
import re

import pytest
import torch
from torch import nn

import optimizers
from optimizers import IMPLS, METHODS, SGD, Adam, AdamW, Method, build, get, names, register
from optimizers.registry import RULES
from tests.devices import DEVICES

EXPECTED = {
    # name: (rule, method hparams, batch, batch_size)
    "gd": ("sgd", {}, "full", None),
    "sgd": ("sgd", {}, "single", None),
    "minibatch": ("sgd", {}, "mini", 4),
    "momentum": ("sgd", {"momentum": 0.9}, "mini", 4),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}, "mini", 4),
    "adam": ("adam", {}, "mini", 4),
    "adamw": ("adamw", {"weight_decay": 1e-2}, "mini", 4),
    "sgd_wd": ("sgd", {"weight_decay": 1e-2}, "single", None),
    "adam_l2": ("adam", {"weight_decay": 1e-2}, "mini", 4),
}
TORCH_ONLY_KEYWORDS = {"foreach", "fused", "capturable", "differentiable"}


# --- registry -----------------------------------------------------------------------------


def test_names_in_registration_order():
    assert names() == list(EXPECTED)
    assert list(METHODS) == names()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_method_spec(name):
    rule, hparams, batch, batch_size = EXPECTED[name]
    method = get(name)
    assert method is METHODS[name]
    assert (method.name, method.rule, dict(method.hparams)) == (name, rule, hparams)
    assert (method.batch, method.batch_size) == (batch, batch_size)
    assert method.summary
    assert method.equation
    assert method.scratch is RULES[rule].scratch
    assert method.reference is RULES[rule].reference
    assert method.resolve()["lr"] == 1e-3


@pytest.mark.parametrize("rule", list(RULES))
def test_scratch_constructor_is_drop_in_for_torch(rule):
    """Same keywords, defaults and kinds as torch.optim's, minus implementation switches."""
    ours = inspect.signature(RULES[rule].scratch.__init__).parameters
    theirs = inspect.signature(RULES[rule].reference.__init__).parameters
    assert {k: (p.default, p.kind) for k, p in ours.items()} == {
        k: (p.default, p.kind) for k, p in theirs.items() if k not in TORCH_ONLY_KEYWORDS
    }


def test_hparam_names():
    assert get("gd").hparam_names == (
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "maximize",
    )
    assert get("adam").hparam_names == (
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "decoupled_weight_decay",
    )
    assert get("adamw").hparam_names == (
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
    )


def test_resolve_layers_rule_method_and_overrides():
    method = get("nesterov")
    assert method.resolve() == {
        "lr": 1e-3,
        "momentum": 0.9,
        "dampening": 0,
        "weight_decay": 0,
        "nesterov": True,
        "maximize": False,
    }
    resolved = method.resolve(lr=0.5, momentum=0.5)
    assert (resolved["lr"], resolved["momentum"], resolved["nesterov"]) == (0.5, 0.5, True)
    assert get("adamw").resolve()["weight_decay"] == 1e-2
    assert get("adam_l2").resolve(weight_decay=0.3)["weight_decay"] == 0.3


def test_resolve_rejects_unknown_keyword_listing_accepted():
    with pytest.raises(ValueError, match=r"'betas'.*accepted: lr, momentum, dampening"):
        get("momentum").resolve(betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="'decoupled_weight_decay'"):
        build("adamw", [nn.Parameter(torch.ones(1))], decoupled_weight_decay=False)


def test_method_defaults_are_read_only():
    with pytest.raises(TypeError):
        get("momentum").hparams["momentum"] = 0.5  # type: ignore[index]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_method_builds_and_steps_in_every_impl(name, impl, dtype):
    param = nn.Parameter(torch.tensor([1.0, -2.0], dtype=dtype))
    opt = build(name, [param], impl=impl, lr=0.1)
    method = get(name)
    if impl == "scratch":
        assert type(opt) is method.scratch
    else:
        assert type(opt) is method.reference
        group = opt.param_groups[0]
        assert group["foreach"] is {"torch": False, "torch-foreach": True}.get(impl)
        assert bool(group["fused"]) is (impl == "torch-fused")
    assert opt.param_groups[0]["lr"] == 0.1
    param.grad = torch.tensor([0.5, 0.5], dtype=dtype)
    opt.step()
    assert param[0].item() < 1.0


def test_unknown_method_lists_known():
    known = ", ".join(EXPECTED)
    with pytest.raises(ValueError, match=re.escape(f"unknown method 'rmsprop'; known: {known}")):
        get("rmsprop")
    with pytest.raises(ValueError, match=re.escape(f"known: {known}")):
        build("rmsprop", [nn.Parameter(torch.ones(1))])


def test_unknown_impl_lists_known():
    with pytest.raises(
        ValueError, match=re.escape("unknown impl 'jax'; known: " + ", ".join(IMPLS))
    ):
        build("adam", [nn.Parameter(torch.ones(1))], impl="jax")
    assert IMPLS == ("scratch", "torch", "torch-foreach", "torch-fused")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "rmsprop"}, "unknown rule 'rmsprop'; known: sgd, adam, adamw"),
        ({"batch": "huge"}, "unknown batch regime 'huge'; known: full, single, mini"),
        ({"batch": "mini", "batch_size": None}, "needs a batch_size >= 1, got None"),
        ({"batch": "mini", "batch_size": 0}, "needs a batch_size >= 1, got 0"),
        ({"batch": "full", "batch_size": 8}, "takes no batch_size, got 8"),
        ({"hparams": {"beta": 0.9}}, "no hyperparameter 'beta'"),
    ],
)
def test_method_validation(kwargs, message):
    fields = {"name": "x", "rule": "sgd", "hparams": {}, "batch": "single", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        Method(**fields)


def test_register_adds_one_method_and_refuses_duplicates():
    with pytest.raises(ValueError, match="'adam' is already registered"):
        register(Method("adam", "adam", {}, "mini", 4))
    method = register(Method("test_heavy_ball", "sgd", {"momentum": 0.5}, "full"))
    try:
        assert names()[-1] == "test_heavy_ball"
        assert get("test_heavy_ball") is method
        assert build("test_heavy_ball", [nn.Parameter(torch.ones(1))]).defaults["momentum"] == 0.5
    finally:
        del METHODS["test_heavy_ball"]


def test_method_is_hashable_and_picklable():
    method = get("adamw")
    assert pickle.loads(pickle.dumps(method)) == method
    assert len({method, get("adamw"), get("adam")}) == 2


def test_package_exports():
    for name in optimizers.__all__:
        assert hasattr(optimizers, name)


# --- constructor validation ---------------------------------------------------------------


def _params():
    return [nn.Parameter(torch.ones(2))]


@pytest.mark.parametrize(
    ("cls", "kwargs", "named"),
    [
        (SGD, {"lr": -0.1}, "-0.1"),
        (SGD, {"lr": math.nan}, "nan"),
        (SGD, {"lr": math.inf}, "inf"),
        (SGD, {"momentum": -0.5}, "-0.5"),
        (SGD, {"weight_decay": -0.001}, "-0.001"),
        (SGD, {"weight_decay": math.inf}, "inf"),
        (SGD, {"dampening": math.nan}, "nan"),
        (SGD, {"nesterov": True}, "momentum=0"),
        (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.25}, "dampening=0.25"),
        (Adam, {"lr": -1e-3}, "-0.001"),
        (Adam, {"lr": -math.inf}, "-inf"),
        (Adam, {"eps": -1e-8}, "-1e-08"),
        (Adam, {"betas": (1.0, 0.999)}, "1.0"),
        (Adam, {"betas": (-0.1, 0.999)}, "-0.1"),
        (Adam, {"betas": (0.9, 1.5)}, "1.5"),
        (Adam, {"betas": (0.9,)}, "(0.9,)"),
        (Adam, {"weight_decay": -0.25}, "-0.25"),
        (AdamW, {"lr": math.nan}, "nan"),
        (AdamW, {"betas": (0.9, 1.0)}, "1.0"),
        (AdamW, {"eps": -1.0}, "-1.0"),
        (AdamW, {"weight_decay": -0.01}, "-0.01"),
    ],
)
def test_invalid_hyperparameter_raises_naming_value(cls, kwargs, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        cls(_params(), **kwargs)
    # torch rejects the same values (nan/inf aside, which only we check for lr and friends).
    if not any(isinstance(v, float) and not math.isfinite(v) for v in kwargs.values()):
        reference = {SGD: torch.optim.SGD, Adam: torch.optim.Adam, AdamW: torch.optim.AdamW}[cls]
        with pytest.raises((ValueError, IndexError)):
            reference(_params(), **kwargs)


def test_tensor_lr_is_refused():
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD(_params(), lr=torch.tensor(0.1))


def test_boundary_values_are_accepted():
    SGD(_params(), lr=0.0, momentum=0.0, weight_decay=0.0)
    Adam(_params(), lr=0, betas=(0.0, 0.0), eps=0.0)


# --- behaviour ----------------------------------------------------------------------------


def _quadratic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype, device=x.device) * x**2).sum()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("name", list(EXPECTED))
def test_goes_the_right_direction(name, maximize, device):
    """20 steps on a quadratic lower the loss, or raise it under maximize."""
    x = nn.Parameter(torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64, device=device))
    opt = build(name, [x], impl="scratch", lr=0.01, maximize=maximize)
    initial = _quadratic(x).item()
    for _ in range(20):
        opt.zero_grad()
        _quadratic(x).backward()
        opt.step()
    final = _quadratic(x).item()
    if maximize:
        assert final > 1.1 * initial
    else:
        assert final < 0.9 * initial


@pytest.mark.parametrize("name", list(EXPECTED))
def test_closure_runs_with_grad_and_grad_mode_is_restored(name):
    x = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = build(name, [x])
    seen = []

    def closure():
        seen.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        return loss

    for outer_mode in (True, False):
        with torch.set_grad_enabled(outer_mode):
            loss = opt.step(closure)
            assert torch.is_grad_enabled() is outer_mode
        assert loss.item() > 0
    assert seen == [True, True]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_parameter_without_grad_is_untouched(name):
    moving, still = nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2))
    opt = build(name, [moving, still], weight_decay=0.5)
    moving.grad = torch.ones(2)
    opt.step()
    assert torch.equal(still, torch.ones(2))
    assert still not in opt.state
    assert not torch.equal(moving, torch.ones(2))


def test_state_layout():
    p = nn.Parameter(torch.ones(3, 2))
    p.grad = torch.ones(3, 2)
    plain = build("gd", [p])
    plain.step()
    assert p not in plain.state  # no buffer without momentum, as torch

    momentum = build("momentum", [p])
    momentum.step()
    assert set(momentum.state[p]) == {"momentum_buffer"}

    adam = build("adam", [p], amsgrad=True)
    adam.step()
    adam.step()
    state = adam.state[p]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert type(state["step"]) is int
    assert state["step"] == 2


def test_lr_scheduler_drives_scratch_like_torch():
    results = []
    for impl in ("scratch", "torch"):
        x = nn.Parameter(torch.tensor([1.0, -1.0]))
        opt = build("momentum", [x], impl=impl, lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        for _ in range(6):
            opt.zero_grad()
            (x**2).sum().backward()
            opt.step()
            scheduler.step()
        results.append(x.detach().clone())
    assert torch.equal(results[0], results[1])


def test_add_param_group_uses_defaults():
    opt = build("adamw", [nn.Parameter(torch.ones(1))], lr=0.2)
    opt.add_param_group({"params": [nn.Parameter(torch.ones(1))], "lr": 0.3})
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.3]
    assert opt.param_groups[1]["weight_decay"] == 1e-2
    assert opt.param_groups[1]["decoupled_weight_decay"] is True
