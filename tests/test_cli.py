"""The CLI end to end: outputs on success; on bad input one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import cli, fmt
from bench.output import files, run_report
from bench.schema import EPOCH_COLUMNS

REPO = Path(__file__).resolve().parent.parent
TINY = [
    "--datasets",
    "crops5",
    "--methods",
    "gd,sgd,adam",
    "--epochs",
    "3",
    "--seeds",
    "0,1",
    "--devices",
    "cpu",
    "--no-parity",
]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "out"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    return out


def test_end_to_end_writes_every_output(tiny_run: Path):
    names = {p.name for p in tiny_run.iterdir()}
    assert {
        "epochs.csv",
        "runs.csv",
        "env.json",
        "report.md",
        "loss_vs_epoch.png",
        "loss_vs_time.png",
        "epoch_time.png",
        "report.html",
    } <= names
    assert not [p for p in tiny_run.parent.iterdir() if p.name.startswith(".")], "staging left"


def test_epochs_csv_schema_and_contents(tiny_run: Path):
    epochs = pd.read_csv(tiny_run / "epochs.csv")
    assert list(epochs.columns) == EPOCH_COLUMNS
    # 3 methods x 2 impls x 2 seeds runs, epochs 0..3 each
    assert epochs["run_id"].nunique() == 12
    assert len(epochs) == 12 * 4
    assert set(epochs["epoch"]) == {0, 1, 2, 3}
    assert (epochs.loc[epochs["epoch"] == 0, "epoch_time_s"] == 0).all()
    assert (epochs.loc[epochs["epoch"] > 0, "epoch_time_s"] > 0).all()
    assert set(epochs["status"]) == {"ok"}
    for hp in epochs["hparams"]:
        assert "lr" in json.loads(hp)
    assert epochs.groupby("seed")["init_hash"].nunique().eq(1).all()


def test_runs_csv_has_one_row_per_run(tiny_run: Path):
    runs = pd.read_csv(tiny_run / "runs.csv")
    assert len(runs) == 12
    for col in (
        "final_train_loss",
        "final_holdout_loss",
        "median_epoch_time_s",
        "iqr_epoch_time_s",
        "total_time_s",
        "status",
        "diverged_epoch",
        "loss_star",
        "gap_to_optimum",
    ):
        assert col in runs.columns
    assert (runs["loss_star"] > 0).all()


def test_env_json_records_the_environment(tiny_run: Path):
    env = json.loads((tiny_run / "env.json").read_text())
    assert env["torch"] == torch.__version__
    assert env["python"].count(".") == 2
    assert env["cpu"]
    assert env["torch_threads"] >= 1
    assert env["cuda_available"] == torch.cuda.is_available()
    assert "run" in env["command"]


def test_report_has_every_section_and_numbers_from_the_data(tiny_run: Path):
    text = (tiny_run / "report.md").read_text()
    for heading in (
        "## Summary",
        "## What was run",
        "## Final loss and time to target (cpu)",
        "## Wall time per epoch (cpu)",
        "## Plots",
        "## Methods",
        "## Parity",
    ):
        assert heading in text
    runs = pd.read_csv(tiny_run / "runs.csv")
    gd = runs[(runs["impl"] == "scratch") & (runs["method"] == "gd")]["median_epoch_time_s"]
    assert f"| crops5 | {fmt.seconds(gd.median())} [" in text
    for png in ("loss_vs_epoch.png", "epoch_time.png"):
        assert f"]({png})" in text
        assert (tiny_run / png).stat().st_size > 10_000


def test_list_names_methods_datasets_models(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for word in ("gd", "nesterov", "adamw", "crops15", "synthetic", "diabetes", "mlp"):
        assert word in out


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


BAD_INPUTS = {
    "unknown method": (["--methods", "sgdd"], "unknown method 'sgdd'"),
    "unknown dataset": (["--datasets", "crops99"], "unknown dataset 'crops99'"),
    "unknown model": (["--model", "cnn"], "unknown model 'cnn'"),
    "unknown impl": (["--impl", "jax"], "unknown impl 'jax'"),
    "zero lr": (["--lr", "0"], "lr must be a finite number > 0"),
    "negative lr": (["--lr", "-0.1"], "lr must be a finite number > 0"),
    "nan lr": (["--lr", "nan"], "lr must be a finite number > 0"),
    "text lr": (["--lr", "fast"], "--lr must be a number"),
    "zero epochs": (["--epochs", "0"], "--epochs must be >= 1"),
    "zero batch": (["--batch-size", "0"], "--batch-size must be >= 1"),
    "batch too big": (
        ["--datasets", "crops5", "--methods", "minibatch", "--batch-size", "6"],
        "larger than the training set",
    ),
    "holdout 1": (["--holdout", "1"], "--holdout must be a fraction"),
    "negative momentum": (["--momentum", "-1"], "--momentum must be a finite number >= 0"),
    "bad dtype": (["--dtype", "float16"], "unknown dtype 'float16'"),
    "bad seeds": (["--seeds", "a,b"], "--seeds must be comma-separated integers"),
    "missing csv": (["--datasets", "nope/missing.csv", "--targets", "y"], "missing.csv"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, capsys, tmp_path):
    argv, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    # --epochs 1 keeps the damage small should a bad input ever slip through to a real run.
    extra = [] if "--epochs" in argv else ["--epochs", "1"]
    code, _, stderr = run_cli(capsys, "run", *argv, *extra, "--out", str(out))
    assert code == 2
    assert stderr.startswith("error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert expected in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


CSV_CASES = {
    "empty file": ("", ["y"], "empty"),
    "target absent": ("a,b,y\n1,2,3\n4,5,6\n", ["z"], "'z'"),
    "non-numeric": ("a,b,y\n1,2,3\n4,x,6\n", ["y"], "non-numeric"),
    "nan": ("a,b,y\n1,2,3\n4,,6\n", ["y"], "b"),
    "inf": ("a,b,y\n1,2,3\n4,inf,6\n", ["y"], "b"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_broken_csv_is_one_line_exit_2(case, capsys, tmp_path):
    text, targets, expected = CSV_CASES[case]
    path = _csv(tmp_path, text)
    out = tmp_path / "out"
    code, _, stderr = run_cli(
        capsys, "run", "--datasets", path, "--targets", ",".join(targets), "--out", str(out)
    )
    assert code == 2
    assert stderr.startswith("error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert expected in stderr.lower() or expected in stderr
    assert not out.exists()


def test_user_csv_runs_end_to_end(capsys, tmp_path):
    rows = ["region,temp,rain,apples"] + [
        f"r{i},{70 + i},{60 + 3 * i},{40 + 2 * i}" for i in range(12)
    ]
    path = _csv(tmp_path, "\n".join(rows) + "\n")
    out = tmp_path / "out"
    code, _, stderr = run_cli(
        capsys,
        "run",
        "--datasets",
        path,
        "--targets",
        "apples",
        "--methods",
        "gd,adam",
        "--impl",
        "scratch",
        "--epochs",
        "2",
        "--seeds",
        "0",
        "--lr",
        "1e-5",
        "--out",
        str(out),
        "--no-parity",
    )
    assert code == 0, stderr
    epochs = pd.read_csv(out / "epochs.csv")
    assert set(epochs["dataset"]) == {"data"}
    assert set(epochs["lr"]) == {1e-5}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error; a GPU is present")
def test_cuda_without_gpu_is_a_one_line_error(capsys, tmp_path):
    code, _, stderr = run_cli(capsys, "run", "--devices", "cuda", "--out", str(tmp_path / "o"))
    assert code == 2
    assert stderr == "error: device 'cuda' requested but no CUDA device is available\n"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("name = 'x'\n[[problems]\n", "malformed TOML"),
        ("epochs = 3\nfoo = 1\n", "unknown key foo"),
        (
            "[[problems]]\ndataset = 'crops5'\n[problems.hparams]\nadam = { momentum = 0.9 }\n",
            "does not take momentum",
        ),
        ("[[problems]]\nmodel = 'linear'\n", "needs a dataset"),
    ],
)
def test_bad_config_is_one_line_exit_2(toml, expected, capsys, tmp_path):
    cfg = tmp_path / "suite.toml"
    cfg.write_text(toml)
    code, _, stderr = run_cli(capsys, "run", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert code == 2
    assert stderr.startswith("error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert expected in stderr
    assert str(cfg) in stderr
    assert not (tmp_path / "o").exists()


def test_missing_config_file(capsys, tmp_path):
    code, _, stderr = run_cli(capsys, "run", "--config", str(tmp_path / "none.toml"))
    assert code == 2
    assert "config file not found" in stderr


def test_a_failure_while_writing_leaves_the_previous_results(monkeypatch, capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("previous")

    def explode(stage, *a, **k):
        (stage / "epochs.csv").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_report, "write_all", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        cli.main(["run", *TINY, "--out", str(out)])
    assert [p.name for p in out.iterdir()] == ["report.md"]
    assert (out / "report.md").read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "staging folder left behind"


def test_staged_dir_replaces_old_results_in_one_swap(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with files.staged_dir(out) as stage:
        (stage / "new.txt").write_text("new")
        assert (out / "old.txt").exists()  # untouched until the end
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_module_entry_point_gives_exit_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--methods", "nope", "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown method 'nope'; known: gd, sgd")
    assert "Traceback" not in proc.stderr
