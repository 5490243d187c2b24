"""The command line's words: the parser, and flags turned into suite overrides.

Every flag value is parsed strictly (an empty value, a bad number, a duplicate name is a
ConfigError, printed as one `error:` line with exit code 2); `bench.cli` runs the commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
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
    """A flag's parser: `convert(text)`, or a ConfigError naming the flag and `what`."""

    def parse(text: str) -> Any:
        try:
            return convert(text)
        except ValueError:
            raise ConfigError(f"{flag} must be {what}, got {text!r}") from None

    return parse


_float = partial(_converted, convert=float, what="a number")
_int = partial(_converted, convert=int, what="an integer")


def _add_suite_options(p: argparse.ArgumentParser) -> None:
    """The flags of `run` and `sweep`: flag -> help. Values stay text for argparse; they are
    parsed in `overrides_from_args` (and `bench.cli`)."""
    flags = {
        "--config": "suite file (TOML); default: the default suite",
        "--datasets": "comma list of dataset names, name:opt=val specs or .csv paths; each is "
        "that dataset with --model (default linear)",
        "--problems": "comma list of the suite's problems by name (see list)",
        "--targets": "target columns of a CSV dataset (comma list)",
        "--features": "feature columns of a CSV dataset (default: other numeric)",
        "--task": "with --datasets: read CSV labels as regression (default) or classification",
        "--model": "linear, mlp, mlp:hidden=N, or a factory path/to/file.py:make_model",
        "--methods": "comma list of methods, or 'all'; an entry with ':' is an optimizer class, "
        "e.g. path/to/signsgd.py:SignSGD, torch.optim:RMSprop, or name=spec",
        "--hp": "hyperparameters: lr=0.01 (every method), signsgd.lr=0.01, adam.betas=0.9:0.99, "
        "signsgd.batch=full|single|mini, signsgd.batch_size=8 (repeatable)",
        "--impl": "comma list of scratch, torch, torch-foreach, torch-fused (where a method has "
        "it; a plug-in always runs as itself)",
        "--schedule": "learning-rate schedule of every method: constant (default), cosine, "
        "linear, step, with options NAME:warmup=100,final=0.1, or an LRScheduler by import path "
        "(torch.optim.lr_scheduler:StepLR:step_size=100); per method: --hp NAME.schedule=...",
        "--epochs": None,
        "--lr": "learning rate for every method",
        "--momentum": "momentum of the methods that have momentum",
        "--weight-decay": "weight decay of the methods that have it",
        "--batch-size": "batch size of the minibatch methods",
        "--devices": "auto (cpu + cuda if present), cpu, cuda, or a comma list",
        "--dtype": "float32 (default) or float64",
        "--seeds": "comma list of seeds, e.g. 0,1,2",
        "--holdout": "hold-out fraction in [0, 1); 0 = none",
        "--standardize": "standardise features with training-set statistics",
        "--executor": f"how runs are executed: {', '.join(executors.EXECUTORS)}",
        "--workers": "dask: local worker processes (default: the machine's cores)",
        "--scheduler": "dask: address of an existing scheduler, tcp://host:port",
        "--threads": "torch intra-op threads per run (default 1)",
        "--engine": "what computes the runs: per-run (run's default) or vectorised (sweep's "
        "default: compatible runs as one program; anything else falls back to per-run)",
        "--timeout": "seconds a run may take before it is stopped (status timeout)",
        "--out": "output folder (new, empty, or an earlier optbench output)",
        "--fresh": "recompute every run instead of reusing the store",
        "--max-runs": f"refuse more runs than this (default {MAX_RUNS})",
        "--timing-budget": "seconds for measuring each run's cost per epoch after the runs "
        "(default 20; 0: not measured)",
    }
    actions = {
        "--hp": {"action": "append"},
        "--standardize": {"action": argparse.BooleanOptionalAction, "default": None},
        "--fresh": {"action": "store_true"},
    }
    for flag, text in flags.items():
        p.add_argument(flag, help=text, **actions.get(flag, {}))


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
    parity.add_argument("--steps", default="100", help=f"<= {MAX_PARITY_STEPS}")
    report = sub.add_parser("report", help="rebuild a run or sweep folder's outputs from its store")
    report.add_argument("dir", help="an output folder of `run` or `sweep`")
    return parser


def _given(text: str | None, parse: Callable[..., Any], *args: Any) -> Any:
    """`parse(text, *args)`, or None for a flag not given (an empty one was refused already)."""
    return None if text is None else parse(text, *args)


def overrides_from_args(args: argparse.Namespace, suite: Suite) -> Overrides:
    """The flags as plain values, each parsed strictly; plug-ins in --methods loaded with
    their `--hp NAME.key` definitions (a suite's plug-ins are known by name)."""
    generic, per_method = config.parse_hp(args.hp or [])
    methods, plugins = None, {}
    if args.methods is not None:
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
    names = config.split_names
    return Overrides(
        datasets=_given(args.datasets, names, "--datasets"),
        problems=_given(args.problems, names, "--problems"),
        targets=_given(args.targets, names, "--targets"),
        features=_given(args.features, names, "--features"),
        model=config.resolve_model(args.model, Path.cwd()),
        methods=methods,
        impls=_given(args.impl, config.parse_impls),
        epochs=_given(args.epochs, _int("--epochs")),
        lr=_given(args.lr, _float("--lr")),
        momentum=_given(args.momentum, _float("--momentum")),
        weight_decay=_given(args.weight_decay, _float("--weight-decay")),
        batch_size=_given(args.batch_size, _int("--batch-size")),
        devices=_given(args.devices, resolve_devices),
        dtype=args.dtype,
        seeds=_given(args.seeds, parse_int_list, "--seeds"),
        holdout=_given(args.holdout, _float("--holdout")),
        standardize=args.standardize,
        task=args.task,
        schedule=_given(args.schedule, schedules.canonical, "--schedule"),
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
