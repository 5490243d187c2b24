"""Run the same optimisation two ways (scratch vs torch.optim's for-loop) and compare them.

Used by the parity tests and by the CLI command that writes ``parity.csv``. A comparison feeds
both implementations identical parameters and an identical, seeded gradient sequence and checks
parameters *and* every state tensor after every step, bit for bit. A method with nothing to
compare against (a plug-in, or a rule registered without a torch reference) gets a record with
status "no reference" instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .registry import METHODS, Method, get

__all__ = [
    "BITWISE",
    "CASES",
    "DEFAULT_CASE",
    "DEFAULT_SHAPES",
    "DIFFERS",
    "NO_REFERENCE",
    "STATUSES",
    "Case",
    "bitwise_equal",
    "cases_for",
    "compare",
    "has_gradient",
    "optimizer_diff",
    "parity_table",
    "set_gradients",
]


#: A record's ``status``: bit-identical to the reference after every step, not, or nothing to
#: compare with (``bitwise`` is then None and the differences NaN).
BITWISE, DIFFERS, NO_REFERENCE = "bitwise", "differs", "no reference"
STATUSES = (BITWISE, DIFFERS, NO_REFERENCE)


class Case(NamedTuple):
    """Hyperparameter overrides applied on top of a method's defaults."""

    name: str
    hparams: Mapping[str, Any]


#: The only case of a rule without an entry in ``CASES``: the method's own defaults.
DEFAULT_CASE = Case("default", {})


#: Hyperparameter inputs per update rule, modelled on torch's own optimizer tests
#: (``optim_inputs_func_*`` in torch/testing/_internal/common_optim.py). Every case applies to
#: every method of its rule, the case overriding the method's defaults; learning rates stay
#: moderate so 100+ steps stay finite. A registered rule may add its own entry.
CASES: dict[str, tuple[Case, ...]] = {
    "sgd": (
        Case("default", {}),
        Case("lr", {"lr": 0.1}),
        Case("weight_decay", {"weight_decay": 0.5}),
        Case("momentum", {"momentum": 0.9}),
        Case("dampening", {"momentum": 0.9, "dampening": 0.5, "nesterov": False}),
        Case("momentum_wd", {"momentum": 0.9, "weight_decay": 0.5}),
        Case("nesterov_wd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.5}),
        Case("maximize_wd", {"maximize": True, "weight_decay": 0.5}),
        Case("lr_maximize", {"lr": 0.05, "maximize": True}),
    ),
    "adam": (
        Case("default", {}),
        Case("lr", {"lr": 1e-2}),
        Case("betas", {"betas": (0.8, 0.99)}),
        Case("eps", {"eps": 1e-6}),
        Case("amsgrad", {"amsgrad": True}),
        Case("weight_decay", {"weight_decay": 0.1}),
        Case("maximize_wd", {"maximize": True, "weight_decay": 0.1}),
        Case("amsgrad_maximize", {"amsgrad": True, "maximize": True}),
        Case("decoupled_wd", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ),
    "adamw": (
        Case("default", {}),
        Case("weight_decay", {"weight_decay": 0.5}),
        Case("amsgrad", {"amsgrad": True}),
        Case("maximize", {"maximize": True}),
        Case("lr_betas_eps", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6}),
    ),
}

#: Parameter shapes of a comparison: a scalar, a vector and a matrix.
DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((), (5,), (4, 3))

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _method(method: str | Method) -> Method:
    return method if isinstance(method, Method) else get(method)


def cases_for(method: str | Method) -> tuple[Case, ...]:
    """The cases that apply to ``method``: those of its update rule, or ``(DEFAULT_CASE,)`` for a
    rule without an entry in ``CASES`` or without a reference."""
    spec = _method(method)
    if spec.reference is None:
        return (DEFAULT_CASE,)
    return CASES.get(spec.rule, (DEFAULT_CASE,))


def _hparams_json(kwargs: Mapping[str, Any]) -> str:
    # repr for what JSON cannot hold (a plug-in's default may be any object)
    return json.dumps(kwargs, sort_keys=True, default=repr)


def has_gradient(step: int, index: int) -> bool:
    """Whether parameter ``index`` gets a gradient at ``step`` of a comparison.

    Parameter j first gets one at step j, so state is created at different steps and per-parameter
    step counts differ; afterwards it has none whenever ``(step + j) % 10 == 9``, exercising the
    rule that a parameter whose ``.grad`` is None is skipped entirely.
    """
    return step >= index and (step + index) % 10 != 9


def set_gradients(step: int, generator: torch.Generator, *param_sets: Sequence[Tensor]) -> None:
    """Give each parameter set its own copy of the same fresh gradients for ``step``.

    Gradients are drawn on the CPU from ``generator`` (so a sequence does not depend on the
    device) for every parameter, then set, or set to None where :func:`has_gradient` says so.
    """
    for index, params in enumerate(zip(*param_sets, strict=True)):
        first = params[0]
        grad = torch.randn(first.shape, generator=generator, dtype=first.dtype)
        with_grad = has_gradient(step, index)
        for param in params:
            param.grad = grad.to(param.device, copy=True) if with_grad else None


def bitwise_equal(a: Tensor, b: Tensor) -> bool:
    """True if ``a`` and ``b`` have the same dtype, shape and bits (stricter than torch.equal,
    which calls 0.0 and -0.0 equal and NaN unequal to itself)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.is_complex():
        a, b = torch.view_as_real(a), torch.view_as_real(b)
    if a.is_floating_point():
        as_int = _INT_OF_SIZE[a.element_size()]
        a, b = a.view(as_int), b.view(as_int)
    return torch.equal(a, b)


def _number(value: Any) -> Any:
    """A one-element tensor as a Python number; anything else unchanged."""
    return value.item() if isinstance(value, Tensor) and value.numel() == 1 else value


def _value_diff(ours: Any, ref: Any) -> tuple[bool, float, float]:
    """(equal, max abs diff, max rel diff) of two parameters or two state values."""
    if isinstance(ours, Tensor) and isinstance(ref, Tensor):
        if bitwise_equal(ours, ref):
            return True, 0.0, 0.0
        if ours.shape != ref.shape:
            return False, math.inf, math.inf
        x, y = ours.detach().double().cpu(), ref.detach().double().cpu()
    else:
        # A count such as Adam's step: a Python int in ours, a float tensor in torch. Only the
        # value matters here.
        if isinstance(ours, Tensor) or isinstance(ref, Tensor):
            value_ours, value_ref = _number(ours), _number(ref)
        else:
            value_ours, value_ref = ours, ref
        if value_ours == value_ref:
            return True, 0.0, 0.0
        x = torch.as_tensor(value_ours, dtype=torch.float64)
        y = torch.as_tensor(value_ref, dtype=torch.float64)
        if x.shape != y.shape:
            return False, math.inf, math.inf
    if x.numel() == 0:
        return False, 0.0, 0.0  # same shape, no elements: only the dtype differed
    both_nan = x.isnan() & y.isnan()
    abs_diff = torch.nan_to_num((x - y).abs(), nan=math.inf).masked_fill(both_nan, 0.0)
    rel_diff = abs_diff / y.abs().clamp_min(torch.finfo(torch.float64).tiny)
    return False, abs_diff.max().item(), rel_diff.max().item()


def optimizer_diff(
    ours: torch.optim.Optimizer,
    ref: torch.optim.Optimizer,
    our_params: Sequence[Tensor],
    ref_params: Sequence[Tensor],
) -> tuple[bool, float, float]:
    """Compare parameters and every state entry of two optimizers over paired parameters.

    Returns ``(bitwise, max_abs_diff, max_rel_diff)``. Different state keys for a parameter
    (a buffer one side has and the other lacks) count as an infinite difference.
    """
    equal, max_abs, max_rel = True, 0.0, 0.0
    for p_ours, p_ref in zip(our_params, ref_params, strict=True):
        state_ours = ours.state.get(p_ours, {})
        state_ref = ref.state.get(p_ref, {})
        if state_ours.keys() != state_ref.keys():
            return False, math.inf, math.inf
        pairs = [(p_ours, p_ref)] + [(state_ours[k], state_ref[k]) for k in state_ours]
        for value_ours, value_ref in pairs:
            same, abs_diff, rel_diff = _value_diff(value_ours, value_ref)
            equal &= same
            max_abs = max(max_abs, abs_diff)
            max_rel = max(max_rel, rel_diff)
    return equal, max_abs, max_rel


def _dtype_name(dtype: str | torch.dtype) -> str:
    name = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(_DTYPES)}")
    return name


def compare(
    method: str | Method,
    hparams: Mapping[str, Any] | None = None,
    *,
    dtype: str | torch.dtype,
    device: str | torch.device = "cpu",
    steps: int = 100,
    seed: int = 0,
    scratch_cls: type[torch.optim.Optimizer] | None = None,
    shapes: Iterable[Sequence[int]] = DEFAULT_SHAPES,
) -> dict[str, Any]:
    """Run ``method`` (a registered name or a Method) from scratch and as torch.optim
    (foreach=False) side by side.

    Both get copies of the same parameters (``shapes``, drawn from a ``torch.Generator`` seeded
    with ``seed``) and, at every step, the same gradients from that generator (see
    :func:`has_gradient` for which parameters get none). Parameters and all state are compared
    after every step. ``hparams`` override the method's defaults; ``scratch_cls`` replaces our
    class (a test injects a deliberately wrong one).

    Returns a record: method, rule, hparams (resolved, JSON with sorted keys), dtype, device,
    steps, seed, status (one of ``STATUSES``), bitwise (bit-identical params and state after
    every step), max_abs_diff and max_rel_diff (maxima over all steps; 0.0 when bitwise) and
    first_mismatch_step (None when bitwise). A method without a reference runs nothing: status
    "no reference", steps 0, bitwise None, differences NaN.
    """
    spec = _method(method)
    kwargs = spec.resolve(**(hparams or {}))
    dtype_name = _dtype_name(dtype)
    torch_dtype = _DTYPES[dtype_name]
    device = torch.device(device)
    record = {
        "method": spec.name,
        "rule": spec.rule,
        "hparams": _hparams_json(kwargs),
        "dtype": dtype_name,
        "device": str(device),
    }
    if spec.reference is None:
        return {
            **record,
            "steps": 0,
            "seed": seed,
            "status": NO_REFERENCE,
            "bitwise": None,
            "max_abs_diff": math.nan,
            "max_rel_diff": math.nan,
            "first_mismatch_step": None,
        }
    generator = torch.Generator().manual_seed(seed)
    shapes = [tuple(shape) for shape in shapes]

    initial = [torch.randn(shape, generator=generator, dtype=torch_dtype) for shape in shapes]
    our_params = [torch.nn.Parameter(t.to(device, copy=True)) for t in initial]
    ref_params = [torch.nn.Parameter(t.to(device, copy=True)) for t in initial]
    ours = (scratch_cls or spec.scratch)(our_params, **kwargs)
    ref = spec.reference(ref_params, **kwargs, foreach=False)

    bitwise, max_abs, max_rel, first_mismatch = True, 0.0, 0.0, None
    for step in range(steps):
        set_gradients(step, generator, our_params, ref_params)
        ours.step()
        ref.step()
        equal, abs_diff, rel_diff = optimizer_diff(ours, ref, our_params, ref_params)
        if not equal and bitwise:
            bitwise, first_mismatch = False, step
        max_abs, max_rel = max(max_abs, abs_diff), max(max_rel, rel_diff)

    return {
        **record,
        "steps": steps,
        "seed": seed,
        "status": BITWISE if bitwise else DIFFERS,
        "bitwise": bitwise,
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
        "first_mismatch_step": first_mismatch,
    }


def parity_table(
    *,
    steps: int = 100,
    device: str | torch.device = "cpu",
    dtypes: Iterable[str] = ("float32", "float64"),
    seed: int = 0,
    methods: Iterable[str | Method] | None = None,
) -> list[dict[str, Any]]:
    """One :func:`compare` record per method x case x dtype, with a ``case`` column.

    ``methods`` defaults to every registered method; one without a reference (a plug-in, say)
    gets one "no reference" row per dtype. Methods of one rule often resolve to the same
    hyperparameters (``gd``, ``sgd`` and ``minibatch`` differ only in batch regime); such rows are
    one identical computation, so it runs once and its result is reported under each method.
    """
    done: dict[tuple[str, str, str], dict[str, Any]] = {}
    rows = []
    for spec in map(_method, METHODS.values() if methods is None else methods):
        for case in cases_for(spec):
            key_hparams = _hparams_json(spec.resolve(**case.hparams))
            for dtype in dtypes:
                key = (spec.rule, key_hparams, _dtype_name(dtype))
                if spec.reference is None or key not in done:
                    done[key] = compare(
                        spec, case.hparams, dtype=dtype, device=device, steps=steps, seed=seed
                    )
                row = {"method": spec.name, "case": case.name, **done[key]}
                row["method"] = spec.name
                rows.append(row)
    return rows
