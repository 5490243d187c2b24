"""optbench sessions. Dependencies live in pyproject.toml; constraints.txt pins versions."""

from __future__ import annotations

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
DEPS = PYPROJECT["project"]["dependencies"]
CONSTRAINTS = ("-c", "constraints.txt")


def _install(session: nox.Session, *groups: str) -> None:
    """Install the project's dependencies (never the project itself) under the pins."""
    session.install(*CONSTRAINTS, *DEPS, *nox.project.dependency_groups(PYPROJECT, *groups))


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
    """Lint and check formatting with ruff."""
    session.install(*CONSTRAINTS, *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
