"""report.md and report.html: one summary, the same strings, a self-contained page, every
section as HTML, labels that are true."""

from __future__ import annotations

import base64
import gzip
import html
import io
import re
from pathlib import Path

import pandas as pd
from PIL import Image

import optimizers
from bench import cli
from bench.analysis.summary import Block, Summary
from bench.output import doc, palette, run_report
from bench.output import html as html_out
from bench.output.html import inline, render
from optimizers.plugins import method_from_path


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_summary_comes_first_and_md_and_html_show_the_same_numbers(tiny_report: Path):
    md = (tiny_report / "report.md").read_text()
    page = (tiny_report / "report.html").read_text()
    assert md.index("## Summary") < md.index("## What was run")
    md_summary = _section(md, "## Summary", "## What was run")
    html_summary = html.unescape(
        re.sub(r"<[^>]+>", " ", _section(page, "id='summary'", "</section>"))
    )
    numbers = re.findall(r"-?\d[\d.]*(?:e[-+]?\d+)?(?: ?[µm]?s)?x?", md_summary)
    assert len(numbers) > 20
    for n in numbers:
        assert n in html_summary, n
    assert "Speed: first to the target" in md_summary
    assert "Timing: time to the target and cost of an epoch" in md_summary
    assert "Generalisation" in md_summary
    runs = pd.read_csv(tiny_report / "runs.csv")
    assert set(runs["method"]) <= set(re.findall(r"[a-z_]+", md))


def test_summary_is_one_screen_and_report_md_has_no_wide_lines(tiny_report: Path):
    md = (tiny_report / "report.md").read_text()
    summary = _section(md, "## Summary", "## What was run").splitlines()
    assert len(summary) <= 40
    assert max(len(line) for line in summary) <= 100
    assert max(len(line) for line in md.splitlines() if not line.startswith("Generated")) <= 120


def test_html_is_self_contained_and_carries_plotly_once_compressed(tiny_report: Path):
    page = (tiny_report / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|url\(http", page)
    assert "data:image/png;base64," in page
    assert "<nav>" in page
    assert "href='#methods'" in page
    assert "p ← p − lr·g" in page  # the equations
    packed = re.findall(r"<script type='application/gzip' id='plotly-gz'>([^<]+)</script>", page)
    assert len(packed) == 1  # one copy of the library for every chart
    assert gzip.decompress(base64.b64decode(packed[0])).startswith(b"/**")  # plotly.min.js
    assert page.count("plotly.js v") == 0  # never embedded uncompressed as well
    assert page.count("id='plotly-template'") == 1  # the charts' template, once
    specs = re.findall(r"id='plot-spec-\d+'", page)
    assert len(specs) == page.count("data-spec='plot-spec-") >= 1
    assert (tiny_report / "report.html").stat().st_size < 3e6


def test_every_section_is_html_none_escaped_markdown(tmp_path: Path):
    perf = (
        "From `perf.csv`: ratios.\n\n| case | ratio |\n|---|---|\n| 1 | 0.98 |\n\n"
        "- a note\n  continued\n- another\n\n    python -m bench run\n\n![perf](perf.png)"
    )
    blocks = doc.from_markdown(perf)
    assert [type(b).__name__ for b in blocks] == ["str", "Table", "list", "Code", "Figure"]
    assert blocks[1] == doc.Table(["case", "ratio"], [["1", "0.98"]])
    assert blocks[2] == ["a note continued", "another"]
    d = doc.Doc("T", "sub", Summary([]), [doc.Section("Performance", blocks)])
    page = render(d, tmp_path)
    assert "<pre class='note'>" not in page
    assert "| case |" not in page
    assert "<table><thead><tr><th>case</th>" in page
    assert "<pre class='code'><code>python -m bench run</code></pre>" in page


def test_wide_tables_are_split_keeping_the_first_column():
    t = doc.Table(["method", *[f"problem{i}" for i in range(8)]],
                  [["`gd`", *["123.4 [120.1, 130.9]"] * 8]])  # fmt: skip
    text = doc.md_table(t)
    assert max(len(line) for line in text.splitlines()) <= doc.MD_WIDTH
    assert text.count("| method |") >= 2
    assert "problem7" in text


def test_html_renders_the_same_doc(tmp_path: Path):
    s = Summary([Block("Speed", ["problem", "fastest"], [["p", "adam 3 ~ sgd 4"]], "n")])
    d = doc.Doc("T", "sub", s, [doc.Section("Notes", ["a `code` and **bold**", ["x < y"]])])
    page = render(d, tmp_path)
    assert "adam 3 ~ sgd 4" in page
    assert "<caption>n</caption>" in page  # a block's note sits under its table
    assert "<code>code</code>" in page
    assert "x &lt; y" in page
    assert "adam 3 ~ sgd 4" in doc.markdown(d)
    assert inline("loss* and loss*") == "loss* and loss*"


def test_a_plugin_has_a_real_update_line(tmp_path: Path):
    plugin = tmp_path / "signsgd.py"
    plugin.write_text(
        "import torch\n\nclass SignSGD(torch.optim.Optimizer):\n"
        "    def __init__(self, params, lr=0.01):\n"
        "        super().__init__(params, {'lr': lr})\n\n"
        "    def step(self, closure=None):\n        pass\n"
    )
    method = method_from_path(f"{plugin}:SignSGD", name="signsgd_report_test")
    optimizers.register(method)
    try:
        [item] = doc.methods_section([method.name]).blocks[1]
    finally:
        optimizers.METHODS.pop(method.name)
    assert item.startswith("`signsgd_report_test`: SignSGD from signsgd.py. Update: the plug-in")
    assert not item.rstrip().endswith("Update:")


def test_counts_are_as_run_and_accuracy_only_where_a_task_has_it(tiny_report: Path):
    md = (tiny_report / "report.md").read_text()
    runs = pd.read_csv(tiny_report / "runs.csv")
    assert f"- {len(runs)} runs over {runs['problem'].nunique()} problems" in md
    assert "accuracy" not in md.lower()  # crops15 is a regression: no accuracy anywhere
    assert "inf" not in _section(md, "## Summary", "## What was run")
    for line in md.splitlines():
        if line.startswith("| crops15 | "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[1].isdigit():  # the problems table: runs, methods, seeds
                assert int(cells[1]) == len(runs)


def test_interval_words_follow_the_seed_count():
    three = pd.DataFrame({"problem": "p", "method": "m", "impl": "scratch", "device": "cpu",
                          "seed": [0, 1, 2]})  # fmt: skip
    assert run_report.interval_text(three) == "median [seeds' range] over seeds"
    nine = pd.concat([three.assign(seed=three["seed"] + k) for k in (0, 3, 6)])
    assert "95% interval" in run_report.interval_text(nine)


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


def test_pngs_are_embedded_as_palette_pngs(tmp_path: Path):
    png = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(png)
    data = base64.b64decode(html_out.png_data(png))
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "P"
        assert image.size == (40, 30)


def test_impl_torch_with_a_plugin_keeps_the_builtins_in_the_summary(tmp_path: Path):
    plugin = tmp_path / "signsgd.py"
    plugin.write_text(
        "import torch\n\nclass SignSGD(torch.optim.Optimizer):\n"
        "    def __init__(self, params, lr=0.01):\n"
        "        super().__init__(params, {'lr': lr})\n\n"
        "    @torch.no_grad()\n"
        "    def step(self, closure=None):\n"
        "        for group in self.param_groups:\n"
        "            for p in group['params']:\n"
        "                p.add_(torch.sign(p.grad), alpha=-group['lr'])\n"
    )
    out = tmp_path / "out"
    methods = f"gd,adam,{plugin}:SignSGD"
    argv = ["run", "--datasets", "crops15", "--methods", methods, "--impl", "torch",
            "--epochs", "3", "--seeds", "0,1", "--no-parity", "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    md = (out / "report.md").read_text()
    summary = md[md.index("## Summary") : md.index("## What was run")]
    assert "shown: torch, plugin." in summary
    final = md[md.index("Final training loss") :]
    for method in ("`gd`", "`adam`", "`signsgd`"):
        assert method in final.split("\n\n")[1]  # every method in the details' first table
