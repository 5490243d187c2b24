"""What builds a run's optimizer from its spec alone: the method (a built-in name, or a class or
factory by import path), a wrapper's inner method, parameter groups.

Nothing here reads a registry filled at parse time: a plug-in is its import path (a file as an
absolute path) plus its options, so any process rebuilds it from the spec (`report DIR`, a Dask
worker, a resumed command).

Wrappers. A plug-in whose constructor takes an optimizer first (pytorch-optimizer's
`Lookahead(optimizer, k=5, alpha=0.5)`) is built around an *inner* method built on the
parameters: a built-in name (`adam`) or an import path (`torch.optim:AdamW`), with its own
hyperparameters. The run's `lr` is the inner's when the wrapper takes none. A keyword that takes
an optimizer class (SAM's `base_optimizer`) is given as an import path, `torch.optim:SGD`.

Parameter groups (`groups`): rules `selector -> options`, in order; each parameter joins the
first rule whose selector matches it, the others stay in the default group (the method's own
hyperparameters). Selectors: `bias` (a parameter named `bias` or ending in `.bias`), `norm` (the
parameters of normalisation layers: BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm),
`matrix` (2-D or more), `vector` (fewer than 2 dimensions), or a glob over parameter names
(`0.*`, `*.weight`). Options: the method's hyperparameters (`weight_decay = 0`; `lr` as an
absolute rate) and `lr_scale`, a multiple of the run's lr that sweeps and schedules scale with
it; a plug-in may take keys of its own (Muon's `use_muon`). The preset `no_decay` is
`{bias = {weight_decay = 0}, norm = {weight_decay = 0}}`.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import torch
from torch import nn

import optimizers
from bench.errors import ConfigError
from bench.schema import Hparams

PRESETS: dict[str, list[list[Any]]] = {
    "no_decay": [["bias", {"weight_decay": 0.0}], ["norm", {"weight_decay": 0.0}]],
}
NAMED_SELECTORS = ("bias", "norm", "matrix", "vector")
NORM_LAYERS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def _error(exc: Exception) -> ConfigError:
    return ConfigError(str(exc))


@lru_cache(maxsize=256)
def method_def(
    name: str,
    optimizer: str = "",
    hparams: Hparams = (),
    batch: str = "full",
    batch_size: int | None = None,
) -> optimizers.Method:
    """The method a spec names: a built-in (registered) method, or the class or factory at
    import path `optimizer` under the name `name` (its batch regime matters only to planning:
    a spec has its batch size)."""
    if not optimizer:
        try:
            return optimizers.get(name)
        except ValueError as exc:
            raise _error(exc) from None
    try:
        return optimizers.Method(
            name, optimizers.PLUGIN, dict(hparams), batch, batch_size, plugin=optimizer,
            summary=_summary(optimizer),
        )  # fmt: skip
    except ValueError as exc:
        raise _error(exc) from None


def _summary(path: str) -> str:
    where, _, attr = path.rpartition(":")
    return f"{attr} from {where.rsplit('/', 1)[-1]}"


def inner_def(inner: str, hparams: Hparams = ()) -> optimizers.Method:
    """A wrapper's inner method: a built-in name or an import path (named by its class)."""
    if ":" in inner:
        return method_def(inner.rpartition(":")[2].lower(), inner, hparams)
    return method_def(inner)


# ----------------------------------------------------------------------------------------------
# Parameter groups


def parse_groups(value: Any, method: optimizers.Method, where: str = "groups") -> str:
    """Canonical JSON text of a `groups` value (a preset name, or a table selector -> options);
    "" for none. Unknown option keys of a built-in method are an error."""
    if value in (None, "", {}, []):
        return ""
    if isinstance(value, str) and value.startswith("["):  # already canonical (a stored spec)
        rules = json.loads(value)
    elif isinstance(value, str):
        if value not in PRESETS:
            raise ConfigError(
                f"{where}: unknown preset {value!r}; known: {', '.join(PRESETS)}, or a table "
                "selector -> options"
            )
        rules = PRESETS[value]
    elif isinstance(value, Mapping):
        rules = [[k, v] for k, v in value.items()]
    else:
        raise ConfigError(f"{where} must be a preset name or a table selector -> options")
    own = set(method.hparam_names) | {"lr", "lr_scale"}
    for selector, options in rules:
        if not isinstance(selector, str) or not selector.strip():
            raise ConfigError(f"{where}: a selector must be a non-empty string, got {selector!r}")
        if not isinstance(options, Mapping) or not options:
            raise ConfigError(f"{where}.{selector} must be a table of options, got {options!r}")
        for key, v in options.items():
            if method.plugin is None and key not in own:
                raise ConfigError(
                    f"{where}.{selector}: method {method.name!r} has no hyperparameter {key!r}; "
                    f"it takes {', '.join(sorted(own))}"
                )
            if key in ("lr", "lr_scale") and (
                isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0
            ):
                raise ConfigError(f"{where}.{selector}.{key} must be a number >= 0, got {v!r}")
    return json.dumps([[s, dict(o)] for s, o in rules], sort_keys=True)


def _matches(selector: str, name: str, param: nn.Parameter, norm: set[int]) -> bool:
    if selector == "bias":
        return name == "bias" or name.endswith(".bias")
    if selector == "norm":
        return id(param) in norm
    if selector == "matrix":
        return param.ndim >= 2
    if selector == "vector":
        return param.ndim < 2
    return fnmatch.fnmatchcase(name, selector)


def param_groups(model: nn.Module, groups: str, lr: float) -> Iterable[Any]:
    """The optimizer's first argument: `model.parameters()` without groups, else a list of
    group dicts: the default group first (when it has parameters), then one per rule."""
    if not groups:
        return model.parameters()
    rules = json.loads(groups)
    norm = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()}
    members: list[list[nn.Parameter]] = [[] for _ in range(len(rules) + 1)]
    for name, param in model.named_parameters():
        slot = next(
            (i + 1 for i, (sel, _) in enumerate(rules) if _matches(sel, name, param, norm)), 0
        )
        members[slot].append(param)
    out = [{"params": members[0]}] if members[0] else []
    for (_, options), params in zip(rules, members[1:], strict=True):
        if params:
            group = {k: v for k, v in options.items() if k != "lr_scale"}
            if "lr_scale" in options:
                group["lr"] = lr * options["lr_scale"]
            out.append({"params": params, **group})
    return out


# ----------------------------------------------------------------------------------------------
# Building


def build(
    method: optimizers.Method,
    params: Any,
    impl: str,
    hparams: Mapping[str, Any],
    inner: str = "",
    inner_hparams: Mapping[str, Any] | None = None,
) -> torch.optim.Optimizer:
    """The run's optimizer over `params` (parameters or group dicts); a wrapper around its inner
    method, built first on the same parameters (the run's lr is the inner's unless the wrapper
    takes one or the inner's own hyperparameters set it)."""
    if not method.wraps:
        return optimizers.build(method, params, impl=impl, **hparams)
    inner_method = inner_def(inner, tuple(sorted((inner_hparams or {}).items())))
    own = dict(inner_hparams or {})
    if "lr" not in method.hparam_names and "lr" in hparams:
        own.setdefault("lr", hparams["lr"])
    core = optimizers.build(inner_method, params, **own)
    return optimizers.build(method, core, impl=impl, **hparams)


def check(
    method: optimizers.Method,
    impl: str,
    hparams: Mapping[str, Any],
    inner: str = "",
    inner_hparams: Mapping[str, Any] | None = None,
) -> None:
    """Build once on a dummy parameter: a value a constructor rejects is a ConfigError here."""
    if method.wraps and not inner:
        raise ConfigError(
            f"{method.name}: {method.plugin_class.__name__} wraps an optimizer; name the inner "
            f"method: --hp {method.name}.{method.wraps}=adam (or an import path)"
        )
    if inner and not method.wraps:
        raise ConfigError(f"{method.name}: takes the parameters, not an optimizer to wrap")
    try:
        build(method, [torch.zeros(1, requires_grad=True)], impl, hparams, inner, inner_hparams)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # the optimizer's own checks (negative momentum...)
        raise ConfigError(f"{method.name}: {exc}") from None
    except Exception as exc:  # whatever a plug-in's constructor raises
        raise ConfigError(f"{method.name}: {type(exc).__name__}: {exc}") from None


def takes_closure(opt: torch.optim.Optimizer) -> bool:
    """Whether `opt.step` accepts a closure (every torch.optim optimizer does)."""
    try:
        return bool(inspect.signature(opt.step).parameters)
    except (TypeError, ValueError):
        return True
