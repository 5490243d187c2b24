"""report.html in a real browser (headless Chromium via tests/browser/harness.py): no console
errors, no network request (everything is embedded), the summary on the first screen, plots
that are not blank. The screenshot is kept under results/browser/ for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import browser  # noqa: F401  (the fixture: skips without Chromium)
from tests.browser.harness import Browser

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "results" / "browser"
pytestmark = pytest.mark.browser
PLOTS = (".js-plotly-plot", "figure img")


def test_run_report_in_a_browser(tiny_report: Path, browser: Browser):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report_run.png"
    r = browser.render(tiny_report / "report.html", shot, width=1280, height=900, check=PLOTS)
    assert r.console_errors == []
    assert r.failed_requests == []
    assert r.network_fetches == []
    assert r.title == "optbench report"
    md = (tiny_report / "report.md").read_text()
    # The first data row of the summary's first table (problem, fastest ...) is on screen.
    first_row = next(line for line in md.splitlines() if line.startswith("| crops15 |"))
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    screen = re.sub(r"\s+", " ", r.first_screen_text)
    assert "Summary" in screen
    assert "Convergence speed" in screen
    assert cells[1].replace("`", "") in screen, (cells, screen[:400])
    assert not r.blank(".js-plotly-plot")
    assert not r.blank("figure img")
    assert Path(r.screenshot).stat().st_size > 10_000
