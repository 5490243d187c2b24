"""The CLI end to end: outputs on success; on bad input one line, exit 2, nothing written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench import cli, fmt
from bench.output import run_report
from bench.run.executors import SerialExecutor
from bench.schema import EPOCH_COLUMNS, TIMING_COLUMNS
from bench.sweep import SweepConfig
from tests.interrupting import Interrupting

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
        "## Cost per epoch (cpu)",
        "## Plots",
        "## Methods",
        "## Parity",
    ):
        assert heading in text
    runs = pd.read_csv(tiny_run / "runs.csv")
    gd = runs[(runs["impl"] == "scratch") & (runs["method"] == "gd")]["epoch_cost_s"]
    wall = text[text.index("## Cost per epoch (cpu)") :]
    assert f"| `gd` (scratch) | {fmt.seconds(gd.median())} [" in wall  # crops5, the first column
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
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    mutable = ("store.sqlite", ".optbench.lock")  # the lock holds the pid and a journal
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name not in mutable}

    def explode(stage, *a, **k):
        (stage / "epochs.csv").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_report, "write_all", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        cli.main(["run", *TINY, "--out", str(out)])
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.name not in mutable}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


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


# ---------------------------------------------------------------------------------------------
# The output folder, the store, input holes


def test_a_folder_holding_a_user_file_is_refused_up_front(capsys, tmp_path, monkeypatch):
    (tmp_path / "analysis.py").write_text("print('mine')")
    monkeypatch.chdir(tmp_path)
    for out in (str(tmp_path), ".", "analysis.py"):
        code, _, err = run_cli(capsys, "run", *TINY, "--out", out)
        assert code == 2
        assert len(err.splitlines()) == 1
        assert err.startswith("error: --out ")
    assert [p.name for p in tmp_path.iterdir()] == ["analysis.py"]
    assert (tmp_path / "analysis.py").read_text() == "print('mine')"


def test_an_optbench_output_is_updated_in_place_and_user_files_survive(capsys, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    (out / "my_notes.md").write_text("notes")
    first = pd.read_csv(out / "runs.csv")
    code, _, err = run_cli(capsys, "run", *TINY, "--out", str(out))
    assert code == 0
    assert "optbench: 12 of 12 runs reused" in err
    assert (out / "my_notes.md").read_text() == "notes"
    # Reused runs, identical; their cost per epoch is measured again by each command.
    again, first = (
        t.drop(columns=[c for c in TIMING_COLUMNS if c.startswith(("cost", "epoch_cost"))])
        for t in (pd.read_csv(out / "runs.csv"), first)
    )
    pd.testing.assert_frame_equal(again, first, check_exact=True)
    code, _, err = run_cli(capsys, "run", *TINY, "--out", str(out), "--fresh")
    assert code == 0
    assert "reused from" not in err


def test_report_rebuilds_a_folder_from_its_store(capsys, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    epochs = (out / "epochs.csv").read_bytes()
    (out / "epochs.csv").unlink()
    (out / "report.md").write_text("edited")  # the user's now: never overwritten
    code, _, err = run_cli(capsys, "report", str(out))
    assert code == 2
    assert "report.md was changed since optbench wrote it" in err
    assert (out / "report.md").read_text() == "edited"
    (out / "report.md").unlink()  # moved away, as the error says
    code, _, err = run_cli(capsys, "report", str(out))
    assert code == 0, err
    assert (out / "epochs.csv").read_bytes() == epochs
    assert (out / "report.md").read_text().startswith("# optbench report")
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert code == 2
    assert "not an optbench output folder" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--epochs", ""], "error: --epochs is empty"),
        (["--lr", ""], "error: --lr is empty"),
        (["--seeds", ""], "error: --seeds is empty"),
        (["--methods", ""], "error: --methods is empty"),
        (["--out", ""], "error: --out is empty"),
        (["--dtype", " "], "error: --dtype is empty"),
        (["--epochs", "2000000"], "error: --epochs must be <= 1000000"),
        (["--seeds", ",".join(map(str, range(1001)))], "more than the limit of 1000"),
        (["--seeds", "99999999999"], "seeds must be in [0, 4294967295]"),
        (["--datasets", "synthetic:n=1e12"], "error: "),
        (["--seeds", "0-9"], "error: --seeds must be comma-separated integers"),
        (["--hp", "nope=1"], "error: --hp: unknown hyperparameter nope"),  # as a suite's is
        (["--seeds", "0,1", "--max-runs", "1"], "the suite: 2 runs, more than the limit of 1;"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:30],
)
def test_input_holes_are_one_line_exit_2_nothing_written(
    argv, expected, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    base = ["run", "--datasets", "crops5", "--methods", "gd", "--impl", "scratch", "--seeds", "0"]
    code, _, err = run_cli(capsys, *base, "--epochs", "2", "--no-parity", "--out", "o", *argv)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert expected in err
    assert not list(tmp_path.iterdir()), "something was written"


def test_parity_steps_and_sweep_grid_are_bounded(capsys, tmp_path):
    code, _, err = run_cli(capsys, "parity", "--steps", "1000000", "--out", str(tmp_path / "p"))
    assert (code, err) == (2, "error: --steps must be in [1, 100000], got 1000000\n")
    code, _, err = run_cli(
        capsys,
        "sweep",
        *("--datasets", "crops15", "--decades", "300", "--points-per-decade", "100"),
        *("--out", str(tmp_path / "s")),
    )
    assert code == 2
    assert "more than the limit of 10000; pass --max-runs" in err
    code, _, err = run_cli(
        capsys, "sweep", "--datasets", "crops15", "--decades", "400", "--out", str(tmp_path / "s")
    )
    assert (code, err) == (
        2,
        "error: sweep decades must be <= 300 (10^300 is about the float range), got 400.0\n",
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "argv",
    [
        ["--lr", "1e38", "--methods", "adam"],
        ["--lr", "1e39", "--methods", "gd"],
        ["--weight-decay", "1e300", "--methods", "adamw,sgd_wd"],
    ],
    ids=["adam-1e38", "gd-1e39", "wd-1e300"],
)
def test_overflows_end_as_diverged_rows_with_a_report(argv, capsys, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "run", "--datasets", "crops5", "--epochs", "3", "--seeds", "0", "--no-parity",
        "--dtype", "float32", "--out", str(out), *argv,
    )  # fmt: skip
    assert code == 0, err
    runs = pd.read_csv(out / "runs.csv")
    assert (runs["status"] == "diverged").all()
    assert "Diverged" in (out / "report.md").read_text()


def test_sweep_over_100_decades_and_an_all_diverged_sweep_finish(capsys, tmp_path):
    tiny = ["--datasets", "crops15", "--methods", "gd", "--epochs", "2", "--no-claims"]
    code, _, err = run_cli(
        capsys, "sweep", *tiny, "--decades", "100", "--points-per-decade", "1", "--seeds", "0",
        "--out", str(tmp_path / "wide"),
    )  # fmt: skip
    assert code == 0, err
    sweep = pd.read_csv(tmp_path / "wide" / "sweep.csv")
    selection_seeds = len(SweepConfig().select_seeds)
    assert len(sweep[sweep["phase"] == "grid"]) == 201 * selection_seeds
    assert (sweep["status"] == "diverged").any()
    code, _, err = run_cli(
        capsys, "sweep", *tiny, "--lr", "1e39", "--decades", "0.5", "--seeds", "0",
        "--out", str(tmp_path / "diverged"),
    )  # fmt: skip
    assert code == 0, err
    grid = pd.read_csv(tmp_path / "diverged" / "sweep.csv")
    assert (grid.loc[grid["phase"] == "grid", "status"] == "diverged").all()


def test_a_stray_or_malformed_perf_csv_never_breaks_a_run(capsys, tmp_path, monkeypatch):
    (tmp_path / "results" / "perf").mkdir(parents=True)
    (tmp_path / "results" / "perf" / "perf.csv").write_text("not,a\nperf csv")
    monkeypatch.chdir(tmp_path)  # the working directory's results/ is not the project's
    assert cli.main(["run", *TINY, "--out", "o"]) == 0
    bad = tmp_path / "perf.csv"
    bad.write_text("case,median\n1-step,x\n")
    monkeypatch.setattr(cli, "PERF_CSV", bad)
    code, _, err = run_cli(capsys, "run", *TINY, "--out", "o2")
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        line for line in err.splitlines() if "perf.csv" in line
    ]
    assert sum(line.startswith("warning: ignoring") for line in err.splitlines()) == 1


def test_an_interrupted_sweep_resumes_to_the_same_tables(capsys, tmp_path, monkeypatch):
    argv = [  # per-run: an interruption after 3 runs (a vectorised group is stored whole)
        "sweep", "--datasets", "crops15", "--methods", "gd,adam", "--epochs", "3",
        "--decades", "1", "--seeds", "0,1", "--no-claims", "--engine", "per-run",
    ]  # fmt: skip
    assert cli.main([*argv, "--out", str(tmp_path / "ref")]) == 0
    monkeypatch.setitem(cli.executors.EXECUTORS, "interrupting", lambda: Interrupting(3))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *argv, "--out", str(out), "--executor", "interrupting")
    assert code == 130
    grid = 5 * 2 * len(SweepConfig().select_seeds)  # 5 lrs x 2 methods x selection seeds
    assert err.splitlines()[-1].startswith(
        f"interrupted (Ctrl-C): 3 of {grid} sweep grid runs are in"
    )
    code, _, err = run_cli(capsys, *argv, "--out", str(out))
    assert code == 0
    assert f"optbench: 3 of {grid} sweep grid runs reused" in err
    timing = TIMING_COLUMNS
    for name in ("sweep.csv", "epochs.csv", "selection.csv"):
        a, b = (pd.read_csv(d / name) for d in (out, tmp_path / "ref"))
        a, b = (t.drop(columns=[c for c in timing if c in t]) for t in (a, b))
        pd.testing.assert_frame_equal(a, b, check_exact=True)


class _TwoAtATime(SerialExecutor):
    """Runs serially but reports itself as 2 runs in parallel (as a Dask executor would)."""

    def info(self) -> dict:
        return {**super().info(), "executor": "two", "workers": 2, "parallel_runs": 2}


def test_parallel_timing_is_said_in_the_summary_and_survives_a_report_rebuild(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setitem(cli.executors.EXECUTORS, "two", _TwoAtATime)
    out = tmp_path / "out"
    argv = ["run", *TINY, "--executor", "two", "--no-parity", "--out", str(out)]
    assert cli.main(argv) == 0
    note = "Timings: timed with 2 runs in parallel"
    summary = (out / "report.md").read_text().split("## What was run")[0]
    assert note in summary
    assert cli.main(["report", str(out)]) == 0
    assert note in (out / "report.md").read_text().split("## What was run")[0]
    assert json.loads((out / "env.json").read_text())["executor"] == "two"


# ---------------------------------------------------------------------------------------------
# Damaged and foreign inputs: one line, exit 2, never a traceback (issue 18)

ONE = ["--datasets", "crops5", "--methods", "gd", "--impl", "scratch", "--epochs", "2",
       "--seeds", "0", "--devices", "cpu", "--no-parity"]  # fmt: skip


def _one_line(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert expected in err, err


@pytest.fixture(scope="module")
def one_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "out"
    assert cli.main(["run", *ONE, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def one_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "out"
    argv = [
        "sweep", "--datasets", "crops15", "--methods", "gd", "--epochs", "2", "--seeds", "0",
        "--select-seeds", "0", "--decades", "0.5", "--points-per-decade", "1", "--no-claims",
    ]  # fmt: skip
    assert cli.main([*argv, "--out", str(out)]) == 0
    return out


def _user_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE contacts (name TEXT)")
        db.commit()


STORE_DAMAGE = {
    "random-bytes": (
        lambda p: p.write_bytes(np.random.default_rng(0).bytes(20_000)),
        "is not a result store (not an SQLite database",
    ),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:20_000]), "is damaged: cut short"),
    "foreign-sqlite": (lambda p: (p.unlink(), _user_db(p)), "optbench did not make"),
    "symlink-to-a-users-db": (
        lambda p: (p.unlink(), _user_db(p.parent / "mine.db"), p.symlink_to(p.parent / "mine.db")),
        "is a symlink",
    ),
}


@pytest.mark.parametrize("command", ["run", "report"])
@pytest.mark.parametrize("case", list(STORE_DAMAGE))
def test_a_corrupt_or_foreign_store_is_one_line_exit_2(case, command, one_run, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(one_run, out, symlinks=True)
    damage, expected = STORE_DAMAGE[case]
    damage(out / "store.sqlite")
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    argv = ["run", *ONE, "--out", str(out)] if command == "run" else ["report", str(out)]
    code, _, err = run_cli(capsys, *argv)
    _one_line(code, err, expected)
    after = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "nothing written: not the marker, the lock, nor the store"


def test_a_corrupt_store_under_the_module_entry_point_is_one_line(one_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(one_run, out)
    (out / "store.sqlite").write_bytes(np.random.default_rng(1).bytes(8192))
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "report", str(out)],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )  # fmt: skip
    _one_line(proc.returncode, proc.stderr, "not an SQLite database")


def _sql(path: Path, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(statement)
        db.commit()


REPORT_DAMAGE = {
    "spec-not-json": ("run", "UPDATE runs SET spec = '{not json'", "has no valid spec"),
    "spec-fields": ("run", """UPDATE runs SET spec = '{"dataset": 1}'""", "has no valid spec"),
    "meta-not-json": ("run", "UPDATE meta SET value = '{oops' WHERE name = 'kind'", "not JSON"),
    "meta-execution": (
        "run", "UPDATE meta SET value = '[1, 2]' WHERE name = 'execution'", "'execution'"
    ),
    "manifest-table": (
        "run", "DROP TABLE manifest; CREATE TABLE manifest (x)", "manifest table lacks key"
    ),
    "manifest-phase": ("sweep", "UPDATE manifest SET phase = 'bogus'", "manifest phases"),
    "manifest-missing-run": ("run", "DELETE FROM runs", "lacks runs of its last command"),
    "number-as-text": (
        "run", "UPDATE epochs SET train_loss = 'text'", "text in a number column"
    ),
    "sweep-selection": (
        "sweep", "UPDATE meta SET value = '[1, 2]' WHERE name = 'selection'", "'selection'"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REPORT_DAMAGE))
def test_a_damaged_store_under_report_is_one_line(case, one_run, one_sweep, tmp_path, capsys):
    kind, statement, expected = REPORT_DAMAGE[case]
    out = tmp_path / "out"
    shutil.copytree(one_run if kind == "run" else one_sweep, out)
    _sql(out / "store.sqlite", statement)
    report = (out / "report.md").read_bytes()
    code, _, err = run_cli(capsys, "report", str(out))
    _one_line(code, err, expected)
    assert (out / "report.md").read_bytes() == report


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 3000 + "]" * 3000,
        "[hparams]\nlr = " + "{a = " * 3000 + "1" + "}" * 3000,
    ],
    ids=["arrays", "tables"],
)
def test_a_toml_nested_3000_deep_is_one_line(text, tmp_path, capsys):
    cfg = tmp_path / "deep.toml"
    cfg.write_text(text)
    code, _, err = run_cli(capsys, "run", "--config", str(cfg), "--out", str(tmp_path / "o"))
    _one_line(code, err, "nested too deeply")
    assert not (tmp_path / "o").exists()


def test_a_hyperparameter_nested_3000_deep_is_one_line(tmp_path, capsys):
    deep = "[" * 3000 + "]" * 3000
    code, _, err = run_cli(capsys, "run", *ONE, "--hp", f"lr={deep}", "--out", str(tmp_path / "o"))
    _one_line(code, err, "nested too deeply")
    assert not (tmp_path / "o").exists()


def _labels_csv(tmp_path: Path, labels: list[str]) -> str:
    rows = ["x,label"] + [f"{i * 0.5},{labels[i % len(labels)]}" for i in range(30)]
    return _csv(tmp_path, "\n".join(rows) + "\n")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["0", "1" + "0" * 19, "2" + "0" * 19], "beyond the 64-bit range (at rows 2, 3, 5"),
        (["0", "10000000000000000000", "1"], "beyond the 64-bit range (at rows 2, 5, 8"),
        (["0", "-9223372036854775809", "1"], "beyond the 64-bit range (at rows 2, 5, 8"),
        (["0", "1e19", "2e19"], "read as floats beyond 2**53 (1e+19 at rows 2, 3, 5"),
    ],
    ids=["wider-than-int64", "uint64", "below-int64", "1e19-would-merge"],
)  # fmt: skip
def test_labels_that_cannot_be_classes_exactly_are_refused(labels, expected, tmp_path, capsys):
    path = _labels_csv(tmp_path, labels)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "run", "--datasets", path, "--task", "classification", "--targets", "label",
        *ONE[2:], "--out", str(out),
    )  # fmt: skip
    _one_line(code, err, expected)
    assert "label column 'label' of 'data.csv'" in err
    assert not out.exists()


def _wide_csv(tmp_path: Path, row: str) -> str:
    rows = ["x,y"] + [f"{i},{2 * i + 1}" for i in range(30)]
    rows[5] = row
    return _csv(tmp_path, "\n".join(rows) + "\n")


@pytest.mark.parametrize(
    ("row", "extra", "expected"),
    [
        ("1e39,3", [], "column 'x' of 'data' holds 1e+39 at row 5, beyond float32's range"),
        ("3,-1e39", [], "column 'y' of 'data' holds -1e+39 at row 5, beyond float32's range"),
        ("3,1e39", ["--standardize"], "column 'y' of 'data' holds 1e+39 at row 5"),
    ],
    ids=["feature", "target", "target-standardized"],
)
def test_data_beyond_float32_is_refused_before_any_run(row, extra, expected, tmp_path, capsys):
    path = _wide_csv(tmp_path, row)
    for command in ("run", "sweep"):
        out = tmp_path / command
        argv = [command, "--datasets", path, "--targets", "y", *ONE[2:], *extra]
        if command == "sweep":
            argv = [a for a in argv if a != "--no-parity"]
            argv += ["--no-claims", "--select-seeds", "0", "--decades", "0.5"]
        code, _, err = run_cli(capsys, *argv, "--out", str(out))
        _one_line(code, err, expected)
        assert not out.exists()


@pytest.mark.parametrize("extra", [["--dtype", "float64"], ["--standardize"]])
def test_data_beyond_float32_runs_where_the_run_can_hold_it(extra, tmp_path, capsys):
    path = _wide_csv(tmp_path, "1e39,3")
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "run", "--datasets", path, "--targets", "y", *ONE[2:], *extra, "--out", str(out)
    )
    assert code == 0, err
    assert (out / "report.md").is_file()
