"""How the list commands (`review list`, `outbox list`, `staff list`) print rows: a header row and aligned
columns — a rich table on a terminal, plain text columns when stdout is a pipe or a file (for grep, awk,
`head -1`), one line saying so when there is nothing to list. `--json` is the machines' form."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Sequence
from typing import TextIO

GAP = "  "


def cell_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: CJK characters (帳號, 公司名稱) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text
               if not unicodedata.combining(ch))


def minute(iso: object) -> str:
    """An ISO 8601 time of the JSON form as the tables show it: '2026-11-29 10:02' (Taipei time)."""
    return str(iso or "")[:16].replace("T", " ")


def plain_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The header and the rows in columns as wide as their widest cell; the last column is not padded."""
    widths = [max(cell_width(line[i]) for line in (headers, *rows)) for i in range(len(headers))]
    out = []
    for line in (headers, *rows):
        cells = [cell + " " * (width - cell_width(cell)) for cell, width in zip(line, widths, strict=True)]
        out.append(GAP.join(cells).rstrip())
    return out


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str, *,
                out: TextIO | None = None, right: Sequence[str] = ()) -> None:
    """``rows`` (each a sequence of strings, one per header) under ``headers``; ``empty`` alone when there
    are none. ``right`` names the columns aligned right on a terminal (numbers)."""
    stream = out or sys.stdout
    if not rows:
        print(empty, file=stream)
        return
    if not stream.isatty():
        print("\n".join(plain_lines(headers, rows)), file=stream)
        return
    # rich only for a person at a terminal: a piped run does not pay for importing it.
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in headers:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(file=stream, markup=False, highlight=False).print(table)  # cells are data, not markup
