"""The command line's words: the parser, and flags turned into suite overrides.

Every flag value is parsed strictly (an empty value, a bad number, a duplicate name is a
ConfigError, printed as one `error:` line with exit code 2); `bench.cli` runs the commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from bench.errors import ConfigError
from bench.run import config, executors, schedules
from bench.run.config import MAX_PARITY_STEPS, MAX_RUNS, Overrides, Suite
from bench.run.device import resolve_devices

DESCRIPTION = "optbench: optimizers from scratch next to torch.optim, from the same start"


class _Parser(argparse.ArgumentParser):
    """One-line errors; no abbreviations (`--sched` is not taken for `--schedule` or any
    other flag: an unknown or partial flag is an error)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        # One line, like every other input error (argparse would print the usage block too).
        sub = self.prog.split()[-1]
        where = "python -m bench" + ("" if sub == "bench" else f" {sub}")
        self.exit(2, f"error: {message} (see: {where} --help)\n")


def _converted(flag: str, convert: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """An argparse `type`: `convert(text)`, or a ConfigError naming the flag and `what`."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError:
            raise ConfigError(f"{flag} must be {what}, got {text!r}") from None

    return parse


def _float(flag: str) -> Callable[[str], float]:
    return _converted(flag, float, "a number")


def _int(flag: str) -> Callable[[str], int]:
    return _converted(flag, int, "an integer")


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
    p.add_argument(
        "--schedule",
        help="learning-rate schedule of every method: constant (default), cosine, linear, step, "
        "with options NAME:warmup=100,final=0.1, or an LRScheduler by import path "
        "(torch.optim.lr_scheduler:StepLR:step_size=100); per method: --hp NAME.schedule=...",
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
    p.add_argument(
        "--engine",
        help="what computes the runs: per-run (run's default) or vectorised (sweep's default: "
        "compatible runs as one program; anything else falls back to per-run)",
    )
    p.add_argument("--timeout", help="seconds a run may take before it is stopped (status timeout)")
    p.add_argument("--out", help="output folder (new, empty, or an earlier optbench output)")
    p.add_argument(
        "--fresh", action="store_true", help="recompute every run instead of reusing the store"
    )
    p.add_argument("--max-runs", help=f"refuse more runs than this (default {MAX_RUNS})")
    p.add_argument(
        "--timing-budget",
        help="seconds for measuring each run's cost per epoch after the runs (default 20; 0: "
        "not measured)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description=DESCRIPTION)
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


def overrides_from_args(args: argparse.Namespace, suite: Suite) -> Overrides:
    """The flags as plain values, each parsed strictly; plug-ins in --methods loaded with
    their `--hp NAME.key` definitions (a suite's plug-ins are known by name)."""
    generic, per_method = config.parse_hp(args.hp or [])
    g = _given
    methods, plugins = None, {}
    if g(args.methods):
        methods, known = config.resolve_methods(
            args.methods, "--methods", suite.plugins, None, per_method
        )
        plugins = {k: v for k, v in known.items() if k not in suite.plugins}
    for name, table in per_method.items():
        if "batch" in table and name not in plugins:
            raise ConfigError(
                f"--hp: {name}.batch: only a plug-in given in --methods takes a batch regime "
                "here (a suite's plug-in: its [methods] table)"
            )
    return Overrides(
        datasets=config.split_names(args.datasets, "--datasets") if g(args.datasets) else None,
        problems=config.split_names(args.problems, "--problems") if g(args.problems) else None,
        targets=config.split_names(args.targets, "--targets") if g(args.targets) else None,
        features=config.split_names(args.features, "--features") if g(args.features) else None,
        model=config.resolve_model(args.model, Path.cwd()),
        methods=methods,
        impls=config.parse_impls(args.impl) if g(args.impl) else None,
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
        schedule=schedules.canonical(args.schedule, "--schedule") if g(args.schedule) else None,
        hparams=generic,
        method_hparams={
            m: {k: v for k, v in t.items() if k != "batch"}
            for m, t in per_method.items()
            if set(t) - {"batch"}
        },
        plugins=plugins,
    )


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in config.split_names(text, what))
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None


def load_suite(args: argparse.Namespace) -> Suite:
    path = Path(args.config) if args.config is not None else config.DEFAULT_SUITE
    suite = config.suite_from_toml(path)  # first: it may define plug-ins that flags refer to
    return config.apply_overrides(suite, overrides_from_args(args, suite))


def _refuse_empty(args: argparse.Namespace) -> None:
    """`--epochs ""` is an error, never 'not given' (argparse hands over the empty string)."""
    for dest, value in vars(args).items():
        if isinstance(value, str) and not value.strip():
            name = dest.upper() if dest == "dir" else "--" + dest.replace("_", "-")
            raise ConfigError(f"{name} is empty")
