"""A run's key covers every input that can change its numbers: a changed input is never
answered from the store."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench import cli
from bench.run.spec import RunSpec
from bench.store.keys import _input_files, run_key

ARGS = ["--seeds", "0", "--epochs", "2", "--impl", "scratch", "--no-parity"]


def _table(path: Path, scale: float) -> None:
    rows = ["a,b,y"] + [f"{i},{(i * 7) % 5},{scale * i + 1}" for i in range(10)]
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("name", ["data.txt", "data.CSV", "data"])
def test_a_dataset_file_of_any_name_is_keyed_by_its_bytes(name, tmp_path, capsys):
    data = tmp_path / name
    _table(data, 2.0)
    argv = ["run", "--datasets", str(data), "--targets", "y", "--methods", "gd", *ARGS,
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 0
    _table(data, 3.0)  # same shape, other numbers
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "(0 diverged; 0 reused)" in capsys.readouterr().err


def test_an_edited_model_factory_is_computed_afresh(tmp_path, capsys):
    net = tmp_path / "net.py"
    net.write_text("import torch\n\ndef make(d, k):\n    return torch.nn.Linear(d, k)\n")
    argv = ["run", "--datasets", "crops15", "--model", f"{net}:make", "--methods", "gd", *ARGS,
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 0
    net.write_text(
        textwrap.dedent(
            """
            import torch

            def make(d, k):
                return torch.nn.Sequential(torch.nn.Linear(d, 4), torch.nn.Linear(4, k))
            """
        )
    )
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "(0 diverged; 0 reused)" in capsys.readouterr().err


def test_an_installed_plugin_is_keyed_by_its_version_and_source():
    spec = RunSpec(
        dataset="crops15", method="lion", optimizer="pytorch_optimizer:Lion",
        hparams=(("lr", 0.01),), inner="",
    )  # fmt: skip
    inputs = _input_files(spec)["optimizer"]
    assert inputs["version:pytorch_optimizer"] == "4.1.0"
    assert len(inputs["source"]) == 64  # sha256 of the module's file
    sam = RunSpec(
        dataset="crops15", method="sam", optimizer="pytorch_optimizer:SAM",
        hparams=(("base_optimizer", "torch.optim:SGD"), ("lr", 0.01)),
    )  # fmt: skip
    assert "hparam:base_optimizer" in _input_files(sam)
    assert run_key(sam) != run_key(spec)


def test_a_plugin_file_that_is_gone_makes_the_key_unverifiable(tmp_path):
    path = tmp_path / "opt.py"
    path.write_text("import torch\n\nclass Opt(torch.optim.SGD):\n    pass\n")
    spec = RunSpec(dataset="crops15", method="opt", optimizer=f"{path}:Opt",
                   hparams=(("lr", 0.01),))  # fmt: skip
    before = run_key(spec)
    path.unlink()
    assert _input_files(spec)["optimizer"]["file"] == "missing"
    assert run_key(spec) != before
