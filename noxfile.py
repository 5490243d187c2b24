"""optbench sessions. Dependencies live in pyproject.toml; constraints.txt pins versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]
# Keep each session's virtualenv between calls (torch makes a fresh one cost about a minute);
# _install below reinstalls only when the requirements or the pins change.
# `nox --reuse-venv=no` rebuilds from scratch (e.g. to drop a package removed from the lists).
nox.options.reuse_venv = "yes"

PYPROJECT = nox.project.load_toml("pyproject.toml")
DEPS = PYPROJECT["project"]["dependencies"]
CONSTRAINTS = ("-c", "constraints.txt")
STAMP = "optbench-requirements.sha256"


def _install(session: nox.Session, *groups: str, project_deps: bool = True) -> None:
    """Install the project's dependencies (never the project itself) under the pins.

    Skipped when the virtualenv holds a stamp with the hash of exactly these requirements and
    constraints.txt, i.e. when it was built from them; a fresh or changed venv installs.
    """
    requirements = [
        *(DEPS if project_deps else []),
        *nox.project.dependency_groups(PYPROJECT, *groups),
    ]
    digest = hashlib.sha256(
        json.dumps(requirements).encode() + Path("constraints.txt").read_bytes()
    ).hexdigest()
    stamp = Path(session.virtualenv.location, STAMP)
    if stamp.is_file() and stamp.read_text() == digest:
        session.log(
            f"requirements unchanged ({digest[:12]}): reusing {session.virtualenv.location}"
        )
        return
    session.install(*CONSTRAINTS, *requirements)
    # Written by a command nox skips exactly when it skips installs (`--no-install` on a reused
    # venv), so the stamp never claims an install that did not happen; after pip succeeded only.
    session.run_install(
        "python",
        "-c",
        "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
        str(stamp),
        digest,
        silent=True,
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite, including scratch-vs-torch.optim parity."""
    _install(session, "test")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run the default benchmark suite and write results/latest/ (report.md, CSVs, plots)."""
    _install(session)
    session.run("python", "-m", "bench", "run", *session.posargs)


@nox.session(default=False)
def sweep(session: nox.Session) -> None:
    """Tune every method on the hold-out split and write results/sweep/ (report.md, CSVs)."""
    _install(session)
    session.run("python", "-m", "bench", "sweep", *session.posargs)


@nox.session(default=False)
def parity(session: nox.Session) -> None:
    """Write parity.csv: every method, scratch vs torch.optim, bitwise or max difference."""
    _install(session)
    session.run("python", "-m", "bench", "parity", *session.posargs)


@nox.session(default=False)
def perf(session: nox.Session) -> None:
    """Run the performance benchmarks and write results/perf/ (perf.csv, plot, JSON, section)."""
    _install(session, "test")
    json_path = f"{session.create_tmp()}/benchmark.json"
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/perf",
        "--benchmark-enable",
        f"--benchmark-json={json_path}",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff, then the import layers with import-linter."""
    _install(session, "lint", project_deps=False)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")
