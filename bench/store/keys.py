"""What identifies a stored run: a content hash of its spec and of everything that can change
its numbers.

A run is a pure function of its `RunSpec` given the code and the libraries, so the key hashes
the spec (every field, the `problem` label too: it is written into the rows), optbench's code
version (the source of `bench/run`, `bench/schema.py`, `optimizers` and `datasets`, never the
git commit, which changes with the docs), the torch and numpy versions, the CPU's vector
capability and the GPU's name, and the bytes of any file the spec names (a CSV dataset, a
plug-in optimizer). Change any of these and the run is computed afresh.

It also hashes the engine that computed the run when that is not `per-run`: the vectorised
engine's numbers equal the per-run engine's bitwise on most problems but not on all (see
`bench.run.engines.vectorised`), so a spec's stored result never depends on which engine a
command happened to use; a per-run run keeps the key it always had.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

import optimizers
from bench.run.engines import PER_RUN
from bench.run.spec import RunSpec
from bench.schema import freeze_hparams

ROOT = Path(__file__).resolve().parent.parent.parent
CODE_PATHS = ("bench/run", "bench/schema.py", "optimizers", "datasets")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the source files that compute a run's numbers (16 hex digits)."""
    h = hashlib.sha256()
    for top in CODE_PATHS:
        base = ROOT / top
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                h.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
                h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@lru_cache(maxsize=8)
def environment(device: str) -> dict[str, Any]:
    """The library versions and hardware traits a run's numbers may depend on."""
    env = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    """The spec as plain JSON values (tuples become lists); `spec_from_dict` inverts it."""
    out: dict[str, Any] = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name == "hparams":
            value = [[k, list(v) if isinstance(v, tuple) else v] for k, v in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def spec_from_dict(data: dict[str, Any]) -> RunSpec:
    data = dict(data)
    data["hparams"] = freeze_hparams(dict((k, v) for k, v in data["hparams"]))
    for name in ("targets", "features"):
        if data.get(name) is not None:
            data[name] = tuple(data[name])
    return RunSpec(**data)


def _input_files(spec: RunSpec) -> dict[str, str]:
    """sha256 of every file the spec reads: a CSV dataset, a plug-in optimizer's source."""
    out = {}
    dataset = Path(spec.dataset)
    if dataset.suffix == ".csv" and dataset.is_file():
        out["dataset"] = _sha256(dataset)
    plugin = getattr(optimizers.get(spec.method), "plugin", None)
    if plugin:
        out["plugin"] = plugin
        source = Path(plugin.rsplit(":", 1)[0])
        if source.suffix == ".py" and source.is_file():
            out["plugin_source"] = _sha256(source)
    return out


def run_key(spec: RunSpec, engine: str = PER_RUN) -> str:
    """The run's key in a store: 32 hex digits of sha256 over spec, code, libraries, inputs
    and the engine that computed it (`bench.run.engines.engine_of`) unless per-run."""
    ident: dict[str, Any] = {
        "spec": spec_to_dict(spec),
        "code": code_version(),
        "env": environment(spec.device),
        "inputs": _input_files(spec),
    }
    if engine != PER_RUN:
        ident["engine"] = engine
    text = json.dumps(ident, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
