"""Command line: `python -m bench {run,sweep,report,list,parity}`.

Bad input of any kind ends with one line on stderr, `error: ...`, exit code 2, and no files
written; a divergent run is a result, not an error. Every finished run is persisted in the
output folder's result store (`store.sqlite`) as it arrives; Ctrl-C or SIGTERM stop with a line
saying how many runs are stored (exit 130 / 143), and the same command again finishes the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import math
import os
import shlex
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

import bench
import datasets
import optimizers
from bench.cli.args import _float, _int, _refuse_empty, build_parser, load_suite, parse_int_list
from bench.errors import ConfigError
from bench.output import history, run_report, sweep_report
from bench.output.files import OutputFolder, read_marker, write
from bench.perf import results as perf_results
from bench.run import cost, engines, envinfo, executors, tasks
from bench.run.config import (
    DEFAULT_SUITE,
    MAX_PARITY_STEPS,
    MAX_RUNS,
    RULES,
    Suite,
    check_seeds,
    suite_from_toml,
)
from bench.run.data import SOURCES, check_dtype_ranges
from bench.run.device import torch_threads
from bench.run.models import MODELS
from bench.run.runner import RunResult
from bench.run.spec import RunSpec
from bench.schema import Status
from bench.store import FILENAME as STORE_FILE
from bench.store import CachedRuns, Store
from bench.sweep import SweepConfig, grid_specs, run_sweep
from bench.sweep.protocol import from_store, selection_records
from optimizers.parity import parity_table

DEFAULT_TIMING_BUDGET = 20.0  # seconds for the cost measurement of a command's runs
# Sweeps compute their thousands of runs vectorised (the same numbers: bitwise on most problems,
# within 1e-5 elsewhere, with identical selections on the default sweep); `run` keeps per-run.
DEFAULT_ENGINES = {"run": "per-run", "sweep": "vectorised"}
PROJECT = Path(bench.__file__).resolve().parent.parent  # the checkout, not the working dir
PERF_CSV = PROJECT / "results" / "perf" / "perf.csv"
MAX_DECADES = 300  # lr x 10^(+-decades) must stay a finite, non-zero float64
EXIT_CODES = {"Ctrl-C": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells do


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds like Ctrl-C (stores roll back)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _executor(args: argparse.Namespace, suite: Suite) -> executors.Executor:
    flags = {
        "executor": args.executor,
        "workers": _int("--workers")(args.workers) if args.workers else None,
        "scheduler": args.scheduler,
        "threads": _int("--threads")(args.threads) if args.threads else None,
    }
    file = dict(suite.execution)
    timeout = _float("--timeout")(args.timeout) if args.timeout else file.pop("timeout", None)
    file.pop("timeout", None)
    engine = args.engine or file.pop("engine", None) or DEFAULT_ENGINES[args.command]
    file.pop("engine", None)
    engines.get(engine)  # an unknown engine: one line, before anything is written
    args.engine_name = engine
    if timeout is not None:
        RULES["timeout"].check("--timeout" if args.timeout else "timeout", timeout)
    args.timeout_s = timeout  # per run, enforced where the runs execute (CachedRuns)
    return executors.build(file, flags)


def _max_runs(args: argparse.Namespace) -> int:
    if args.max_runs is None:
        return MAX_RUNS
    n = _int("--max-runs")(args.max_runs)
    if n < 1:
        raise ConfigError(f"--max-runs must be >= 1, got {n}")
    return n


def _check_count(n: int, what: str, args: argparse.Namespace) -> None:
    limit = _max_runs(args)
    if n > limit:
        raise ConfigError(
            f"{what}: {n} runs, more than the limit of {limit}; pass --max-runs {n} to run them"
        )


def _performance(out: Path) -> str | None:
    """The latest `nox -s perf` results of this checkout (never re-measured here); a
    malformed perf.csv is skipped with a warning."""
    try:
        return perf_results.markdown_section(PERF_CSV, relative_to=out)
    except Exception as exc:  # any malformed file: the report goes on without the section
        _say(f"warning: ignoring {PERF_CSV}: {type(exc).__name__}: {exc}".splitlines()[0])
        return None


# Flags that change what a suite runs (the others say how, or where the output goes).
SELECTING = ("datasets", "problems", "targets", "features", "task", "model", "methods", "hp",
             "impl", "epochs", "lr", "momentum", "weight_decay", "batch_size", "devices",
             "dtype", "seeds", "holdout", "standardize")  # fmt: skip


def _suite_label(args: argparse.Namespace, suite: Suite) -> str:
    """'default suite', or 'default suite, changed by --datasets, --epochs' when flags changed
    what it runs (then it is not the default suite any more)."""
    changed = [f"--{d.replace('_', '-')}" for d in SELECTING if getattr(args, d, None) is not None]
    return f"{suite.name} suite" + (f", changed by {', '.join(changed)}" if changed else "")


def _command(args: argparse.Namespace) -> str:
    return shlex.join(["python", "-m", "bench", *args.argv])


@contextlib.contextmanager
def _output(
    args: argparse.Namespace,
    out: Path | None,
    kind: str,
    executor: executors.Executor,
    command: str | None = None,
    label: str = "",
) -> Iterator[tuple[OutputFolder, CachedRuns]]:
    """The output folder (checked, locked, marked) and its result store, both up front.
    Without `out`: a new folder under results/ that keeps history (`bench.output.history`),
    its runs shared through results/store.sqlite, linked as results/latest (or sweep) once
    complete."""
    command = command or _command(args)
    with contextlib.ExitStack() as stack:
        shared = None
        if out is None:
            shared = stack.enter_context(Store(history.shared_store()))
            label = f"{kind}-{history.slug(label)}"
            folder = stack.enter_context(history.new_output(history.RESULTS, label, kind, command))
        else:
            Store.verify(out / STORE_FILE)  # a damaged or foreign store: before the folder
            folder = stack.enter_context(OutputFolder.open(out, kind, command))
        folder.own(STORE_FILE, f"{STORE_FILE}-journal")
        store = stack.enter_context(Store(folder.path / STORE_FILE))
        cache = CachedRuns(
            store, executor, fresh=args.fresh, say=_say, shared=shared,
            timeout=getattr(args, "timeout_s", None),
            engine=getattr(args, "engine_name", engines.PER_RUN),
        )  # fmt: skip
        args.cache = cache  # for the interruption message
        yield folder, cache
    if out is None:
        _say(history.point(history.RESULTS, kind, folder.path))


def cmd_run(args: argparse.Namespace) -> int:
    suite = load_suite(args)
    SweepConfig.from_mapping(suite.sweep)  # a malformed [sweep] table is an error here too
    specs = suite.expand()
    _check_count(len(specs), "the suite", args)
    check_dtype_ranges(specs)
    executor = _executor(args, suite)
    _timing_budget(args)  # a bad value: an error before anything is written
    out = Path(args.out) if args.out is not None else None
    env = envinfo.collect(args.argv)
    with _output(args, out, "run", executor, label=suite.name) as (folder, cache):
        store = cache.store
        store.set_manifest(
            [(cache.key(s), "", "") for s in specs],
            kind="run",
            command=folder.command,
            parity=not args.no_parity,
            execution=executor.info(),  # how the runs shared the machine, for `report DIR`
        )
        where = ", ".join(suite.devices)
        _say(f"optbench: {len(specs)} runs ({_suite_label(args, suite)}) on {where}")
        t0 = time.perf_counter()
        with executor:  # closed before the cost measurement: nothing else on the cores
            results = cache.results(specs, "runs")
            env.update(executor.info())  # executor, workers, threads: how runs shared the machine
        t1 = time.perf_counter()
        costs = _measure_costs(args, specs, results, executor, cache)
        t2 = time.perf_counter()
        written = _write_run(folder, results, env, not args.no_parity, costs)
        t3 = time.perf_counter()
    diverged = sum(r.summary["status"] == Status.DIVERGED for r in results)
    _say(
        f"optbench: {len(results)} runs ({diverged} diverged; {cache.reused} reused) in "
        f"{t1 - t0:.0f} s, cost per epoch {t2 - t1:.0f} s, report {t3 - t2:.0f} s; wrote {written}"
    )
    return 0


def _timing_budget(args: argparse.Namespace) -> float:
    """`--timing-budget` seconds (default DEFAULT_TIMING_BUDGET; 0: no cost measurement)."""
    budget = _float("--timing-budget")(args.timing_budget) if args.timing_budget else None
    budget = DEFAULT_TIMING_BUDGET if budget is None else budget
    if not (math.isfinite(budget) and budget >= 0):
        raise ConfigError(f"--timing-budget must be a number of seconds >= 0, got {budget}")
    return budget


def _measure_costs(
    args: argparse.Namespace,
    specs: Sequence[RunSpec],
    results: Sequence[RunResult],
    executor: executors.Executor,
    cache: CachedRuns,
) -> pd.DataFrame:
    """Cost per epoch of the runs that finished (`bench.run.cost`), measured here, serially,
    interleaved, within `--timing-budget` seconds (0: not measured); stored with the output."""
    budget = _timing_budget(args)
    if budget == 0:
        cache.store.set_costs([], measured=False)
        return pd.DataFrame(columns=cost.COLUMNS)
    ok = cost.measurable([r.summary for r in results])
    todo = [s for s in dict.fromkeys(specs) if s.run_id in ok]
    threads = int(executor.info().get("torch_threads") or 1)
    load = os.getloadavg()[0]
    with torch_threads(threads):
        rows = cost.measure(todo, cost.CostConfig(budget_s=budget), say=_say)
    keys = {s.run_id: cache.key(s) for s in todo}
    rows = [{"key": keys[r["run_id"]], **r} for r in rows]
    cache.store.set_costs(
        rows,
        measured=True,
        budget_s=budget,
        torch_threads=threads,
        cores=os.cpu_count(),
        load_before=load,
        load_after=os.getloadavg()[0],
        utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return pd.DataFrame(rows, columns=["key", *cost.COLUMNS])


def _write_run(
    folder: OutputFolder, results: list, env: dict, parity: bool, costs: pd.DataFrame
) -> Path:
    table = _parity_frame(steps=100) if parity else None
    performance = _performance(folder.path)
    with folder.staged() as stage:
        run_report.write_all(stage, results, env, table, performance=performance, costs=costs)
    return folder.path / "report.md"


def _sweep_config(args: argparse.Namespace, suite: Suite) -> SweepConfig:
    config = SweepConfig.from_mapping(suite.sweep)
    overrides: dict = {}
    if args.rerun_seeds is not None:
        overrides["seeds"] = parse_int_list(args.rerun_seeds, "--seeds")
        check_seeds(overrides["seeds"], "--seeds")
    if args.select_seeds is not None:
        overrides["select_seeds"] = parse_int_list(args.select_seeds, "--select-seeds")
        check_seeds(overrides["select_seeds"], "--select-seeds")
    if args.decades is not None:
        overrides["decades"] = _float("--decades")(args.decades)
    if args.points_per_decade is not None:
        overrides["points_per_decade"] = _int("--points-per-decade")(args.points_per_decade)
    if args.no_claims:
        overrides["claims"] = False
    config = replace(config, **overrides)
    if config.decades > MAX_DECADES:
        raise ConfigError(
            f"sweep decades must be <= {MAX_DECADES} (10^{MAX_DECADES} is about the float range)"
            f", got {config.decades}"
        )
    points = 2 * config.decades * config.points_per_decade + 1  # finite: checked by SweepConfig
    _check_count(int(min(points, 1e18)), "the sweep's lr grid (per method and seed)", args)
    return config


def cmd_sweep(args: argparse.Namespace) -> int:
    args.rerun_seeds, args.seeds = args.seeds, None  # --seeds: the reruns' seeds, not the suite's
    suite = load_suite(args)
    config = _sweep_config(args, suite)
    grid, skipped = grid_specs(suite, config)
    if not grid:  # before the output folder is touched (run_sweep says the same)
        raise ConfigError("nothing to sweep: no problem has a hold-out split (set holdout > 0)")
    check_dtype_ranges(grid)
    reruns = 2 * len({(s.problem, s.method) for s in grid}) * len(config.seeds)
    _check_count(len(grid) + reruns, "the sweep (grid and reruns)", args)
    executor = _executor(args, suite)
    _timing_budget(args)  # a bad value: an error before anything is written
    out = Path(args.out) if args.out is not None else None
    env = envinfo.collect(args.argv)
    with _output(args, out, "sweep", executor, label=suite.name) as (folder, cache):
        _say(
            f"optbench sweep: {len(grid)} grid runs, then tuned and default reruns over "
            f"{len(config.seeds)} seeds"
            + (f"; skipped (no hold-out): {', '.join(skipped)}" if skipped else "")
            + f" ({cache.engine} engine)"
        )
        t0 = time.perf_counter()
        with executor:  # closed before the cost measurement: nothing else on the cores
            result = run_sweep(suite, config, runs=cache)
            env.update(executor.info())
        # Cost per epoch of what the report times: the reruns and the claims (not the grid).
        timed = [spec for spec, phase, _ in result.entries if phase != "grid"]
        results = cache.store.load_keys([cache.key(s) for s in timed], timed)
        costs = _measure_costs(args, timed, results, executor, cache)
        cache.store.set_manifest(
            [(cache.key(spec), phase, label) for spec, phase, label in result.entries],
            kind="sweep",
            command=folder.command,
            config=dataclasses.asdict(config),
            skipped=result.skipped,
            selection=selection_records(result.selection),
            execution=executor.info(),
        )
        with folder.staged() as stage:
            sweep_report.write_all(stage, result, config, env, costs)
    _say(
        f"optbench sweep: {len(result.runs)} runs ({cache.reused} reused) in "
        f"{time.perf_counter() - t0:.0f} s; wrote {folder.path / 'report.md'}"
    )
    return 0


# What `run` and `sweep` record in a store's manifest and meta, checked before `report` reads it.
_PHASES = {"run": {""}, "sweep": {"grid", "tuned", "default", "claims"}}
_SELECTION_KEYS = {"problem", "method", "hparams", "score", "at_edge"}


def _check_recorded(meta: dict, manifest: list[tuple[str, str, str]]) -> None:
    """ValueError naming what is not as `run` or `sweep` wrote it (a hand-edited store)."""
    phases = {phase for _, phase, _ in manifest}
    if not phases <= _PHASES[meta["kind"]]:
        raise ValueError(f"manifest phases {sorted(phases - _PHASES[meta['kind']])}")
    if not isinstance(meta.get("execution", {}), dict):
        raise ValueError("meta 'execution' is not a table")
    selection = meta.get("selection") or []
    if not all(isinstance(r, dict) and r.keys() >= _SELECTION_KEYS for r in selection):
        raise ValueError("meta 'selection' is not the sweep's selection table")


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild a folder's CSVs, plots and report.md from its store (no run is computed)."""
    folder = Path(args.dir)
    if not folder.is_dir():
        raise ConfigError(f"{args.dir} is not a folder")
    marker = read_marker(folder)
    if marker is None or not (folder / STORE_FILE).is_file():
        raise ConfigError(f"{args.dir} is not an optbench output folder with a {STORE_FILE}")
    args.fresh = False
    with _output(
        args, folder, marker.get("kind", "run"), executors.get("serial"), marker.get("command")
    ) as (out, cache):
        try:
            meta = cache.store.meta()
            if meta.get("kind") not in ("run", "sweep"):
                raise ConfigError(f"{args.dir}/{STORE_FILE} records no run or sweep to report")
            command = str(meta.get("command", ""))
            _check_recorded(meta, cache.store.manifest())
            # The machine of this rebuild, but how the stored runs were executed (and timed).
            env = {**envinfo.collect(args.argv), **meta.get("execution", {}), "command": command}
            if meta["kind"] == "run":
                results = cache.store.load_keys([key for key, _, _ in cache.store.manifest()])
                costs = pd.DataFrame(cache.store.costs(), columns=["key", *cost.COLUMNS])
            else:
                config = SweepConfig.from_mapping(meta.get("config", {}))
                result = from_store(cache.store, list(meta.get("skipped", [])))
                costs = pd.DataFrame(cache.store.costs(), columns=["key", *cost.COLUMNS])
        except KeyError:
            raise ConfigError(
                f"{args.dir}/{STORE_FILE} lacks runs of its last command; run it again to "
                f"finish: {command}"
            ) from None
        except ConfigError:
            raise
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:  # edited by hand?
            what = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ConfigError(f"{args.dir}/{STORE_FILE} is damaged ({what})") from None
        if meta["kind"] == "run":
            written = _write_run(out, results, env, bool(meta.get("parity", True)), costs)
        else:
            with out.staged() as stage:
                sweep_report.write_all(stage, result, config, env, costs)
            written = out.path / "report.md"
    _say(f"optbench report: rebuilt {written} from {folder / STORE_FILE}")
    return 0


def _parity_frame(steps: int) -> pd.DataFrame:
    return pd.DataFrame(parity_table(steps=steps))


def cmd_parity(args: argparse.Namespace) -> int:
    steps = _int("--steps")(args.steps)
    if not 1 <= steps <= MAX_PARITY_STEPS:
        raise ConfigError(f"--steps must be in [1, {MAX_PARITY_STEPS}], got {steps}")
    with OutputFolder.open(args.out, "parity", _command(args)) as folder:
        frame = _parity_frame(steps)
        with folder.staged() as stage:
            write(frame, stage / "parity.csv")
    bitwise = int(frame["bitwise"].sum())
    _say(
        f"parity: {bitwise} of {len(frame)} cases bitwise equal; wrote {folder.path / 'parity.csv'}"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    suite = suite_from_toml(Path(args.config) if args.config is not None else DEFAULT_SUITE)
    print("methods (python -m bench run --methods NAME,...):")
    for name in optimizers.names():
        m = optimizers.get(name)
        batch = {"full": "full batch", "single": "batch 1"}.get(m.batch, f"batch {m.batch_size}")
        hp = ", ".join(f"{k}={v}" for k, v in m.hparams.items()) or "library defaults"
        print(f"  {name:<10} {m.rule:<6} {batch:<11} {hp:<34} {m.summary}")
    print(f"implementations (--impl): {', '.join(optimizers.IMPLS)}; plug-ins: plugin")
    print("  plug-in methods: --methods path/to/file.py:Class, module:Class, torch.optim:Class")
    print("datasets (--datasets NAME[:opt=val...] or a .csv path with --targets):")
    for name in datasets.names():
        print(f"  {name:<10} {datasets.describe(name)}")
    for name, source in SOURCES.items():
        print(f"  {name:<10} {source.summary}. Task: {source.task}.")
    print("tasks (from the dataset; --task classification for a CSV file):")
    for name, task in tasks.TASKS.items():
        print(f"  {name:<10} {task.summary}")
    print("models (--model; or a factory path/to/file.py:make_model(d, k) -> nn.Module):")
    for name, model in MODELS.items():
        print(f"  {name:<10} {model.summary}")
    print(f"problems of the {suite.name} suite (--problems NAME,...):")
    for p in suite.problems:
        methods = ", ".join(p.methods or suite.methods)
        print(f"  {p.label:<16} dataset {p.dataset}, model {p.model}; methods: {methods}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "list": cmd_list,
    "parity": cmd_parity,
    "sweep": cmd_sweep,
    "report": cmd_report,
}


def _interrupted(args: argparse.Namespace, name: str) -> int:
    cache: CachedRuns | None = getattr(args, "cache", None)
    if cache is None or cache.source.path == ":memory:":
        _say(f"interrupted ({name}); no results written")
    else:
        stored, total, desc = cache.in_store()
        _say(
            f"interrupted ({name}): {stored} of {total} {desc} are in {cache.source.path}; "
            "run the same command again to finish"
        )
    return EXIT_CODES[name]


_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        _refuse_empty(args)
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RecursionError:  # e.g. --hp lr=[[[...]]] 3,000 levels deep: json.loads gives up
        print("error: an input is nested too deeply to read", file=sys.stderr)
        return 2
    except MemoryError as exc:  # e.g. synthetic:n=1e12: the request cannot fit in memory
        print(f"error: out of memory: {str(exc) or 'the request does not fit'}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.OperationalError) as exc:
        # The disk filled up or went read-only mid-way: say so in one line; finished runs
        # are in the store (`python -m bench report DIR` rebuilds the outputs later).
        if isinstance(exc, OSError) and exc.errno not in _STORAGE_ERRORS:
            raise
        print(f"error: cannot write results: {exc}", file=sys.stderr)
        return 1
    except sqlite3.DatabaseError as exc:  # corrupt pages found mid-way (the header was fine)
        print(f"error: a result store is damaged: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        return _interrupted(args, "SIGTERM")
    except KeyboardInterrupt:
        return _interrupted(args, "Ctrl-C")
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
