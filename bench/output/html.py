"""report.html: the same `Doc` as report.md, as one self-contained page.

Opens offline: styles inline, PNGs embedded as data: URIs (reduced to a 256-colour palette,
which line plots survive), no font, script or style fetched. Plotly's library is embedded once
for the whole page, gzip-compressed (4.8 MB -> 1.9 MB as base64) and unpacked by the browser's
own `DecompressionStream` (every current browser; an older one shows the PNGs' captions and a
note instead of the interactive charts). Each chart is a JSON spec drawn after that, and the
chart template they share is stored once. The summary comes first, its first table beside
the others (one screen), then a table of contents and the sections.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import io
import json
import re
from pathlib import Path

import plotly.offline
from PIL import Image

from bench.analysis.summary import Summary
from bench.output.doc import Block, Code, Doc, Figure, Note, Section, Table

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1d1d1f;background:#fff}
main{max-width:1360px;margin:0 auto;padding:10px 20px 60px}
h1{font-size:22px;margin:4px 0 0}h2{font-size:20px;margin:28px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:3px}h3{font-size:15px;margin:10px 0 4px}
.sub{color:#555;margin:0 0 6px;font-size:12.5px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13.5px}
th,td{border:1px solid #d5d5d5;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:92%;background:#f2f2f2;
padding:0 3px;border-radius:3px}
pre.code{background:#f6f6f6;padding:6px 10px;border-radius:4px;overflow-x:auto}
.summary{background:#f7fafc;border:1px solid #cfdde8;border-radius:6px;padding:2px 14px 6px}
.summary h2{border:none;margin:6px 0 2px;font-size:18px}.summary p{margin:2px 0}
.summary ul{margin:4px 0;padding-left:20px;font-size:13px}
/* The first table on the left, the others stacked on its right: the grid's auto columns
   shrink to the screen (cells wrap) rather than push a table below the first screen. */
.blocks{display:grid;grid-template-columns:auto auto;gap:0 18px;align-items:start;
justify-content:start}
.block{min-width:0}
@media (max-width:900px){.blocks{grid-template-columns:auto}.blocks .block{grid-row:auto}}
.block h3{margin:6px 0 2px}
.block table{font-size:12.5px;margin:2px 0 2px}
.block th,.block td{padding:1px 5px;max-width:19em}
caption{caption-side:bottom;text-align:left;color:#555;font-size:12px;padding-top:2px}
.note{color:#555;font-size:12.5px}
nav{font-size:13.5px;columns:3;margin:6px 0 10px}nav a{display:block}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:13px;margin-top:4px}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:8px}
.plot{min-height:360px}
"""

# Unpacks plotly once, then draws every chart from its JSON spec (shared template added back).
LOADER = """
(async () => {
  const plots = document.querySelectorAll('div.plot[data-spec]');
  if (!plots.length) return;
  const say = (text) => plots.forEach((d) => { d.textContent = text; });
  if (typeof DecompressionStream === 'undefined') {
    say('Interactive chart: needs a browser with DecompressionStream (2023 or later).');
    return;
  }
  const packed = document.getElementById('plotly-gz').textContent;
  const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const code = await new Response(stream).text();
  const script = document.createElement('script');
  script.textContent = code;
  document.head.appendChild(script);
  const template = JSON.parse(document.getElementById('plotly-template').textContent);
  const config = {displaylogo: false, responsive: true};
  for (const div of plots) {
    const spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
    spec.layout.template = template;
    Plotly.newPlot(div, spec.data, spec.layout, config);
  }
})();
"""


def inline(text: str) -> str:
    """Escape, then the Markdown subset of `doc`: `code`, **bold**, *italic*."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", out)


def _table(t: Table, caption: str = "") -> str:
    head = "".join(f"<th>{inline(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    cap = f"<caption>{inline(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@functools.lru_cache(maxsize=1)
def _plotly_packed() -> str:
    """plotly.min.js, gzip-compressed (deterministic: no timestamp) and base64-encoded."""
    code = plotly.offline.get_plotlyjs().encode()
    return base64.b64encode(gzip.compress(code, 9, mtime=0)).decode("ascii")


def _json(obj: object) -> str:
    """JSON safe inside a <script> element (no '</' sequence ends it early)."""
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return text.replace("</", "<\\/")


class _Charts:
    """Collects the page's interactive charts: a div each, their specs and one template."""

    def __init__(self) -> None:
        self.specs: list[str] = []
        self.template: dict | None = None

    def __call__(self, fig) -> str:
        spec = json.loads(fig.to_json())
        template = spec["layout"].pop("template", None)
        if self.template is None:
            self.template = template or {}
        n = len(self.specs)
        self.specs.append(
            f"<script type='application/json' id='plot-spec-{n}'>{_json(spec)}</script>"
        )
        return f"<div class='plot' data-spec='plot-spec-{n}'></div>"

    def scripts(self) -> str:
        if not self.specs:
            return ""
        return (
            "".join(self.specs)
            + f"<script type='application/json' id='plotly-template'>{_json(self.template)}"
            + "</script>"
            + f"<script type='application/gzip' id='plotly-gz'>{_plotly_packed()}</script>"
            + f"<script>{LOADER}</script>"
        )


def png_data(path: Path) -> str:
    """A PNG as base64, reduced to a 256-colour palette (about a third of the bytes)."""
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=0)
        buf = io.BytesIO()
        small.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(f: Figure, folder: Path, charts: _Charts) -> str:
    if f.interactive:
        cap = f"<figcaption>{inline(f.html_caption or f.caption)}</figcaption>"
        divs = "".join(charts(fig) for fig in f.interactive)
        return f"<figure><div class='plots'>{divs}</div>{cap}</figure>"
    cap = f"<figcaption>{inline(f.caption)}</figcaption>"
    png = folder / f.file
    if not png.is_file():
        return f"<p class='note'>({html.escape(f.file)} was not written)</p>"
    alt = html.escape(f.caption, quote=True)
    return f"<figure><img alt=\"{alt}\" src='data:image/png;base64,{png_data(png)}'>{cap}</figure>"


def _block(b: Block, folder: Path, charts: _Charts) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b, folder, charts)
    if isinstance(b, Code):
        return f"<pre class='code'><code>{html.escape(b.text)}</code></pre>"
    if isinstance(b, Note):
        return f"<p class='note'>{inline(b.text)}</p>"
    if isinstance(b, list):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b) + "</ul>"
    return f"<p>{inline(b)}</p>"


def _section(s: Section, folder: Path, charts: _Charts) -> str:
    tag = f"h{s.level}"
    body = "\n".join(_block(b, folder, charts) for b in s.blocks)
    return f"<section id='{s.anchor}'><{tag}>{inline(s.title)}</{tag}>\n{body}</section>"


def summary_html(summary: Summary, title: str) -> str:
    """The summary box: its first table on the left, the others stacked beside it (all on one
    screen), each note under its table."""
    parts = [f"<h2>{inline(title)}</h2>"]
    if summary.intro:
        parts.append(f"<p class='note'>{inline(summary.intro)}</p>")
    span = f" style='grid-row:span {max(1, len(summary.blocks) - 1)}'"  # the others' rows
    blocks = "".join(
        f"<div class='block'{span if i == 0 else ''}><h3>{inline(b.title)}</h3>"
        f"{_table(Table(b.header, b.rows), b.note)}</div>"
        for i, b in enumerate(summary.blocks)
    )
    parts.append(f"<div class='blocks'>{blocks}</div>")
    if summary.lines:
        parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in summary.lines) + "</ul>")
    return f"<section id='summary' class='summary'>{''.join(parts)}</section>"


def render(doc: Doc, folder: Path) -> str:
    """The page; `folder` holds the PNGs to embed."""
    charts = _Charts()
    toc = "".join(
        f"<a href='#{s.anchor}'>{inline(s.title)}</a>" for s in doc.sections if s.level == 2
    )
    body = "\n".join(_section(s, folder, charts) for s in doc.sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{inline(doc.title)}</h1><p class='sub'>{inline(doc.subtitle)}</p>"
        f"{summary_html(doc.summary, doc.summary_title)}"
        f"<h2>Contents</h2><nav>{toc}</nav>\n{body}</main>{charts.scripts()}</body></html>\n"
    )
