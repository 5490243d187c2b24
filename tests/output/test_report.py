"""report.md and report.html: one summary, the same strings, a self-contained page."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from bench.analysis.summary import Block, Summary
from bench.output import doc, palette
from bench.output.html import inline, render


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_summary_comes_first_and_md_and_html_show_the_same_numbers(tiny_report: Path):
    md = (tiny_report / "report.md").read_text()
    page = (tiny_report / "report.html").read_text()
    assert md.index("## Summary") < md.index("## What was run")
    md_summary = _section(md, "## Summary", "## What was run")
    html_summary = html.unescape(re.sub(r"<[^>]+>", " ", _section(page, "id='summary'", "</div>")))
    numbers = re.findall(r"-?\d[\d.]*(?:e[-+]?\d+)?(?: ?[µm]?s)?x?", md_summary)
    assert len(numbers) > 20
    for n in numbers:
        assert n in html_summary, n
    # the cost of an epoch relative to GD is stated with the data's own numbers
    runs = pd.read_csv(tiny_report / "runs.csv")
    assert "Cost of an epoch relative to GD" in md_summary
    assert "Convergence speed" in md_summary
    assert "Generalisation" in md_summary
    assert set(runs["method"]) <= set(re.findall(r"[a-z_]+", md))


def test_summary_is_one_screen_and_report_md_has_no_wide_lines(tiny_report: Path):
    md = (tiny_report / "report.md").read_text()
    summary = _section(md, "## Summary", "## What was run").splitlines()
    assert len(summary) <= 40
    assert max(len(line) for line in summary) <= 100
    assert max(len(line) for line in md.splitlines() if not line.startswith("Generated")) <= 120


def test_html_is_self_contained(tiny_report: Path):
    page = (tiny_report / "report.html").read_text()
    assert page.count("<script") >= 1
    # plotly's library embedded once (its banner), nothing fetched from anywhere
    assert page.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|url\(http", page)
    assert "data:image/png;base64," in page
    assert "<nav>" in page
    assert "href='#methods'" in page
    assert "p ← p − lr·g" in page  # the equations
    assert (tiny_report / "report.html").stat().st_size < 8e6


def test_wide_tables_are_split_keeping_the_first_column():
    t = doc.Table(["method", *[f"problem{i}" for i in range(8)]],
                  [["`gd`", *["123.4 [120.1, 130.9]"] * 8]])  # fmt: skip
    text = doc.md_table(t)
    assert max(len(line) for line in text.splitlines()) <= doc.MD_WIDTH
    assert text.count("| method |") >= 2
    assert "problem7" in text


def test_html_renders_the_same_doc(tmp_path: Path):
    s = Summary([Block("Speed", ["problem", "fastest"], [["p", "adam 3 [2, 4] ~ sgd"]], "n")])
    d = doc.Doc("T", "sub", s, [doc.Section("Notes", ["a `code` and **bold**", ["x < y"]])])
    page = render(d, tmp_path)
    assert "adam 3 [2, 4] ~ sgd" in page
    assert "<code>code</code>" in page
    assert "x &lt; y" in page
    assert "adam 3 [2, 4] ~ sgd" in doc.markdown(d)
    assert inline("loss* and loss*") == "loss* and loss*"


def test_palette_is_fixed_for_builtins_and_distinct_for_plugins():
    c = palette.colors(["my_plugin", "other"])
    assert c["gd"] == palette.FIXED["gd"]
    assert len(set(c.values())) == len(c)
    assert palette.color_of("my_plugin") == c["my_plugin"]
    assert [f for f, _ in palette.facets(["gd", "sgd", "adam"])] == [""]
    many = ["gd", "sgd", "minibatch", "momentum", "nesterov", "sgd_wd", "adam", "adamw"]
    assert palette.facets(many) == [
        ("SGD family", ["gd", "sgd", "minibatch", "momentum", "nesterov", "sgd_wd"]),
        ("Adam family", ["adam", "adamw"]),
    ]
