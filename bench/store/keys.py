"""What identifies a stored run: a content hash of its spec and of everything that can change
its numbers.

A run is a pure function of its `RunSpec` given the code and the libraries, so the key hashes
the spec (every field, the `problem` label too: it is written into the rows), optbench's code
version (the source of `bench/run`, `bench/schema.py`, `optimizers` and `datasets`, never the
git commit, which changes with the docs), the torch and numpy versions, the CPU's vector
capability and the GPU's name, and the bytes of any file the spec names (a CSV dataset, a
plug-in optimizer, a model factory; for an installed module, its source and its distribution's
version). Change any of these and the run is computed afresh.

It also hashes the engine that computed the run when that is not `per-run`: the vectorised
engine's numbers equal the per-run engine's bitwise on most problems but not on all (see
`bench.run.engines.vectorised`), so a spec's stored result never depends on which engine a
command happened to use; a per-run run keeps the key it always had.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

import datasets
from bench.run import schedules
from bench.run.data import SOURCES
from bench.run.engines import PER_RUN
from bench.run.models import is_plugin
from bench.run.spec import RunSpec
from bench.schema import freeze_hparams

ROOT = Path(__file__).resolve().parent.parent.parent
CODE_PATHS = ("bench/run", "bench/schema.py", "optimizers", "datasets")
_HPARAMS = ("hparams", "inner_hparams")


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
        if f.name in _HPARAMS:
            value = [[k, list(v) if isinstance(v, tuple) else v] for k, v in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def spec_from_dict(data: dict[str, Any]) -> RunSpec:
    data = dict(data)
    for name in _HPARAMS:
        if name in data:
            data[name] = freeze_hparams(dict((k, v) for k, v in data[name]))
    for name in ("targets", "features"):
        if data.get(name) is not None:
            data[name] = tuple(data[name])
    return RunSpec(**data)


def _file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read once per (inode, size, mtime) in a process."""
    st = path.stat()
    return _digest_of(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _digest_of(path: str, ino: int, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


@lru_cache(maxsize=1)
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> the installed distributions providing it (read once: it scans
    every installed package's metadata)."""
    return importlib.metadata.packages_distributions()


def _code_identity(spec: str) -> dict[str, str]:
    """What stands behind an import path: a file's bytes, or a module's source bytes and the
    version of the installed distribution that provides it ("missing" if neither is found,
    so a run whose code cannot be verified is never reused)."""
    target, _, _ = spec.rpartition(":")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        return {"file": _file_digest(path) if path.is_file() else "missing"}
    top = target.split(".")[0]
    out = {"module": target}
    with contextlib.suppress(Exception):  # a module that cannot be found: "missing" below
        origin = importlib.util.find_spec(target)
        if origin is not None and origin.origin and Path(origin.origin).is_file():
            out["source"] = _file_digest(Path(origin.origin))
    for dist in _distributions().get(top, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[f"version:{dist}"] = importlib.metadata.version(dist)
    if len(out) == 1:
        out["source"] = "missing"
    return out


def _input_files(spec: RunSpec) -> dict[str, Any]:
    """Every input outside optbench's code that can change the run's numbers: the dataset's
    file (whatever its name), and the code behind each import path the spec names (plug-in
    optimizer, a wrapper's inner method, model factory, scheduler, a class given as a
    hyperparameter)."""
    out: dict[str, Any] = {}
    name = spec.dataset.partition(":")[0]
    if name not in datasets.REGISTRY and name not in SOURCES:
        path = Path(spec.dataset)
        out["dataset"] = _file_digest(path) if path.is_file() else "missing"
    paths = {
        "optimizer": spec.optimizer,
        "inner": spec.inner if ":" in spec.inner else "",
        "model": spec.model if is_plugin(spec.model) else "",
        "schedule": schedules.parse(spec.schedule).target or "",
    }
    paths.update({f"hparam:{k}": v for k, v in spec.hparams + spec.inner_hparams
                  if isinstance(v, str) and ":" in v})  # fmt: skip
    for role, path in paths.items():
        if path:
            out[role] = {"path": path, **_code_identity(path)}
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
