"""perf.csv, perf.png and perf.md: writing and reading the results of `nox -s perf`, and the
report's "Performance" section rendered from perf.csv."""

from __future__ import annotations

import math
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from bench import fmt
from bench.output.files import OutputFolder
from bench.perf.plot import plot
from bench.perf.timing import COLUMNS, Row


def write_csv(rows: Iterable[Row], path: Path) -> None:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    frame.to_csv(path, index=False, float_format="%.6g")


NUMERIC_COLUMNS = (
    "median",
    "iqr",
    "rounds",
    "ratio",
    "ratio_iqr",
    "baseline_median",
    "baseline_iqr",
)


def read_csv(path: Path):  # -> pandas.DataFrame
    """perf.csv with text columns as strings ('' when empty) and numbers as floats (NaN)."""
    text = [c for c in COLUMNS if c not in NUMERIC_COLUMNS]
    df = pd.read_csv(path, keep_default_na=False, dtype=dict.fromkeys(text, str))
    for column in NUMERIC_COLUMNS:
        df[column] = pd.to_numeric(df[column], errors="coerce")
    return df


def write_outputs(
    rows: Sequence[Row], out: Path, *, benchmark_json: Path | None = None
) -> list[str]:
    """Write perf.csv, perf.png, perf.md (and a copy of pytest-benchmark's JSON) into `out`.

    The folder follows optbench's output rules (`bench.output.files.OutputFolder`): each file
    is replaced in one step at the end, so a failure leaves the previous results in place, and
    files optbench did not write are never touched. Returns the file names written.
    """
    command = " ".join(["python -m pytest", *sys.argv[1:]])
    with (
        OutputFolder.open(out, "perf", command, flag="perf output") as folder,
        folder.staged() as stage,
    ):
        write_csv(rows, stage / "perf.csv")
        plot(read_csv(stage / "perf.csv"), stage / "perf.png")
        (stage / "perf.md").write_text(markdown_section(stage / "perf.csv") + "\n")
        if benchmark_json is not None and Path(benchmark_json).is_file():
            shutil.copyfile(benchmark_json, stage / "benchmark.json")
        names = sorted(p.name for p in stage.iterdir())
    return names


# ----------------------------------------------------------------------------------------------
# The report's section

CASE_TITLES = {
    "1-step": "Optimizer step: scratch vs torch.optim for-loop",
    "2-harness": "Harness overhead: runner epoch vs a hand-written loop",
    "3-dataloader": "Batching: runner epoch vs the seeds' DataLoader loop",
    "4-gd-limit": "Full-batch GD epoch vs its two matrix products",
    "5-scaling": "Scaling of epoch time with n (log-log slope)",
    "6-memory": "Peak memory of a full-batch run",
    "9-engines": "Vectorised engine vs per-run engine: seconds per run at K runs per group",
    "10-agreement": "Vectorised vs per-run engine: bitwise runs, largest relative difference",
}


def _fmt_value(x: float, unit: str) -> str:
    return fmt.megabytes(x) if unit == "bytes" else fmt.seconds(x)


def markdown_section(perf_csv_path: str | os.PathLike, *, relative_to: Path | None = None) -> str:
    """The report's "## Performance" section from a perf.csv: targets, ratios, the plot.

    The plot is linked relative to `relative_to` (the folder of the markdown file that will
    hold this section; default: perf.csv's folder). A missing perf.csv gives a short section
    saying how to produce one.
    """
    path = Path(perf_csv_path)
    lines = ["## Performance", ""]
    if not path.is_file():
        lines.append(f"No performance results ({path} not found); `nox -s perf` writes them.")
        return "\n".join(lines)
    df = read_csv(path)
    devices = ", ".join(sorted(set(df["device"])))
    lines += [
        f"From `{path.name}` ({len(df)} rows, {devices}), written by `nox -s perf`. Every "
        "figure is a ratio of two measurements taken side by side in one process: interleaved "
        "rounds, the median over rounds of the per-round ratio, IQR in brackets. `<=` targets "
        "are time ratios (lower is better), `>=` targets speed-ups (higher is better).",
        "",
        "| case | what is compared | size | ratio [IQR] | target | met |",
        "|---|---|---|---|---|---|",
    ]
    judged_rows = df[df["target"] != ""]
    step = judged_rows[judged_rows["case"] == "1-step"]
    for (size, device), group in step.groupby(["size", "device"], sort=False):
        worst = group.loc[group["ratio"].idxmax()]
        n_met = int((group["met"] == "yes").sum())
        lines.append(
            f"| 1 | scratch / torch for-loop step, {len(group)} methods (worst: "
            f"{worst['method']}) | {size} ({device}) | {fmt.ratio(worst['ratio'])} "
            f"[{fmt.ratio(worst['ratio_iqr'])}] | {worst['target']} | "
            f"{'yes' if n_met == len(group) else 'no'} ({n_met}/{len(group)}) |"
        )
    for _, r in judged_rows[judged_rows["case"] != "1-step"].iterrows():
        number = r["case"].split("-", 1)[0]
        what = f"{r['candidate']} vs {r['baseline']}"
        if r["case"] == "5-scaling":
            what = f"{r['method']}: {r['metric']}"
        ratio = fmt.ratio(r["ratio"])
        if r["rounds"] > 1 and math.isfinite(r["ratio_iqr"]):
            ratio += f" [{fmt.ratio(r['ratio_iqr'])}]"
        lines.append(
            f"| {number} | {what} | {r['size']} ({r['device']}) | {ratio} | {r['target']} | "
            f"{r['met']} |"
        )
    lines += ["", *_step_table(df), *_notes(df)]
    image = path.with_name("perf.png")
    if image.is_file():
        base = Path(relative_to) if relative_to is not None else path.parent
        link = Path(os.path.relpath(image.resolve(), base.resolve())).as_posix()
        lines += ["", f"![Performance: ratios against targets, and scaling]({link})"]
    return "\n".join(lines)


def _step_table(df) -> list[str]:
    """Case 1 in full: scratch / torch for-loop per method and size, and against the fastest."""
    step = df[df["case"] == "1-step"]
    if step.empty:
        return []
    vs_loop = step[(step["impl"] == "scratch") & (step["target"] != "")]
    vs_best = step[step["baseline"].str.startswith("fastest")]
    sizes = list(dict.fromkeys(vs_loop["size"]))
    lines = [
        "Optimizer step, scratch / torch for-loop per method and parameter set (✗: target "
        "missed); in brackets the fastest torch variant and scratch / that variant:",
        "",
        "| method | " + " | ".join(sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for method in dict.fromkeys(vs_loop["method"]):
        cells = []
        for size in sizes:
            a = vs_loop[(vs_loop["method"] == method) & (vs_loop["size"] == size)]
            b = vs_best[(vs_best["method"] == method) & (vs_best["size"] == size)]
            cell = fmt.ratio(a["ratio"].iloc[0]) if len(a) else fmt.MISSING
            if len(a) and a["met"].iloc[0] == "no":
                cell += " ✗"
            if len(b):
                fastest = b["baseline"].iloc[0].removeprefix("fastest torch: ")
                cell += f" ({fastest}: {fmt.ratio(b['ratio'].iloc[0])})"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _notes(df) -> list[str]:
    lines = []
    for case in ("2-harness", "3-dataloader", "4-gd-limit", "6-memory"):
        for _, r in df[df["case"] == case].iterrows():
            lines.append(
                f"- {CASE_TITLES[case]} ({r['size']}): {r['candidate']} "
                f"{_fmt_value(r['median'], r['unit'])}, {r['baseline']} "
                f"{_fmt_value(r['baseline_median'], r['unit'])}"
                + (f"; {r['detail']}" if r["detail"] else "")
                + "."
            )
    return ["", *lines] if lines else []
