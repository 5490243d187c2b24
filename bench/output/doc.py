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
    """A PNG written next to the report (`file`, relative to the report's folder);
    `interactive` (plotly figures) replaces it in HTML, with `html_caption` where the
    interactive version shows something else than the PNG."""

    file: str
    caption: str
    interactive: Sequence[Any] = ()
    html_caption: str | None = None


@dataclass(frozen=True)
class Code:
    """A command or another verbatim line, shown as code in both renderings."""

    text: str


@dataclass(frozen=True)
class Note:
    """A small-print line under a table (what a symbol or a target means)."""

    text: str


Block = str | Table | Figure | Code | Note | list  # a list is a bullet list of strings


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
    blocks: list[Block] = [Note(summary.intro)] if summary.intro else []
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
    """The update rule of every method present (from `optimizers.get(name).equation`); a
    plug-in, which states no equation, is named by its class and hyperparameters."""
    items = []
    for m in optimizers_in_order(methods):
        rec = optimizers.get(m)
        if rec.equation:
            items.append(f"`{m}`: {rec.summary} Update: {rec.equation}")
            continue
        defaults = ", ".join(f"{k}={v}" for k, v in rec.hparams.items())
        items.append(
            f"`{m}`: {rec.summary}. Update: the plug-in class's own `step()` (no equation "
            "given)" + (f"; hyperparameters set: {defaults}" if defaults else "") + "."
        )
    return Section("Methods", ["g = gradient; μ momentum, λ weight decay.", items])


def _cells(row: str) -> list[str]:
    """The cells of a Markdown table row, `\\|` kept as a literal bar."""
    inner = row.strip().removeprefix("|").removesuffix("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def from_markdown(text: str) -> list[Block]:
    """Blocks from the Markdown subset other modules write (the perf section): paragraphs,
    `| tables |`, `- ` bullet lists, `![alt](path)` images, indented code lines and `#`
    headings (as bold paragraphs), so that report.html renders them as HTML too."""
    blocks: list[Block] = []
    lines = text.splitlines()
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(" ".join(p.strip() for p in para))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        image = re.fullmatch(r"!\[(.*)\]\((.+)\)", line.strip())
        if line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i].strip()):
                    rows.append(_cells(lines[i]))
                i += 1
            blocks.append(Table(rows[0], rows[1:]))
            continue
        if line.startswith(("- ", "* ")):
            flush()
            items = []
            while i < len(lines) and (lines[i].startswith(("- ", "* ", "  ")) and lines[i].strip()):
                if lines[i].startswith(("- ", "* ")):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            blocks.append(items)
            continue
        if image:
            flush()
            blocks.append(Figure(image[2], image[1]))
        elif line.startswith("    ") and line.strip():
            flush()
            blocks.append(Code(line.strip()))
        elif line.startswith("#"):
            flush()
            blocks.append(f"**{line.lstrip('#').strip()}**")
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


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
    if isinstance(block, Code):
        return f"    {block.text}"
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
