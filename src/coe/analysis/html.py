"""The project's HTML pages (the routing report, the routing paths of a text, the comparison report): one
stylesheet, the page around a body, tables of text cells, escaping.

Pages are self-contained but for the images they link to: no scripts, no external styles.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

# One stylesheet for every page. The general rules suit the report tables (numbers right-aligned, the first
# column a label); table.grid is the routing grid of a text: cells of expert chips (.e), aligned to the top,
# never wrapped, with a header that stays in view while scrolling a long text.
STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
    "img{max-width:100%;border:1px solid #eee}figure{margin:1em 0 2em}"
    "figcaption{color:#555;font-size:0.9em;max-width:900px}"
    ".note{background:#fff6d6;padding:0.5em 1em;border-left:4px solid #e0b000}"
    "table.grid td,table.grid th{padding:2px 4px;text-align:left;vertical-align:top;white-space:nowrap}"
    "table.grid th{position:sticky;top:0}table.grid td.t{font-family:monospace;background:#fafafa}"
    ".e{display:inline-block;margin:1px;padding:0 3px;border-radius:3px;font-size:12px}"
    ".e small{margin-left:2px;color:#333;font-size:10px}"
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
