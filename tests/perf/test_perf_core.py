"""The measurement core of `nox -s perf`: targets, statistics, interleaving, perf.csv, report."""

from __future__ import annotations

import math

import pytest

from bench.perf import results
from bench.perf.timing import (
    COLUMNS,
    Interleaved,
    Row,
    Stats,
    Target,
    above_floor,
    compare,
    loglog_slope,
)
from bench.run.device import CpuBackend


@pytest.mark.parametrize("text", ["<= 1.00", "<= 1.10", ">= 2", ">= 10", "<= 2.5", "0.9 to 1.1"])
def test_targets_print_and_parse_back(text):
    assert str(Target.parse(text)) == text


def test_target_directions():
    assert Target("<=", 1.0).met(1.0)
    assert not Target("<=", 1.0).met(1.0001)
    assert Target(">=", 10).met(10.5)
    assert not Target(">=", 10).met(9.9)
    assert Target("to", 0.9, 1.1).met(1.05)
    assert not Target("to", 0.9, 1.1).met(0.85)
    assert not Target("<=", 1.0).met(math.nan)
    with pytest.raises(ValueError, match="operator"):
        Target("<", 1.0)


def test_stats_median_and_iqr():
    s = Stats.of([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.median, s.iqr, s.n) == (3.0, 2.0, 5)
    assert Stats.of([7.0]) == Stats(7.0, 0.0, 1)
    assert math.isnan(Stats.of([]).median)


class FakeClock(CpuBackend):
    """A backend whose stopwatch reads a clock the variants advance: exact, instant timings."""

    def __init__(self) -> None:
        self.now = 0.0

    def stopwatch(self):
        clock = self

        class Watch:
            def start(self) -> None:
                self.t0 = clock.now

            def stop(self) -> float:
                return clock.now - self.t0

        return Watch()


def fake_timing(costs: dict[str, float], warmup: int = 1) -> tuple[Interleaved, list[str]]:
    clock, order = FakeClock(), []

    def variant(name: str):
        def call() -> None:
            order.append(name)
            clock.now += costs[name]

        return call

    timing = Interleaved({n: variant(n) for n in costs}, backend=clock, warmup=warmup)
    return timing, order


def test_rounds_rotate_the_order_and_drop_the_warm_up():
    timing, order = fake_timing({"a": 2.0, "b": 1.0, "c": 4.0}, warmup=1)
    for _ in range(4):
        timing.round()
    assert order == list("abc" + "bca" + "cab" + "abc")
    assert timing.rounds == 3
    assert timing.measured("a") == [2.0, 2.0, 2.0]
    assert timing.ratio("a", "b") == Stats(2.0, 0.0, 3)


def test_calibrate_makes_a_sample_last_long_enough():
    timing, order = fake_timing({"a": 0.001, "b": 0.004}, warmup=0)
    timing.min_sample_s = 0.01
    timing.calibrate()
    assert timing.calls == 10  # from the fastest variant
    order.clear()
    timing.round()
    assert order == ["a"] * 10 + ["b"] * 10
    assert timing.measured("b") == [pytest.approx(0.004)]  # time per call


def test_compare_gives_time_ratios_or_speedups():
    timing, _ = fake_timing({"runner": 1.0, "loader": 4.0})
    for _ in range(3):
        timing.round()
    labels = dict(case="x", method="m", impl="scratch", size="s", device="cpu")
    slow = compare(timing, "runner", "loader", target=Target("<=", 1.0), **labels)
    assert (slow.ratio, slow.met, slow.median, slow.baseline_median) == (0.25, "yes", 1.0, 4.0)
    fast = compare(timing, "runner", "loader", target=Target(">=", 10), speedup=True, **labels)
    assert (fast.ratio, fast.target, fast.met) == (4.0, ">= 10", "no")
    assert fast.metric.startswith("speed-up")
    ref = compare(timing, "loader", "runner", target=None, **labels)
    assert (ref.target, ref.met) == ("", "")


def test_loglog_slope_and_the_overhead_floor():
    ns = [1e3, 1e4, 1e5, 1e6]
    linear = [2e-6 * n for n in ns]
    slope, _ = loglog_slope(ns, linear)
    assert slope == pytest.approx(1.0)
    floored = [1e-3 + t for t in linear]  # a 1 ms floor hides the growth at small n
    first = above_floor(ns, floored)
    assert ns[first] == 1e4  # keeps at least the three largest n
    assert above_floor(ns[:2], floored[:2]) == 0


def row(case: str, ratio: float, target: str, **kw) -> Row:
    met = "" if not target else ("yes" if Target.parse(target).met(ratio) else "no")
    base = dict(
        case=case,
        method="gd",
        impl="scratch",
        size="tiny",
        device="cpu",
        median=1e-4,
        iqr=1e-5,
        unit="s",
        rounds=5,
        ratio=ratio,
        ratio_iqr=0.01,
        target=target,
        met=met,
        metric="time ratio: candidate / baseline",
        candidate="cand",
        baseline="base",
        baseline_median=1.2e-4,
        baseline_iqr=1e-5,
        detail="",
    )
    base.update(kw)
    return Row(**base)


def every_case() -> list[Row]:
    rows = []
    for size, target in (("tiny", "<= 1.00"), ("large", "<= 1.10")):
        for method, ratio in (("gd", 0.9), ("adam", 1.2)):
            rows.append(row("1-step", ratio, target, method=method, size=size))
            rows.append(row("1-step", 0.5, "", method=method, size=size, impl="torch-fused"))
            rows.append(
                row("1-step", 2.0, "", method=method, size=size, baseline="fastest torch: fused")
            )
    rows.append(row("2-harness", 1.02, "<= 1.10", size="crops15 B=1", detail="12 rows"))
    rows.append(row("3-dataloader", 12.0, ">= 10", size="400000x100 B=1024"))
    rows.append(row("4-gd-limit", 1.1, "<= 1.30", size="400000x100 full batch"))
    for n, t in ((1000, 1e-3), (10_000, 2e-3), (100_000, 2e-2)):
        rows.append(row("5-scaling", math.nan, "", size=f"n={n}", median=t))
    rows.append(row("5-scaling", 1.0, "0.9 to 1.1", size="n=1000..100000"))
    rows.append(row("6-memory", 1.9, "<= 2.5", size="1e6", unit="bytes", median=7.7e8))
    return rows


def test_outputs_and_the_report_section(tmp_path):
    out = tmp_path / "results" / "perf"
    names = results.write_outputs(every_case(), out)
    assert names == ["perf.csv", "perf.md", "perf.png"]
    df = results.read_csv(out / "perf.csv")
    assert tuple(df.columns) == COLUMNS
    assert len(df) == len(every_case())
    assert set(df["met"]) == {"yes", "no", ""}

    md = results.markdown_section(out / "perf.csv")
    assert md.startswith("## Performance")
    assert "| 1 | scratch / torch for-loop step, 2 methods (worst: adam) | tiny (cpu) | 1.20" in md
    assert "| no (1/2) |" in md
    assert "| 3 | cand vs base | 400000x100 B=1024 (cpu) | 12.00 [0.01] | >= 10 | yes |" in md
    assert "| gd | 0.90 (fused: 2.00) | 0.90 (fused: 2.00) |" in md
    assert "| adam | 1.20 ✗ (fused: 2.00) |" in md
    assert "770 MB" in md
    assert md.endswith("(perf.png)")
    report_dir = tmp_path / "results" / "latest"
    report_dir.mkdir()
    linked = results.markdown_section(out / "perf.csv", relative_to=report_dir)
    assert linked.endswith("(../perf/perf.png)")


def test_report_section_without_results(tmp_path):
    md = results.markdown_section(tmp_path / "perf.csv")
    assert md.startswith("## Performance")
    assert "nox -s perf" in md
