"""report.html in a real browser (headless Chromium via tests/browser/harness.py): no console
errors, no network request (everything is embedded), plots that are not blank, and the first
screen of the default report at 1400x900 answering speed, cost and generalisation. The
screenshots are kept under results/browser/ for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import browser  # noqa: F401  (the fixture: skips without Chromium)
from tests.browser.harness import Browser
from tests.output import crosscheck

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "results" / "browser"
pytestmark = pytest.mark.browser
PLOTS = (".js-plotly-plot", "figure img")


def test_run_report_in_a_browser(tiny_report: Path, browser: Browser):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report_run.png"
    r = browser.render(
        tiny_report / "report.html", shot, width=1280, height=900, check=PLOTS, settle_s=2.0
    )
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
    assert "Speed: first to the target" in screen
    assert cells[1].replace("`", "") in screen, (cells, screen[:400])
    assert not r.blank(".js-plotly-plot")  # plotly unpacked itself and drew
    assert not r.blank("figure img")
    assert Path(r.screenshot).stat().st_size > 10_000


@pytest.mark.slow
def test_the_default_reports_first_screen_answers_speed_cost_and_generalisation(
    default_report: Path,
    browser: Browser,  # noqa: F811
):
    """At 1400x900, before any scrolling: the three summary tables, every one of their rows,
    and the rule that reads them."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report_default_first_screen.png"
    r = browser.render(default_report / "report.html", shot, width=1400, height=900)
    assert r.clean, (r.console_errors, r.failed_requests, r.network_fetches)
    screen = re.sub(r"\s+", " ", r.first_screen_text)
    md = (default_report / "report.md").read_text()
    tables = crosscheck.md_tables(crosscheck.summary_text(md))
    titles = [
        "Speed: first to the target (epochs)",
        "Timing: time to the target and cost of an epoch",
        "Generalisation: lowest hold-out loss",
    ]
    assert set(titles) <= set(tables)
    for title in titles:
        assert title in screen
        for row in tables[title][1:]:  # every row, down to the last, is on the first screen
            for cell in row:
                assert cell.replace("`", "") in screen, (title, cell)
    assert "sign test over paired seeds" in screen
    assert "suggestive" in screen
