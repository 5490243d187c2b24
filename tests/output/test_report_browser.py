"""report.html in a real browser (headless Chromium via tests/browser/harness.py): no console
errors, no network request (everything is embedded), the summary on the first screen, plots
that are not blank. The screenshot is kept under results/browser/ for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

harness = pytest.importorskip(
    "tests.browser.harness", reason="the browser harness (tests/browser/harness.py) is not here"
)

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "results" / "browser"


def _nonblank(rendered, selector: str) -> bool:
    """The harness's "is this element drawn (not one flat colour)" check, whatever its name:
    a method of the result, or a function of the harness taking (result, selector)."""
    for name in ("nonblank", "is_nonblank", "non_blank"):
        if hasattr(rendered, name):
            return getattr(rendered, name)(selector)
        if hasattr(harness, name):
            return getattr(harness, name)(rendered, selector)
    raise AssertionError("the harness has no non-blank check")


def test_run_report_in_a_browser(tiny_report: Path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report_run.png"
    r = harness.render(tiny_report / "report.html", shot, width=1280, height=900)
    assert r.console_errors == []
    assert r.failed_requests == []
    assert r.title == "optbench report"
    md = (tiny_report / "report.md").read_text()
    # The first data row of the summary's first table (problem, fastest ...) is on screen.
    first_row = next(line for line in md.splitlines() if line.startswith("| crops15 |"))
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    screen = re.sub(r"\s+", " ", r.first_screen_text)
    assert "Summary" in screen
    assert "Convergence speed" in screen
    assert cells[1].replace("`", "") in screen, (cells, screen[:400])
    assert _nonblank(r, ".js-plotly-plot")
    assert _nonblank(r, "figure img")
    assert Path(r.screenshot).stat().st_size > 10_000
