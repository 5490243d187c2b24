"""The harness can fail: each check is shown catching the fault it exists for."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.browser.harness import Browser, Rendered, missing_binaries, render

pytestmark = pytest.mark.browser


def page(tmp_path: Path, body: str, head: str = "<title>optbench test</title>") -> Path:
    path = tmp_path / "page.html"
    path.write_text(
        f'<!doctype html><html><head><meta charset="utf-8">{head}</head>'
        f"<body style='margin:0;background:#fff'>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def show(browser: Browser, tmp_path: Path, body: str, **kwargs) -> Rendered:
    return browser.render(page(tmp_path, body), tmp_path / "shot.png", **kwargs)


def test_clean_page_renders_without_errors(browser: Browser, tmp_path: Path) -> None:
    shown = show(browser, tmp_path, "<h1>Optimizer report</h1><p>all runs done</p>", width=800)

    assert shown.clean, (shown.console_errors, shown.failed_requests, shown.network_fetches)
    assert shown.title == "optbench test"
    assert shown.url.startswith("file://")
    assert "Optimizer report" in shown.first_screen_text.splitlines()
    with Image.open(shown.screenshot) as image:
        assert image.format == "PNG"
        assert image.size == (800, 900)
        assert len(image.convert("RGB").getcolors(maxcolors=800 * 900)) > 1


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("console.error('plot data missing')", "plot data missing"),
        ("throw new Error('figure exploded')", "figure exploded"),
        ("window.addEventListener('load', () => undefinedPlotly.newPlot())", "undefinedPlotly"),
    ],
    ids=["console.error", "thrown", "thrown-on-load"],
)
def test_console_errors_are_reported(
    browser: Browser, tmp_path: Path, script: str, expected: str
) -> None:
    shown = show(browser, tmp_path, f"<h1>report</h1><script>{script}</script>")

    assert any(expected in message for message in shown.console_errors), shown.console_errors
    assert not shown.clean


def test_a_remote_script_is_a_network_fetch_and_is_blocked(
    browser: Browser, tmp_path: Path
) -> None:
    shown = show(
        browser, tmp_path, '<h1>report</h1><script src="https://example.com/x.js"></script>'
    )

    assert shown.network_fetches == ["https://example.com/x.js"]
    assert [f.split(": ")[0] for f in shown.failed_requests] == ["https://example.com/x.js"]
    assert not shown.clean


def test_a_missing_local_file_is_a_failed_request_not_a_fetch(
    browser: Browser, tmp_path: Path
) -> None:
    shown = show(browser, tmp_path, '<img src="absent.png" alt="">')

    assert shown.network_fetches == []
    assert len(shown.failed_requests) == 1
    assert "absent.png" in shown.failed_requests[0]


def test_text_below_the_first_screen_is_not_in_it(browser: Browser, tmp_path: Path) -> None:
    body = "<h1>above the fold</h1><div style='height:3000px'></div><p>below the fold</p>"
    shown = show(browser, tmp_path, body)

    assert "above the fold" in shown.first_screen_text
    assert "below the fold" not in shown.first_screen_text
    # A taller viewport reaches it: the cut is the screen, not the element.
    taller = show(browser, tmp_path, body, height=3200)
    assert "below the fold" in taller.first_screen_text


def test_hidden_text_is_not_visible_text(browser: Browser, tmp_path: Path) -> None:
    body = "<p style='visibility:hidden'>ghost</p><p style='display:none'>gone</p><p>here</p>"
    shown = show(browser, tmp_path, body)

    assert shown.first_screen_text.splitlines() == ["here"]


DRAWINGS = """
<div id="empty" style="width:200px;height:100px"></div>
<canvas id="canvas" width="200" height="100"></canvas>
<script>
  const ctx = document.getElementById('canvas').getContext('2d');
  ctx.fillStyle = '#1f77b4'; ctx.fillRect(20, 20, 100, 50);
</script>
<svg id="svg" width="200" height="100"><circle cx="50" cy="50" r="40" fill="#d62728"/></svg>
<canvas id="blank-canvas" width="200" height="100"></canvas>
<img id="broken" src="absent.png" width="50" height="50" alt="">
"""


@pytest.mark.parametrize(
    ("selector", "blank"),
    [
        ("#empty", True),
        ("#canvas", False),
        ("#svg", False),
        ("#blank-canvas", True),
        ("#broken", True),
        ("#no-such-element", True),
    ],
)
def test_blank_elements_are_told_from_drawn_ones(
    browser: Browser, tmp_path: Path, selector: str, blank: bool
) -> None:
    shown = show(browser, tmp_path, DRAWINGS, check=[selector])

    assert shown.blank(selector) is blank, shown.colours


def test_blank_asks_only_about_checked_selectors(browser: Browser, tmp_path: Path) -> None:
    shown = show(browser, tmp_path, DRAWINGS, check=["#svg"])

    with pytest.raises(KeyError, match="#canvas"):
        shown.blank("#canvas")


@pytest.mark.skipif(missing_binaries() is not None, reason=str(missing_binaries()))
def test_render_runs_its_own_browser(tmp_path: Path) -> None:
    shown = render(page(tmp_path, "<h1>standalone</h1>"), tmp_path / "out" / "shot.png")

    assert shown.clean
    assert shown.first_screen_text == "standalone"
    assert shown.screenshot.is_file()


@pytest.mark.parametrize("plotlyjs", [True, "cdn"], ids=["inline", "cdn"])
def test_a_plotly_figure_renders_only_when_self_contained(
    browser: Browser, tmp_path: Path, plotlyjs: bool | str
) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    figure = go.Figure(go.Scatter(x=[0, 1, 2, 3], y=[3.0, 1.0, 2.0, 0.5], name="adam"))
    figure.update_layout(title="Loss per epoch")
    html = tmp_path / "figure.html"
    figure.write_html(html, include_plotlyjs=plotlyjs, full_html=True, div_id="loss")

    shown = browser.render(html, tmp_path / "figure.png", check=["#loss"])

    if plotlyjs is True:
        assert shown.clean, (shown.console_errors, shown.failed_requests, shown.network_fetches)
        assert "Loss per epoch" in shown.first_screen_text
        assert not shown.blank("#loss", threshold=10), shown.colours
    else:  # the CDN script is blocked: a fetch, a failure, an error, and nothing drawn
        assert len(shown.network_fetches) == 1
        assert shown.network_fetches[0].startswith("https://cdn.plot.ly/")
        assert any("Plotly" in message for message in shown.console_errors)
        assert shown.blank("#loss")
