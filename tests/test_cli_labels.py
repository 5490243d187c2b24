"""What the command line says about the suite it runs: "(default suite)" only when it is."""

from __future__ import annotations

from bench import cli
from bench.cli.args import build_parser, load_suite


def label(*argv: str) -> str:
    args = build_parser().parse_args(["run", *argv])
    return cli._suite_label(args, load_suite(args))


def test_the_default_suite_is_called_so_only_when_nothing_changed_it():
    assert label() == "default suite"
    assert label("--out", "x", "--executor", "serial") == "default suite"  # how, not what
    assert label("--datasets", "crops15") == "default suite, changed by --datasets"
    assert label("--epochs", "5", "--seeds", "0") == "default suite, changed by --epochs, --seeds"
