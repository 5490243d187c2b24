"""Command line: `python -m bench {run,list,parity}`.

Bad input of any kind ends with one line on stderr, `error: ...`, exit code 2, and no files
written; a divergent run is a result, not an error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import pandas as pd

import datasets
import optimizers
from bench.errors import ConfigError
from bench.output import run_report, sweep_report
from bench.output.files import staged_dir, write
from bench.perf import results as perf_results
from bench.run import envinfo, executors, tasks
from bench.run import methods as method_lists
from bench.run.config import DEFAULT_SUITE, Overrides, Suite, apply_overrides, check_numbers
from bench.run.data import SOURCES
from bench.run.device import resolve_devices
from bench.run.executors import run_all
from bench.run.models import MODELS
from bench.run.suite_file import (
    parse_csv_list,
    parse_impls,
    parse_int_list,
    parse_methods,
    resolve_model,
    suite_from_toml,
)
from bench.schema import Status
from bench.sweep import SweepConfig, grid_specs, run_sweep
from optimizers.parity import parity_table

DEFAULT_OUT = Path("results/latest")
PERF_CSV = Path("results/perf/perf.csv")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other input error (argparse would print the usage block too).
        self.exit(2, f"error: {message} (see: python -m bench {self.prog.split()[-1]} --help)\n")


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
    p.add_argument("--config", type=Path, help="suite file (TOML); default: the default suite")
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
    p.add_argument("--out", type=Path, default=None, help="output folder")


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
    listing.add_argument("--config", type=Path, help="suite file whose problems to list")
    parity = sub.add_parser("parity", help="write parity.csv (scratch vs torch.optim)")
    parity.add_argument("--out", type=Path, default=Path("results/parity"))
    parity.add_argument("--steps", type=str, default="100")
    return parser


def overrides_from_args(args: argparse.Namespace) -> Overrides:
    generic, per_method = method_lists.parse_hp(args.hp or [])
    methods = parse_methods(args.methods, per_method) if args.methods else None
    entries = parse_csv_list(args.methods, "--methods") if args.methods else ()
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
        datasets=parse_csv_list(args.datasets, "--datasets") if args.datasets else None,
        problems=parse_csv_list(args.problems, "--problems") if args.problems else None,
        targets=parse_csv_list(args.targets, "--targets") if args.targets else None,
        features=parse_csv_list(args.features, "--features") if args.features else None,
        model=resolve_model(args.model, Path.cwd()),
        methods=methods,
        impls=parse_impls(args.impl) if args.impl else None,
        epochs=_int("--epochs")(args.epochs) if args.epochs else None,
        lr=_float("--lr")(args.lr) if args.lr else None,
        momentum=_float("--momentum")(args.momentum) if args.momentum else None,
        weight_decay=_float("--weight-decay")(args.weight_decay) if args.weight_decay else None,
        batch_size=_int("--batch-size")(args.batch_size) if args.batch_size else None,
        devices=resolve_devices(args.devices) if args.devices else None,
        dtype=args.dtype,
        seeds=parse_int_list(args.seeds, "--seeds") if args.seeds else None,
        holdout=_float("--holdout")(args.holdout) if args.holdout is not None else None,
        standardize=args.standardize,
        task=args.task,
        hparams=generic,
        method_hparams={m: t for m, t in per_method.items() if t},
    )
    check_numbers(o)
    return o


def load_suite(args: argparse.Namespace) -> Suite:
    suite = suite_from_toml(args.config or DEFAULT_SUITE)  # first: it may define plug-ins
    overrides = overrides_from_args(args)
    return apply_overrides(suite, overrides)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _executor(args: argparse.Namespace) -> executors.Executor:
    return executors.get(args.executor or "serial")


def cmd_run(args: argparse.Namespace) -> int:
    suite = load_suite(args)
    SweepConfig.from_mapping(suite.sweep)  # a malformed [sweep] table is an error here too
    specs = suite.expand()
    executor = _executor(args)
    out = args.out or DEFAULT_OUT
    env = envinfo.collect(args.argv)
    _say(f"optbench: {len(specs)} runs ({suite.name} suite) on {', '.join(suite.devices)}")
    t0 = time.perf_counter()
    results = run_all(specs, executor)
    t1 = time.perf_counter()
    parity = None if args.no_parity else _parity_frame(steps=100)
    t2 = time.perf_counter()
    # The latest `nox -s perf` results, if any, linked from this report (never re-measured here).
    performance = perf_results.markdown_section(PERF_CSV, relative_to=out)
    with staged_dir(out) as stage:
        run_report.write_all(stage, results, env, parity, performance=performance)
    t3 = time.perf_counter()
    diverged = sum(r.summary["status"] == Status.DIVERGED for r in results)
    _say(
        f"optbench: {len(results)} runs ({diverged} diverged) in {t1 - t0:.0f} s, parity "
        f"{t2 - t1:.0f} s, report {t3 - t2:.0f} s; wrote {out / 'report.md'}"
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    rerun_seeds = args.seeds
    args.seeds = None  # --seeds means the reruns' seeds here, not the suite's
    suite = load_suite(args)
    config = SweepConfig.from_mapping(suite.sweep)
    overrides: dict = {}
    if rerun_seeds:
        overrides["seeds"] = parse_int_list(rerun_seeds, "--seeds")
    if args.select_seeds:
        overrides["select_seeds"] = parse_int_list(args.select_seeds, "--select-seeds")
    if args.decades:
        overrides["decades"] = _float("--decades")(args.decades)
    if args.points_per_decade:
        overrides["points_per_decade"] = _int("--points-per-decade")(args.points_per_decade)
    if args.no_claims:
        overrides["claims"] = False
    config = replace(config, **overrides)
    executor = _executor(args)
    out = args.out or Path("results/sweep")
    grid, skipped = grid_specs(suite, config)
    env = envinfo.collect(args.argv)
    _say(
        f"optbench sweep: {len(grid)} grid runs, then tuned and default reruns over "
        f"{len(config.seeds)} seeds" + (f"; skipped (no hold-out): {', '.join(skipped)}" if
                                         skipped else "")
    )  # fmt: skip
    t0 = time.perf_counter()
    result = run_sweep(suite, config, executor)
    with staged_dir(out) as stage:
        sweep_report.write_all(stage, result, config, env)
    _say(
        f"optbench sweep: {len(result.runs)} runs in {time.perf_counter() - t0:.0f} s; "
        f"wrote {out / 'report.md'}"
    )
    return 0


def _parity_frame(steps: int) -> pd.DataFrame:
    return pd.DataFrame(parity_table(steps=steps))


def cmd_parity(args: argparse.Namespace) -> int:
    steps = _int("--steps")(args.steps)
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    frame = _parity_frame(steps)
    with staged_dir(args.out) as stage:
        write(frame, stage / "parity.csv")
    bitwise = int(frame["bitwise"].sum())
    _say(f"parity: {bitwise} of {len(frame)} cases bitwise equal; wrote {args.out / 'parity.csv'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    suite = suite_from_toml(args.config or DEFAULT_SUITE)
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


COMMANDS = {"run": cmd_run, "list": cmd_list, "parity": cmd_parity, "sweep": cmd_sweep}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no results written", file=sys.stderr)
        return 130
