"""Property-based parity: random shapes and hyperparameters, scratch still bitwise equals torch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizers import METHODS
from optimizers.parity import compare
from tests.devices import DEVICES

SGD_METHODS = [name for name, m in METHODS.items() if m.rule == "sgd"]
ADAM_METHODS = [name for name, m in METHODS.items() if m.rule in ("adam", "adamw")]

shapes = st.lists(st.lists(st.integers(1, 4), max_size=3).map(tuple), min_size=1, max_size=3)
steps = st.integers(1, 30)
dtypes = st.sampled_from(["float32", "float64"])
seeds = st.integers(0, 2**16)


@st.composite
def sgd_hparams(draw) -> dict:
    momentum = draw(st.just(0.0) | st.floats(0.0, 0.99))
    nesterov = momentum > 0 and draw(st.booleans())
    return {
        "lr": draw(st.floats(0.0, 0.5)),
        "momentum": momentum,
        "dampening": 0.0 if nesterov else draw(st.floats(0.0, 1.0)),
        "weight_decay": draw(st.just(0.0) | st.floats(0.0, 1.0)),
        "nesterov": nesterov,
        "maximize": draw(st.booleans()),
    }


@st.composite
def adam_method_and_hparams(draw) -> tuple[str, dict]:
    method = draw(st.sampled_from(ADAM_METHODS))
    hparams = {
        "lr": draw(st.floats(0.0, 0.1)),
        "betas": (draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.9999))),
        "eps": draw(st.floats(1e-12, 1e-3)),
        "weight_decay": draw(st.just(0.0) | st.floats(0.0, 1.0)),
        "amsgrad": draw(st.booleans()),
        "maximize": draw(st.booleans()),
    }
    if METHODS[method].rule == "adam":
        hparams["decoupled_weight_decay"] = draw(st.booleans())
    return method, hparams


def _assert_bitwise(record: dict) -> None:
    assert record["bitwise"], (
        f"first mismatch at step {record['first_mismatch_step']}, "
        f"max abs diff {record['max_abs_diff']:.3g}"
    )


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=25)
@given(
    method=st.sampled_from(SGD_METHODS),
    hparams=sgd_hparams(),
    shapes=shapes,
    steps=steps,
    dtype=dtypes,
    seed=seeds,
)
def test_sgd_family_bitwise_for_random_settings(
    device, method, hparams, shapes, steps, dtype, seed
):
    _assert_bitwise(
        compare(method, hparams, dtype=dtype, device=device, steps=steps, seed=seed, shapes=shapes)
    )


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=25)
@given(
    method_and_hparams=adam_method_and_hparams(),
    shapes=shapes,
    steps=steps,
    dtype=dtypes,
    seed=seeds,
)
def test_adam_family_bitwise_for_random_settings(
    device, method_and_hparams, shapes, steps, dtype, seed
):
    method, hparams = method_and_hparams
    _assert_bitwise(
        compare(method, hparams, dtype=dtype, device=device, steps=steps, seed=seed, shapes=shapes)
    )
