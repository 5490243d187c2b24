"""optbench sessions. Dependencies live in pyproject.toml; constraints.txt pins versions.

One virtualenv, `.nox/optbench`, serves every session that runs optbench (tests, bench, sweep,
perf, parity): the project's dependencies and its test group (pytest, and the third-party
optimizers the tests and the README's examples use). It is built the first time a session needs
it and reused while pyproject.toml's lists and constraints.txt are unchanged (a stamp holds
their hash). `lint` has its own small one, `.nox/lint-env`. Delete a folder to rebuild it.

Installing: uv when it can be had (installed into the new virtualenv itself: nothing outside it
changes), pip otherwise or if uv fails (offline, say). uv does not read pip's configuration, so
pip's local wheel folder (`PIP_FIND_LINKS`, where this machine keeps torch's CPU wheel) is
passed on to it. uv compiles the installed modules' bytecode, as pip does by default: where
PYTHONDONTWRITEBYTECODE is set no process would write it, and every `python -m bench` would
compile torch, pandas and matplotlib afresh (measured: 8.6 s to import optbench's CLI without
the .pyc files, 3.0 s with them). Measured on a 2-core machine: the shared environment in 14-30 s
with uv before compiling (compiling adds about 35 s), about 3 minutes with pip.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.sessions = ["tests", "lint"]

# nox looks for a uv binary of its own and says "uv binary not found." on every call when there
# is none; these sessions do not use nox's virtualenvs (they install uv where they need it).
logging.getLogger("nox").addFilter(lambda record: record.getMessage() != "uv binary not found.")

PYPROJECT = nox.project.load_toml("pyproject.toml")
DEPS = PYPROJECT["project"]["dependencies"]
CONSTRAINTS = Path("constraints.txt")
STAMP = "optbench-requirements.sha256"
SHARED = Path(".nox/optbench")


def _env(session: nox.Session, where: Path, *groups: str, project_deps: bool = True) -> str:
    """The virtualenv at `where` with the project's dependencies (and `groups`) under the pins,
    built or updated only when its stamp does not match; returns its python."""
    requirements = [
        *(DEPS if project_deps else []),
        *nox.project.dependency_groups(PYPROJECT, *groups),
    ]
    digest = hashlib.sha256(json.dumps(requirements).encode() + CONSTRAINTS.read_bytes())
    python = str(where / "bin" / "python")
    stamp = where / STAMP
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        session.log(f"requirements unchanged: reusing {where}")
        return python
    if not Path(python).exists():
        session.run(sys.executable, "-m", "virtualenv", "-q", str(where), external=True)
    pins = ["-c", str(CONSTRAINTS), *requirements]
    try:
        session.run(python, "-m", "pip", "install", "-q", "uv", external=True, silent=True)
        env = {"UV_FIND_LINKS": os.environ.get("PIP_FIND_LINKS", "")}
        session.run(
            python, "-m", "uv", "pip", "install", "-q", "--compile-bytecode", "--python", python,
            *pins,
            external=True, env={k: v for k, v in env.items() if v},
        )  # fmt: skip
    except nox.command.CommandFailed:
        session.log("uv could not install the requirements: installing them with pip")
        session.run(python, "-m", "pip", "install", "-q", *pins, external=True)
    stamp.write_text(digest.hexdigest())
    return python


def _optbench(session: nox.Session) -> str:
    return _env(session, SHARED, "test")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the test suite, including scratch-vs-torch.optim parity."""
    session.run(_optbench(session), "-m", "pytest", *session.posargs, external=True)


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Run the default benchmark suite and write results/latest/ (report.md, CSVs, plots)."""
    session.run(_optbench(session), "-m", "bench", "run", *session.posargs, external=True)


@nox.session(venv_backend="none", default=False)
def sweep(session: nox.Session) -> None:
    """Tune every method on the hold-out split and write results/sweep/ (report.md, CSVs)."""
    session.run(_optbench(session), "-m", "bench", "sweep", *session.posargs, external=True)


@nox.session(venv_backend="none", default=False)
def parity(session: nox.Session) -> None:
    """Write parity.csv: every method, scratch vs torch.optim, bitwise or max difference."""
    session.run(_optbench(session), "-m", "bench", "parity", *session.posargs, external=True)


@nox.session(venv_backend="none", default=False)
def perf(session: nox.Session) -> None:
    """Run the performance benchmarks and write results/perf/ (perf.csv, plot, JSON, section)."""
    python = _optbench(session)
    json_path = Path(session.create_tmp()) / "benchmark.json"
    session.run(
        python, "-m", "pytest", "tests/perf", "--benchmark-enable",
        f"--benchmark-json={json_path}", *session.posargs, external=True,
    )  # fmt: skip


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff, then the import layers with import-linter."""
    python = _env(session, Path(".nox/lint-env"), "lint", project_deps=False)
    bin_ = Path(python).parent
    session.run(str(bin_ / "ruff"), "check", ".", external=True)
    session.run(str(bin_ / "ruff"), "format", "--check", ".", external=True)
    session.run(str(bin_ / "lint-imports"), external=True)
