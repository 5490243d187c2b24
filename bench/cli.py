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
import shlex
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

import bench
import datasets
import optimizers
from bench.errors import ConfigError
from bench.output import run_report, sweep_report
from bench.output.files import OutputFolder, read_marker, write
from bench.perf import results as perf_results
from bench.run import envinfo, executors, tasks
from bench.run import methods as method_lists
from bench.run.config import DEFAULT_SUITE, Overrides, Suite, apply_overrides, check_numbers
from bench.run.data import SOURCES
from bench.run.device import resolve_devices
from bench.run.models import MODELS
from bench.run.suite_file import (
    MAX_EPOCHS,
    MAX_PARITY_STEPS,
    MAX_RUNS,
    check_seeds,
    parse_csv_list,
    parse_impls,
    parse_int_list,
    parse_methods,
    resolve_model,
    suite_from_toml,
)
from bench.schema import Status
from bench.store import FILENAME as STORE_FILE
from bench.store import CachedRuns, Store, run_key
from bench.sweep import SweepConfig, grid_specs, run_sweep
from bench.sweep.protocol import from_store, selection_records
from optimizers.parity import parity_table

DEFAULT_OUT = Path("results/latest")
PROJECT = Path(bench.__file__).resolve().parent.parent  # the checkout, not the working dir
PERF_CSV = PROJECT / "results" / "perf" / "perf.csv"
MAX_DECADES = 300  # lr x 10^(+-decades) must stay a finite, non-zero float64
EXIT_CODES = {"Ctrl-C": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells do


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds like Ctrl-C (stores roll back)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other input error (argparse would print the usage block too).
        sub = self.prog.split()[-1]
        where = "python -m bench" + ("" if sub == "bench" else f" {sub}")
        self.exit(2, f"error: {message} (see: {where} --help)\n")


def _float(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{flag} must be a number, got {text!r}") from None

    return parse


def _int(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{flag} must be an integer, got {text!r}") from None

    return parse


def _add_suite_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="suite file (TOML); default: the default suite")
    p.add_argument(
        "--datasets",
        help="comma list of dataset names, name:opt=val specs or .csv paths; each is that "
        "dataset with --model (default linear)",
    )
    p.add_argument("--problems", help="comma list of the suite's problems by name (see list)")
    p.add_argument("--targets", help="target columns of a CSV dataset (comma list)")
    p.add_argument("--features", help="feature columns of a CSV dataset (default: other numeric)")
    p.add_argument(
        "--task", help="with --datasets: read CSV labels as regression (default) or classification"
    )
    p.add_argument(
        "--model", help="linear, mlp, mlp:hidden=N, or a factory path/to/file.py:make_model"
    )
    p.add_argument(
        "--methods",
        help="comma list of methods, or 'all'; an entry with ':' is an optimizer class, e.g. "
        "path/to/signsgd.py:SignSGD, torch.optim:RMSprop, or name=spec",
    )
    p.add_argument(
        "--hp",
        action="append",
        help="hyperparameters: lr=0.01 (every method), signsgd.lr=0.01, adam.betas=0.9:0.99, "
        "signsgd.batch=full|single|mini, signsgd.batch_size=8 (repeatable)",
    )
    p.add_argument(
        "--impl",
        help="comma list of scratch, torch, torch-foreach, torch-fused (where a method has "
        "it; a plug-in always runs as itself)",
    )
    p.add_argument("--epochs", type=str)
    p.add_argument("--lr", type=str, help="learning rate for every method")
    p.add_argument("--momentum", type=str, help="momentum of the methods that have momentum")
    p.add_argument("--weight-decay", type=str, help="weight decay of the methods that have it")
    p.add_argument("--batch-size", type=str, help="batch size of the minibatch methods")
    p.add_argument("--devices", help="auto (cpu + cuda if present), cpu, cuda, or a comma list")
    p.add_argument("--dtype", help="float32 (default) or float64")
    p.add_argument("--seeds", help="comma list of seeds, e.g. 0,1,2")
    p.add_argument("--holdout", type=str, help="hold-out fraction in [0, 1); 0 = none")
    p.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="standardise features with training-set statistics",
    )
    p.add_argument("--executor", help=f"how runs are executed: {', '.join(executors.EXECUTORS)}")
    p.add_argument("--workers", help="dask: local worker processes (default: the machine's cores)")
    p.add_argument("--scheduler", help="dask: address of an existing scheduler, tcp://host:port")
    p.add_argument("--threads", help="torch intra-op threads per run (default 1)")
    p.add_argument("--out", help="output folder (new, empty, or an earlier optbench output)")
    p.add_argument(
        "--fresh", action="store_true", help="recompute every run instead of reusing the store"
    )
    p.add_argument("--max-runs", help=f"refuse more runs than this (default {MAX_RUNS})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a suite and write CSVs, plots and report.md")
    _add_suite_options(run)
    run.add_argument("--no-parity", action="store_true", help="skip the step-parity table")
    sweep = sub.add_parser("sweep", help="tune each method on the hold-out split, rerun over seeds")
    _add_suite_options(sweep)
    sweep.add_argument("--select-seeds", help="seeds of the grid (selection), e.g. 0")
    sweep.add_argument("--decades", help="grid half-width in decades around the suite's lr")
    sweep.add_argument("--points-per-decade", help="grid density")
    sweep.add_argument("--no-claims", action="store_true", help="skip the notebooks' claims")
    listing = sub.add_parser("list", help="list methods, datasets, models and the suite's problems")
    listing.add_argument("--config", help="suite file whose problems to list")
    parity = sub.add_parser("parity", help="write parity.csv (scratch vs torch.optim)")
    parity.add_argument("--out", default="results/parity")
    parity.add_argument("--steps", type=str, default="100", help=f"<= {MAX_PARITY_STEPS}")
    report = sub.add_parser("report", help="rebuild a run or sweep folder's outputs from its store")
    report.add_argument("dir", help="an output folder of `run` or `sweep`")
    return parser


def _given(value: str | None) -> bool:
    return value is not None  # empty values were refused in main(), never silently ignored


def overrides_from_args(args: argparse.Namespace) -> Overrides:
    generic, per_method = method_lists.parse_hp(args.hp or [])
    g = _given
    methods = parse_methods(args.methods, per_method) if g(args.methods) else None
    entries = parse_csv_list(args.methods, "--methods") if g(args.methods) else ()
    loaded_here = {
        given or method_lists.default_name(spec)
        for given, spec in (method_lists.plugin_name(e) for e in entries if ":" in e)
    }
    for name, table in per_method.items():
        method = method_lists.get(name)
        bad = sorted(set(table) - {*method.hparam_names, "batch_size", "batch"})
        if bad:
            raise ConfigError(
                f"--hp: method {name!r} does not take {', '.join(bad)}; it takes "
                f"{', '.join(method.hparam_names)}, batch_size"
            )
        if "batch" in table and name not in loaded_here:
            raise ConfigError(
                f"--hp: {name}.batch: only a plug-in given in --methods takes a batch regime "
                "here (a suite's plug-in: its [methods] table)"
            )
    per_method = {m: {k: v for k, v in t.items() if k != "batch"} for m, t in per_method.items()}
    o = Overrides(
        datasets=parse_csv_list(args.datasets, "--datasets") if g(args.datasets) else None,
        problems=parse_csv_list(args.problems, "--problems") if g(args.problems) else None,
        targets=parse_csv_list(args.targets, "--targets") if g(args.targets) else None,
        features=parse_csv_list(args.features, "--features") if g(args.features) else None,
        model=resolve_model(args.model, Path.cwd()),
        methods=methods,
        impls=parse_impls(args.impl) if g(args.impl) else None,
        epochs=_int("--epochs")(args.epochs) if g(args.epochs) else None,
        lr=_float("--lr")(args.lr) if g(args.lr) else None,
        momentum=_float("--momentum")(args.momentum) if g(args.momentum) else None,
        weight_decay=_float("--weight-decay")(args.weight_decay) if g(args.weight_decay) else None,
        batch_size=_int("--batch-size")(args.batch_size) if g(args.batch_size) else None,
        devices=resolve_devices(args.devices) if g(args.devices) else None,
        dtype=args.dtype,
        seeds=parse_int_list(args.seeds, "--seeds") if g(args.seeds) else None,
        holdout=_float("--holdout")(args.holdout) if g(args.holdout) else None,
        standardize=args.standardize,
        task=args.task,
        hparams=generic,
        method_hparams={m: t for m, t in per_method.items() if t},
    )
    check_numbers(o)
    if o.epochs is not None and o.epochs > MAX_EPOCHS:
        raise ConfigError(f"--epochs must be <= {MAX_EPOCHS}, got {o.epochs}")
    if o.seeds is not None:
        check_seeds(o.seeds, "--seeds")
    return o


def load_suite(args: argparse.Namespace) -> Suite:
    config = Path(args.config) if args.config is not None else DEFAULT_SUITE
    suite = suite_from_toml(config)  # first: it may define plug-ins that flags refer to
    overrides = overrides_from_args(args)
    return apply_overrides(suite, overrides)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _executor(args: argparse.Namespace, suite: Suite) -> executors.Executor:
    flags = {
        "executor": args.executor,
        "workers": _int("--workers")(args.workers) if args.workers else None,
        "scheduler": args.scheduler,
        "threads": _int("--threads")(args.threads) if args.threads else None,
    }
    return executors.build(suite.execution, flags)


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


def _command(args: argparse.Namespace) -> str:
    return shlex.join(["python", "-m", "bench", *args.argv])


@contextlib.contextmanager
def _output(
    args: argparse.Namespace,
    out: Path,
    kind: str,
    executor: executors.Executor,
    command: str | None = None,
) -> Iterator[tuple[OutputFolder, CachedRuns]]:
    """The output folder (checked, locked, marked) and its result store, both up front."""
    with OutputFolder.open(out, kind, command or _command(args)) as folder:
        folder.own(STORE_FILE, f"{STORE_FILE}-journal")
        with Store(folder.path / STORE_FILE) as store:
            cache = CachedRuns(store, executor, fresh=args.fresh, say=_say)
            args.cache = cache  # for the interruption message
            yield folder, cache


def cmd_run(args: argparse.Namespace) -> int:
    suite = load_suite(args)
    SweepConfig.from_mapping(suite.sweep)  # a malformed [sweep] table is an error here too
    specs = suite.expand()
    _check_count(len(specs), "the suite", args)
    executor = _executor(args, suite)
    out = Path(args.out) if args.out is not None else DEFAULT_OUT
    env = envinfo.collect(args.argv)
    with executor, _output(args, out, "run", executor) as (folder, cache):
        store = cache.store
        store.set_manifest(
            [(run_key(s), "", "") for s in specs],
            kind="run",
            command=folder.command,
            parity=not args.no_parity,
        )
        _say(f"optbench: {len(specs)} runs ({suite.name} suite) on {', '.join(suite.devices)}")
        t0 = time.perf_counter()
        results = cache.results(specs, "runs")
        env.update(executor.info())  # executor, workers, threads: how runs shared the machine
        t1 = time.perf_counter()
        written = _write_run(folder, results, env, not args.no_parity)
        t2 = time.perf_counter()
    diverged = sum(r.summary["status"] == Status.DIVERGED for r in results)
    _say(
        f"optbench: {len(results)} runs ({diverged} diverged; {cache.reused} reused) in "
        f"{t1 - t0:.0f} s, report {t2 - t1:.0f} s; wrote {written}"
    )
    return 0


def _write_run(folder: OutputFolder, results: list, env: dict, parity: bool) -> Path:
    table = _parity_frame(steps=100) if parity else None
    performance = _performance(folder.path)
    with folder.staged() as stage:
        run_report.write_all(stage, results, env, table, performance=performance)
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
    reruns = 2 * len({(s.problem, s.method) for s in grid}) * len(config.seeds)
    _check_count(len(grid) + reruns, "the sweep (grid and reruns)", args)
    executor = _executor(args, suite)
    out = Path(args.out) if args.out is not None else Path("results/sweep")
    env = envinfo.collect(args.argv)
    with executor, _output(args, out, "sweep", executor) as (folder, cache):
        _say(
            f"optbench sweep: {len(grid)} grid runs, then tuned and default reruns over "
            f"{len(config.seeds)} seeds"
            + (f"; skipped (no hold-out): {', '.join(skipped)}" if skipped else "")
        )
        t0 = time.perf_counter()
        result = run_sweep(suite, config, runs=cache)
        env.update(executor.info())
        cache.store.set_manifest(
            [(run_key(spec), phase, label) for spec, phase, label in result.entries],
            kind="sweep",
            command=folder.command,
            config=dataclasses.asdict(config),
            skipped=result.skipped,
            selection=selection_records(result.selection),
        )
        with folder.staged() as stage:
            sweep_report.write_all(stage, result, config, env)
    _say(
        f"optbench sweep: {len(result.runs)} runs ({cache.reused} reused) in "
        f"{time.perf_counter() - t0:.0f} s; wrote {folder.path / 'report.md'}"
    )
    return 0


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
        meta = cache.store.meta()
        if meta.get("kind") not in ("run", "sweep"):
            raise ConfigError(f"{args.dir}/{STORE_FILE} records no run or sweep to report")
        command = meta.get("command", "")
        env = {**envinfo.collect(args.argv), "command": command}
        try:
            if meta["kind"] == "run":
                results = cache.store.load_keys([key for key, _, _ in cache.store.manifest()])
                written = _write_run(out, results, env, bool(meta.get("parity", True)))
            else:
                config = SweepConfig.from_mapping(meta.get("config", {}))
                result = from_store(cache.store, list(meta.get("skipped", [])))
                with out.staged() as stage:
                    sweep_report.write_all(stage, result, config, env)
                written = out.path / "report.md"
        except KeyError:
            raise ConfigError(
                f"{args.dir}/{STORE_FILE} lacks runs of its last command; run it again to "
                f"finish: {command}"
            ) from None
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


def _refuse_empty(args: argparse.Namespace) -> None:
    """`--epochs ""` is an error, never 'not given' (argparse hands over the empty string)."""
    for dest, value in vars(args).items():
        if isinstance(value, str) and not value.strip():
            name = dest.upper() if dest == "dir" else "--" + dest.replace("_", "-")
            raise ConfigError(f"{name} is empty")


def _interrupted(args: argparse.Namespace, name: str) -> int:
    cache: CachedRuns | None = getattr(args, "cache", None)
    if cache is None or cache.store.path == ":memory:":
        _say(f"interrupted ({name}); no results written")
    else:
        stored, total, desc = cache.in_store()
        _say(
            f"interrupted ({name}): {stored} of {total} {desc} are in {cache.store.path}; "
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
    except Terminated:
        return _interrupted(args, "SIGTERM")
    except KeyboardInterrupt:
        return _interrupted(args, "Ctrl-C")
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
