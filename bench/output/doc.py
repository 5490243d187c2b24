"""A report as data: sections of paragraphs, tables and figures, rendered to Markdown here and
to HTML by `bench.output.html`. Both reports (run, sweep) build one `Doc`, so report.md and
report.html show the same strings and cannot disagree.

Inline markup in every string is a small Markdown subset both renderers understand:
`code`, **bold**, *italic*.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optimizers
from bench.analysis.summary import Summary

MD_WIDTH = 120  # no line of report.md wider than this where a table can be split
TEXT_WIDTH = 100  # prose is wrapped at this width


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    """A PNG written next to the report; `interactive` (plotly figures) replaces it in HTML."""

    file: str
    caption: str
    interactive: Sequence[Any] = ()


@dataclass(frozen=True)
class Raw:
    """Markdown that only report.md shows (e.g. the perf section, written elsewhere)."""

    markdown: str


@dataclass(frozen=True)
class Note:
    """A small-print line under a table (what a symbol or a target means)."""

    text: str


Block = str | Table | Figure | Raw | Note | list  # a list is a bullet list of strings


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Doc:
    title: str
    subtitle: str
    summary: Summary
    sections: list[Section] = field(default_factory=list)
    summary_title: str = "Summary"


def summary_section(summary: Summary, title: str = "Summary") -> Section:
    """The summary's blocks as a section of tables and lines (both renderers use this)."""
    blocks: list[Block] = []
    for b in summary.blocks:
        blocks += [f"**{b.title}**", Table(b.header, b.rows)]
        if b.note:
            blocks.append(Note(b.note))
    if summary.lines:
        blocks.append(list(summary.lines))
    return Section(title, blocks)


def optimizers_in_order(methods) -> list[str]:
    present = set(methods)
    return [m for m in optimizers.names() if m in present]


def methods_section(methods) -> Section:
    """The update rule of every method present (from `optimizers.get(name).equation`)."""
    items = []
    for m in optimizers_in_order(methods):
        rec = optimizers.get(m)
        items.append(f"`{m}`: {rec.summary} Update: {rec.equation}")
    return Section("Methods", ["g = gradient; μ momentum, λ weight decay.", items])


# ----------------------------------------------------------------------------------------------
# Markdown


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def md_table(table: Table, width: int = MD_WIDTH) -> str:
    """A Markdown table; split into several (each keeping the first column) when wider than
    `width`, so the report reads in a terminal and a diff."""
    n = len(table.header)
    widths = [max(len(str(r[i])) for r in [table.header, *table.rows]) + 3 for i in range(n)]
    groups: list[list[int]] = [[]]
    used = widths[0] + 1
    for i in range(1, n):
        if groups[-1] and used + widths[i] > width:
            groups.append([])
            used = widths[0] + 1
        groups[-1].append(i)
        used += widths[i]
    out = []
    for cols in groups:
        idx = [0, *cols]
        lines = [_md_row([table.header[i] for i in idx]), "|" + "---|" * len(idx)]
        lines += [_md_row([row[i] for i in idx]) for row in table.rows]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(
        text,
        TEXT_WIDTH,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _md_block(block: Block) -> str:
    if isinstance(block, Table):
        return md_table(block)
    if isinstance(block, Figure):
        return f"![{block.file}]({block.file})\n\n{wrap(block.caption)}"
    if isinstance(block, Raw):
        return block.markdown
    if isinstance(block, Note):
        return wrap(block.text)
    if isinstance(block, list):
        return "\n".join(wrap(f"- {item}", "  ") for item in block)
    return wrap(block)


def markdown(doc: Doc) -> str:
    parts = [f"# {doc.title}", wrap(doc.subtitle)]
    for section in [summary_section(doc.summary, doc.summary_title), *doc.sections]:
        parts.append(f"{'#' * section.level} {section.title}")
        parts += [_md_block(b) for b in section.blocks]
    return "\n\n".join(p for p in parts if p) + "\n"
