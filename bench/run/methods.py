"""The methods of a suite or a command line: names, plug-ins by import spec, `--hp` values.

A methods list holds registered names (`gd`, `adam`; `all` = every registered method that is
not a plug-in) and plug-in entries, any entry with a `:`: an optimizer class named by an
import spec (`path/to/signsgd.py:SignSGD`, `module.path:Class`, `torch.optim:RMSprop`),
optionally named `name=spec` (the default name is the class name lower-cased; a name that is a
built-in method's must be given another). A plug-in is loaded and registered once per process;
defining it again (other options) replaces that plug-in's definition, never a built-in.

A plug-in's definition: `batch` (`mini` (default), `full` or `single`), `batch_size` (mini
only; default 4, like the built-ins) and hyperparameters (every constructor keyword without a
default must be given). On the command line: `--hp signsgd.lr=0.01,signsgd.batch=full`; in a
suite: a `[methods.signsgd]` table with `class = "path/to/signsgd.py:SignSGD"` (a relative
path is relative to the suite file's folder).

`--hp` values are parsed strictly: integers, floats (`1e-3`), `true`/`false`, tuples written
`0.9:0.999`, or JSON (`[0.9, 0.999]`, `"text"`, `null`); anything else is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optimizers
from bench.errors import ConfigError
from optimizers.loading import parse_spec

#: Keys of a plug-in's definition besides its hyperparameters.
DEFINITION_KEYS = ("class", "batch", "batch_size")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_value(text: str, where: str) -> Any:
    """One `--hp` value: int, float, true/false, `a:b` tuple of numbers, or JSON."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    if ":" in text and all(_FLOAT.fullmatch(p.strip()) for p in text.split(":")):
        return tuple(parse_value(p, where) for p in text.split(":"))
    if text[:1] in ("[", "{", '"') or text == "null":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: malformed JSON {text!r}: {exc.msg}") from None
        return tuple(value) if isinstance(value, list) else value
    raise ConfigError(
        f"{where}: cannot read {text!r}; write a number, true/false, a tuple like 0.9:0.999, "
        "or JSON"
    )


def _top_level_split(text: str) -> list[str]:
    """Split on commas outside brackets and quotes (a JSON value may hold commas)."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{":
            depth += 1
        elif not quoted and ch in "]}":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_hp(texts: Iterable[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """`--hp` flags -> (for every method, per method): `lr=0.1,adam.betas=0.9:0.99`.

    A key `method.name` is for one method (the method name is what precedes the last dot).
    """
    generic: dict[str, Any] = {}
    per_method: dict[str, dict[str, Any]] = {}
    for text in texts:
        for item in _top_level_split(text):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigError(f"--hp: expected key=value, got {item!r}")
            method, dot, name = key.rpartition(".")
            if dot and not method:
                raise ConfigError(f"--hp: empty method name in {key!r}")
            if not name.isidentifier():
                raise ConfigError(f"--hp: {name!r} is not a hyperparameter name")
            table = per_method.setdefault(method, {}) if dot else generic
            if name in table:
                raise ConfigError(f"--hp: {key} given twice")
            # A batch regime is a word (full, single, mini), checked when the plug-in loads.
            table[name] = value.strip() if name == "batch" else parse_value(value, f"--hp {key}")
    for key in ("batch", "batch_size", "class"):
        if key in generic:
            hint = "--batch-size" if key == "batch_size" else f"METHOD.{key}=..."
            raise ConfigError(f"--hp: {key} is per method or a flag; use {hint}")
    return generic, per_method


def plugin_name(entry: str) -> tuple[str | None, str]:
    """(given name or None, spec) of a plug-in entry `[name=]spec`."""
    name, sep, spec = entry.partition("=")
    if sep and ":" not in name and "/" not in name:
        return name.strip(), spec.strip()
    return None, entry


def default_name(spec: str) -> str:
    try:
        return parse_spec(spec).attr.rpartition(".")[2].lower()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def resolve(
    entries: Iterable[str],
    definitions: Mapping[str, Mapping[str, Any]] | None = None,
    base: Path | None = None,
) -> tuple[str, ...]:
    """Method names of a methods list, loading and registering its plug-ins.

    `definitions[name]`: a plug-in's `batch`, `batch_size` and hyperparameters (other keys of
    a built-in's table are its hyperparameters and are not read here). `base`: the folder
    relative file specs are read from (default: the working directory).
    """
    definitions = definitions or {}
    names: list[str] = []
    for entry in entries:
        entry = entry.strip()
        if entry == "all":
            names += [n for n in optimizers.names() if optimizers.get(n).rule != optimizers.PLUGIN]
        elif ":" in entry:
            given, spec = plugin_name(entry)
            name = given or default_name(spec)
            names.append(load_plugin(spec, name, given is not None, definitions.get(name), base))
        else:
            get(entry)
            names.append(entry)
    if not names:
        raise ConfigError("methods is empty; name methods or use 'all'")
    return tuple(names)


def load_plugin(
    spec: str,
    name: str,
    named: bool,
    definition: Mapping[str, Any] | None,
    base: Path | None = None,
) -> str:
    """Load, check and register one plug-in; returns its name."""
    options = dict(definition or {})
    options.pop("class", None)
    batch = options.pop("batch", "mini")
    batch_size = options.pop("batch_size", None)
    target, sep, attr = spec.rpartition(":")
    if base is not None and sep and (target.endswith(".py") or "/" in target):
        spec = f"{(base / target).resolve()}:{attr}"  # relative to the suite file's folder
    if not isinstance(batch, str) or batch not in optimizers.BATCH_REGIMES:
        raise ConfigError(
            f"{name}: batch must be one of {', '.join(optimizers.BATCH_REGIMES)}, got {batch!r}"
        )
    if batch != "mini" and batch_size is not None:
        raise ConfigError(f"{name}: batch_size applies to batch 'mini' only, not {batch!r}")
    if name in optimizers.BUILTIN_METHODS:
        how = f"--methods NAME={spec}" if not named else "another name"
        raise ConfigError(f"plug-in {spec!r}: {name!r} is a built-in method's name; use {how}")
    try:
        method = optimizers.method_from_path(
            spec,
            batch=batch,
            batch_size=batch_size,
            hparams=options,
            name=name,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    existing = optimizers.METHODS.get(name)
    if existing is not None and existing.rule != optimizers.PLUGIN:
        raise ConfigError(f"plug-in {spec!r}: {name!r} is already a registered method")
    optimizers.METHODS[name] = method  # a plug-in defined again replaces its old definition
    return name


def get(name: str) -> optimizers.Method:
    try:
        return optimizers.get(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
