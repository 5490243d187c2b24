"""Plug-ins and user-registered rules: a researcher's sign-SGD benchmarked without touching
optbench, every bad spec a one-line ValueError, plug-ins pickled into another process."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import optimizers
from optimizers import (
    IMPLS,
    METHODS,
    PLUGIN,
    RULES,
    Method,
    build,
    get,
    method_from_path,
    plugin_methods,
    register,
    register_method,
    register_rule,
    resolve_methods,
)
from optimizers.parity import NO_REFERENCE, compare, parity_table, set_gradients

REPO = Path(__file__).resolve().parents[2]

SIGNSGD = textwrap.dedent(
    '''
    import torch


    class SignSGD(torch.optim.Optimizer):
        """p <- p - lr * sign(g + wd * p)"""

        def __init__(self, params, lr=1e-3, weight_decay=0.0):
            if lr < 0:
                raise ValueError(f"Invalid learning rate: {lr}")
            super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.add(p, alpha=group["weight_decay"])
                    p.add_(g.sign(), alpha=-group["lr"])


    class NeedsLR(SignSGD):
        def __init__(self, params, lr, weight_decay=0.0):
            super().__init__(params, lr, weight_decay)


    class NotAnOptimizer:
        pass


    def helper():
        pass
    '''
)


class ScratchSignSGD(torch.optim.Optimizer):
    """The same rule, registered from Python as a rule without a torch reference."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


@pytest.fixture(autouse=True)
def registries():
    """Leave METHODS and RULES as found: other tests check the registration order."""
    methods, rules = dict(METHODS), dict(RULES)
    yield
    METHODS.clear()
    METHODS.update(methods)
    RULES.clear()
    RULES.update(rules)


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "signsgd.py").write_text(SIGNSGD)
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "raising.py").write_text("raise RuntimeError('boom\\non two lines')\n")
    (tmp_path / "notes.txt").write_text("")
    return tmp_path


def _params(seed: int = 0) -> list[nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(s, generator=generator)) for s in [(), (5,), (4, 3)]]


def _run(method: Method | str, steps: int = 6, impl: str | None = None, **hparams) -> list:
    """Step ``method`` on fixed parameters and seeded gradients; return the final parameters."""
    params = _params()
    opt = build(method, params, impl=impl, **hparams)
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        set_gradients(step, generator, params)
        opt.step()
    return [p.detach().clone() for p in params]


def _assert_bitwise(a: list, b: list) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.view(torch.int32), y.view(torch.int32))


# --- loading ------------------------------------------------------------------------------


def test_loads_from_file(plugin_dir):
    spec = f"{plugin_dir / 'signsgd.py'}:SignSGD"
    method = method_from_path(spec, hparams={"lr": 0.1})
    assert (method.name, method.rule, method.plugin, method.impls) == (
        "signsgd",
        PLUGIN,
        spec,
        ("plugin",),
    )
    assert (method.batch, method.batch_size) == ("mini", 4)
    assert method.hparam_names == ("lr", "weight_decay")
    assert method.resolve() == {"lr": 0.1, "weight_decay": 0.0}
    assert method.scratch is None
    assert method.reference is None
    assert method.plugin_class.__name__ == "SignSGD"
    assert "signsgd" not in METHODS  # loading does not register
    param = nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = build(method, [param])
    assert type(opt) is method.plugin_class
    param.grad = torch.tensor([3.0, -0.5])
    opt.step()
    assert param.tolist() == pytest.approx([0.9, -0.9])


def test_relative_file_is_relative_to_cwd_and_stored_absolute(plugin_dir, monkeypatch):
    monkeypatch.chdir(plugin_dir)
    method = method_from_path("./signsgd.py:SignSGD", name="sign")
    assert method.plugin == f"{plugin_dir / 'signsgd.py'}:SignSGD"
    assert method.name == "sign"
    # the same file twice is one module, so one class: equal methods
    assert method_from_path("signsgd.py:SignSGD", name="sign") == method


def test_loads_from_module(plugin_dir, monkeypatch):
    module = f"signsgd_{plugin_dir.name.replace('-', '_')}"
    (plugin_dir / f"{module}.py").write_text(SIGNSGD)
    monkeypatch.syspath_prepend(str(plugin_dir))
    method = method_from_path(f"{module}:SignSGD")
    assert method.plugin == f"{module}:SignSGD"
    assert method.plugin_class.__module__ == module
    assert not _run(method, lr=0.5)[0].isnan()


@pytest.mark.parametrize(
    ("spec", "name", "cls"),
    [
        ("torch.optim:RMSprop", "rmsprop", torch.optim.RMSprop),
        ("torch.optim:SGD", "torch_sgd", torch.optim.SGD),
    ],
)
def test_loads_torch_optim_classes(spec, name, cls):
    method = method_from_path(spec, name=None if name == "rmsprop" else name)
    assert method.name == name
    assert method.plugin_class is cls
    assert "lr" in method.hparam_names
    params = _run(method, lr=0.01)
    assert not any(p.isnan().any() for p in params)


def test_torch_sgd_as_plugin_equals_builtin_sgd_torch_impl():
    """The same thing two ways: torch.optim.SGD loaded as a plug-in, and the built-in sgd."""
    plugin = method_from_path("torch.optim:SGD", name="torch_sgd")
    hparams = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
    _assert_bitwise(_run(plugin, **hparams), _run("sgd", impl="torch", **hparams))


BAD = [
    # (spec, keyword arguments, fragment of the message)
    ("{dir}/missing.py:SignSGD", {}, "no such file"),
    ("{dir}/broken.py:SignSGD", {}, "syntax error in"),
    ("{dir}/raising.py:SignSGD", {}, "raised RuntimeError: boom on two lines"),
    ("{dir}/signsgd.py:Missing", {}, "has no attribute 'Missing'"),
    ("{dir}/signsgd.py:NotAnOptimizer", {}, "is not a torch.optim.Optimizer subclass"),
    ("{dir}/signsgd.py:helper", {}, "helper must take the parameters (params) first (a factory is"),
    ("{dir}/signsgd.py", {}, "no ':'"),
    (":SignSGD", {}, "empty module or file"),
    ("{dir}/signsgd.py:", {}, "empty class name"),
    ("{dir}/signsgd.py:Sign-SGD", {}, "is not a Python identifier"),
    ("{dir}/notes.txt:SignSGD", {}, "is not a .py file"),
    ("{dir}:SignSGD", {}, "is not a .py file"),
    ("no_such_module_for_optbench:SignSGD", {}, "cannot import 'no_such_module_for_optbench'"),
    ("torch.optim:NoSuchOptimizer", {}, "module 'torch.optim' has no attribute"),
    ("torch optim:SGD", {}, "neither a module name nor a path"),
    (
        "{dir}/signsgd.py:SignSGD",
        {"hparams": {"momentum": 0.9}},
        "has no hyperparameter 'momentum'; accepted: lr, weight_decay",
    ),
    (
        "{dir}/signsgd.py:SignSGD",
        {"hparams": {"lr": -1.0}},
        "rejected its hyperparameters: ValueError: Invalid learning rate: -1.0",
    ),
    ("{dir}/signsgd.py:NeedsLR", {}, "needs lr: no default"),
    ("torch.optim:SGD", {}, "default name 'sgd' is a built-in method; pass name="),
    ("torch.optim:Adam", {}, "default name 'adam' is a built-in method"),
    ("{dir}/signsgd.py:SignSGD", {"name": "sign,sgd"}, "must be letters, digits"),
    ("{dir}/signsgd.py:SignSGD", {"batch": "full", "batch_size": 8}, "takes no batch_size"),
    ("{dir}/signsgd.py:SignSGD", {"batch": "huge"}, "unknown batch regime 'huge'"),
    ("{dir}/signsgd.py:SignSGD", {"hparams": [("lr", 1)]}, "hparams must be a mapping"),
]


@pytest.mark.parametrize(("spec", "kwargs", "fragment"), BAD)
def test_every_bad_plugin_is_one_single_line_value_error(plugin_dir, spec, kwargs, fragment):
    spec = spec.format(dir=plugin_dir)
    with pytest.raises(ValueError, match=re.escape(fragment)) as info:
        method_from_path(spec, **kwargs)
    message = str(info.value)
    assert message.startswith(f"plug-in {spec!r}: ")
    assert "\n" not in message
    assert "Traceback" not in message
    assert len(message) < 300


def test_failed_file_import_leaves_no_module_behind(plugin_dir):
    before = set(sys.modules)
    with pytest.raises(ValueError, match="raised RuntimeError"):
        method_from_path(f"{plugin_dir / 'raising.py'}:X")
    assert set(sys.modules) == before


def test_full_batch_plugin_and_required_lr_given(plugin_dir):
    method = method_from_path(
        f"{plugin_dir / 'signsgd.py'}:NeedsLR", batch="full", hparams={"lr": 0.2}
    )
    assert (method.name, method.batch, method.batch_size) == ("needslr", "full", None)
    assert method.resolve()["lr"] == 0.2


# --- registering from Python ----------------------------------------------------------------


def test_rule_without_reference_builds_scratch_only():
    rule = register_rule("signsgd", ScratchSignSGD)
    assert RULES["signsgd"] is rule
    assert rule.impls == ("scratch",)
    method = register_method(
        "signsgd", rule="signsgd", batch="mini", batch_size=8, hparams={"lr": 0.5}
    )
    assert get("signsgd") is method
    assert optimizers.names()[-1] == "signsgd"
    assert method.impls == ("scratch",)
    assert type(build("signsgd", _params())) is ScratchSignSGD
    assert type(build("signsgd", _params(), impl="scratch")) is ScratchSignSGD
    for impl in ("torch", "torch-foreach", "plugin"):
        message = f"method 'signsgd' has no {impl!r} implementation; it has: scratch"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            build("signsgd", _params(), impl=impl)
    record = compare("signsgd", dtype="float32")
    assert (record["status"], record["bitwise"], record["steps"]) == (NO_REFERENCE, None, 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: register_rule("sgd", ScratchSignSGD), "rule 'sgd' is already registered"),
        (lambda: register_rule("plugin", ScratchSignSGD), "'plugin' is reserved"),
        (lambda: register_rule("x", int), "must be a torch.optim.Optimizer subclass"),
        (lambda: register_rule("x", ScratchSignSGD, dict), "torch class must be a torch.optim"),
        (lambda: register_rule("a b", ScratchSignSGD), "rule name 'a b' must be letters"),
        (
            lambda: register_method("gd", rule="sgd", batch="full"),
            "method 'gd' is already registered",
        ),
        (
            lambda: register_method("x", rule="nope", batch="full"),
            "unknown rule 'nope'; known: sgd, adam, adamw",
        ),
        (lambda: Method("x", "plugin", {}, "full"), "rule 'plugin' needs a plug-in spec"),
        (
            lambda: Method("x", "sgd", {}, "full", plugin="torch.optim:SGD"),
            "a plug-in's rule is 'plugin'",
        ),
        (lambda: build("adam", _params(), impl="plugin"), "has no 'plugin' implementation"),
    ],
)
def test_registration_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        call()
    assert "\n" not in str(info.value)


def test_builtin_methods_have_every_impl():
    assert all(get(name).impls == IMPLS for name in optimizers.BUILTIN_METHODS)
    with pytest.raises(ValueError, match="has no 'scratch' implementation; it has: plugin"):
        build(method_from_path("torch.optim:RMSprop"), _params(), impl="scratch")


# --- the CLI's flow: resolve a --methods list, look up by name, rebuild in a worker ---------


def test_resolve_methods_registers_plugins_once(plugin_dir):
    entry = f"{plugin_dir / 'signsgd.py'}:SignSGD"
    methods = resolve_methods(f"gd, adam,{entry}")
    assert [m.name for m in methods] == ["gd", "adam", "signsgd"]
    assert get("signsgd") is methods[2]
    assert plugin_methods() == (methods[2],)
    assert resolve_methods([entry])[0] is methods[2]  # the same spec again: the same method
    with pytest.raises(ValueError, match="'gd' is listed twice"):
        resolve_methods("gd,gd")
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        resolve_methods("gd,nope")
    with pytest.raises(ValueError, match="empty"):
        resolve_methods("gd,,adam")
    other = plugin_dir / "other"
    other.mkdir()
    (other / "signsgd.py").write_text(SIGNSGD)
    with pytest.raises(ValueError, match="already registered as a different method") as info:
        resolve_methods([f"{other / 'signsgd.py'}:SignSGD"])
    assert "\n" not in str(info.value)


def test_plugin_survives_pickle_and_steps_bitwise(plugin_dir):
    method = method_from_path(f"{plugin_dir / 'signsgd.py'}:SignSGD", hparams={"lr": 0.05})
    expected = _run(method)
    copy = pickle.loads(pickle.dumps(method))
    assert copy == method
    _assert_bitwise(_run(copy), expected)
    # As in a fresh process: the module is imported again, giving a new class object.
    del sys.modules[method.plugin_class.__module__]
    fresh = pickle.loads(pickle.dumps(method))
    assert fresh.plugin_class is not method.plugin_class
    _assert_bitwise(_run(fresh), expected)
    # ... and registering it where an equal method is registered is a no-op.
    registered = register(method)
    assert register(fresh, exist_ok=True) is registered
    with pytest.raises(ValueError, match="already registered"):
        register(fresh)


WORKER = """
import pickle, sys, torch
import optimizers
params, grads, method = pickle.load(open(sys.argv[1], "rb"))
optimizers.register(method, exist_ok=True)
opt = optimizers.build(method.name, params)
for step_grads in grads:
    for param, grad in zip(params, step_grads):
        param.grad = grad
    opt.step()
torch.save([p.detach() for p in params], sys.argv[2])
"""


def test_plugin_rebuilds_in_another_process(plugin_dir, tmp_path):
    """What a Dask worker does: unpickle the method, register it, build it by name."""
    method = method_from_path(f"{plugin_dir / 'signsgd.py'}:SignSGD", hparams={"lr": 0.05})
    params = _params()
    grads = [[torch.randn_like(p) for p in params] for _ in range(6)]
    (tmp_path / "method.pkl").write_bytes(pickle.dumps((params, grads, method)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "method.pkl"), str(tmp_path / "out.pt")],
        cwd=elsewhere,
        env=env,
        check=True,
        timeout=120,
    )
    opt = build(method, params)
    for step_grads in grads:
        for param, grad in zip(params, step_grads, strict=True):
            param.grad = grad
        opt.step()
    _assert_bitwise(torch.load(tmp_path / "out.pt"), params)


# --- parity ---------------------------------------------------------------------------------


def test_parity_reports_no_reference_for_plugins(plugin_dir):
    (method,) = resolve_methods([f"{plugin_dir / 'signsgd.py'}:SignSGD"])
    record = compare(method, dtype="float64")
    assert record["status"] == NO_REFERENCE
    assert record["bitwise"] is None
    assert record["rule"] == "plugin"
    rows = parity_table(steps=2, dtypes=("float64",))
    ours = [row for row in rows if row["method"] == "signsgd"]
    assert [(row["case"], row["status"]) for row in ours] == [("default", NO_REFERENCE)]
    others = [row for row in rows if row["method"] != "signsgd"]
    assert others
    assert all(row["status"] == "bitwise" and row["bitwise"] for row in others)
    chosen = parity_table(steps=2, dtypes=("float32",), methods=["gd", method])
    assert {(row["method"], row["status"]) for row in chosen} == {
        ("gd", "bitwise"),
        ("signsgd", NO_REFERENCE),
    }
