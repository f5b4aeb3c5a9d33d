"""The project's HTML pages (the routing report, the routing paths of a text, the comparison report): one
stylesheet, the page around a body, tables of text cells, escaping, Markdown rendered.

Pages are self-contained but for the images they link to: no scripts, no external styles.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

# One stylesheet for every page. The general rules suit the report tables (numbers right-aligned, the first
# column a label; a table wider than the page scrolls by itself, the page does not); table.grid is the
# routing grid of a text: cells of expert chips (.e) wrapping within a narrow cell, aligned to the top, with a
# header that stays in view while scrolling a long text.
STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;display:block;overflow-x:auto;max-width:100%}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
    "td:first-child,th:first-child{text-align:left}"
    "code{font-family:monospace;background:#f3f3f3;padding:0 3px;border-radius:3px}"
    "img{max-width:100%;border:1px solid #eee}figure{margin:1em 0 2em}"
    "figcaption{color:#555;font-size:0.9em;max-width:900px}"
    ".note{background:#fff6d6;padding:0.5em 1em;border-left:4px solid #e0b000}"
    "table.grid{display:table}table.grid td,table.grid th{padding:2px 3px;text-align:left;"
    "vertical-align:top}table.grid th{position:sticky;top:0;font-size:12px}"
    "table.grid td.t{font-family:monospace;background:#fafafa;white-space:nowrap}"
    "table.grid td.c{max-width:6.4em;line-height:1.1}"
    ".e{display:inline-block;width:2.9em;margin:1px;padding:0 2px;border-radius:3px;font-size:12px;"
    "border:2px solid transparent;white-space:nowrap;box-sizing:border-box}"
    ".e small{margin-left:2px;color:#222;font-size:9px}.e.again{border-color:#111}"
    ".legend{font-size:13px;margin:0.5em 0 1em}.legend .e{width:auto;min-width:1.8em;text-align:center}"
    ".text{white-space:pre-wrap;font-family:monospace;line-height:1.8;max-width:1100px}"
    ".tok{border:1px solid #bbb;border-radius:2px;margin:0 1px}"
)


def escape(value: object) -> str:
    """``value`` as text that HTML shows as it is (``&``, ``<``, ``>`` and both quotes escaped), so it is safe
    in element content and in quoted attribute values."""
    return html.escape(str(value))


def page(title: str, body: str) -> str:
    """A whole page: ``title`` (escaped) as the window title and the first heading, then ``body``, which is
    HTML and inserted as it is."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{body}</body></html>\n"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table of text: a header row, then one row per entry of ``rows``; every cell is escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def markdown_html(text: str) -> str:
    """Markdown (CommonMark with tables) as HTML. Raw HTML in ``text`` is escaped, not passed through, so text
    from a configuration (a description, a title) cannot inject markup."""
    from markdown_it import MarkdownIt  # rich's Markdown parser: installed with rich

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
