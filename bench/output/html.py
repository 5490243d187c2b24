"""report.html: the same `Doc` as report.md, as one self-contained page.

Opens offline: styles inline, PNGs embedded as data: URIs, plotly's JavaScript embedded once
(in the first interactive figure; the others reuse it); no font, script or style is fetched.
The summary comes first, then a table of contents and the sections.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from bench.output.doc import Block, Doc, Figure, Note, Raw, Section, Table, summary_section

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1d1d1f;background:#fff}
main{max-width:1180px;margin:0 auto;padding:16px 28px 60px}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:20px;margin:28px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:3px}h3{font-size:16px;margin:18px 0 6px}
.sub{color:#555;margin:0 0 10px;font-size:13px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13.5px}
th,td{border:1px solid #d5d5d5;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:92%;background:#f2f2f2;
padding:0 3px;border-radius:3px}
.summary{background:#f7fafc;border:1px solid #cfdde8;border-radius:6px;padding:4px 16px 8px}
.summary h2{border:none;margin-top:8px}.summary p{margin:4px 0}
.note{color:#555;font-size:12.5px}
nav{font-size:13.5px;columns:3;margin:6px 0 10px}nav a{display:block}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:13px;margin-top:4px}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:8px}
"""


def inline(text: str) -> str:
    """Escape, then the Markdown subset of `doc`: `code`, **bold**, *italic*."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<i>\1</i>", out)


def _table(t: Table) -> str:
    head = "".join(f"<th>{inline(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Plotly:
    """Embeds plotly's JavaScript in the first figure only."""

    def __init__(self) -> None:
        self.included = False

    def __call__(self, fig) -> str:
        out = fig.to_html(
            full_html=False,
            include_plotlyjs=not self.included,
            config={"displaylogo": False, "responsive": True},
        )
        self.included = True
        return out


def _figure(f: Figure, folder: Path, plotly: _Plotly) -> str:
    cap = f"<figcaption>{inline(f.caption)}</figcaption>"
    if f.interactive:
        divs = "".join(f"<div class='plot'>{plotly(fig)}</div>" for fig in f.interactive)
        return f"<figure><div class='plots'>{divs}</div>{cap}</figure>"
    png = folder / f.file
    if not png.exists():
        return f"<p class='note'>({html.escape(f.file)} was not written)</p>"
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    alt = html.escape(f.caption)
    return f"<figure><img alt='{alt}' src='data:image/png;base64,{data}'>{cap}</figure>"


def _block(b: Block, folder: Path, plotly: _Plotly) -> str:
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b, folder, plotly)
    if isinstance(b, Raw):
        return f"<pre class='note'>{html.escape(b.markdown)}</pre>"
    if isinstance(b, Note):
        return f"<p class='note'>{inline(b.text)}</p>"
    if isinstance(b, list):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b) + "</ul>"
    return f"<p>{inline(b)}</p>"


def _section(s: Section, folder: Path, plotly: _Plotly) -> str:
    tag = f"h{s.level}"
    body = "\n".join(_block(b, folder, plotly) for b in s.blocks)
    return f"<section id='{s.anchor}'><{tag}>{inline(s.title)}</{tag}>\n{body}</section>"


def render(doc: Doc, folder: Path) -> str:
    """The page; `folder` holds the PNGs to embed."""
    plotly = _Plotly()
    summary = _section(summary_section(doc.summary, doc.summary_title), folder, plotly)
    toc = "".join(
        f"<a href='#{s.anchor}'>{inline(s.title)}</a>" for s in doc.sections if s.level == 2
    )
    body = "\n".join(_section(s, folder, plotly) for s in doc.sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{inline(doc.title)}</h1><p class='sub'>{inline(doc.subtitle)}</p>"
        f"<div class='summary'>{summary}</div>"
        f"<h2>Contents</h2><nav>{toc}</nav>\n{body}</main></body></html>\n"
    )
