"""A model card as Markdown and as one self-contained HTML file (no external URL of any kind:
styles inline, images as ``data:`` URIs), so it opens offline in any browser."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import polars as pl

from models.markdown import markdown_table


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Facts:
    """Label → value pairs."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    frame: pl.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Image:
    png: bytes
    alt: str


Block = Text | Facts | Table | Image


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Card:
    title: str
    subtitle: str
    sections: list[Section]


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_markdown(card: Card) -> str:
    lines = [f"# {card.title}", "", card.subtitle, ""]
    lines += [f"- [{s.title}](#{s.id})" for s in card.sections] + [""]
    for section in card.sections:
        lines += [f'<a id="{section.id}"></a>', "", f"## {section.title}", ""]
        for block in section.blocks:
            lines += [_markdown_block(block), ""]
    return "\n".join(lines)


def _markdown_block(block: Block) -> str:
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Facts):
        return "\n".join(f"- **{k}**: {v}" for k, v in block.items)
    if isinstance(block, Table):
        caption = f"*{block.caption}*\n\n" if block.caption else ""
        return caption + markdown_table(block.frame)
    return f"![{block.alt}]({_data_uri(block.png)})"


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: .3em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
img { max-width: 100%; border: 1px solid #eee; }
nav ol { columns: 2; }
"""


def to_html(card: Card) -> str:
    e = html.escape
    toc = "".join(f'<li><a href="#{s.id}">{e(s.title)}</a></li>' for s in card.sections)
    body = [
        f"<h1>{e(card.title)}</h1>",
        f"<p>{e(card.subtitle)}</p>",
        f"<nav><ol>{toc}</ol></nav>",
    ]
    for section in card.sections:
        parts = "".join(_html_block(b) for b in section.blocks)
        body.append(f'<section id="{section.id}"><h2>{e(section.title)}</h2>{parts}</section>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(card.title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _cell(value: object) -> str:
    """As ``markdown_table`` writes cells: floats to 4 significant digits, missing as –."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Text):
        return "".join(f"<p>{e(p)}</p>" for p in block.text.split("\n\n"))
    if isinstance(block, Facts):
        items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in block.items)
        return f"<dl>{items}</dl>"
    if isinstance(block, Table):
        if block.frame.is_empty():
            return f"<p><em>{e(block.caption)}</em>: (none)</p>"
        head = "".join(f"<th>{e(c)}</th>" for c in block.frame.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
            for row in block.frame.rows()
        )
        caption = f"<caption>{e(block.caption)}</caption>" if block.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<figure><img alt="{e(block.alt)}" src="{_data_uri(block.png)}"></figure>'
