"""Tables as kubectl prints them: plain columns, and within the terminal's width.

A name is never cut. When the columns do not fit, the optional ones go first (in the order
given), then the last column, if it may wrap (a message), wraps onto more lines. Names wider
than the terminal on their own make the table wider: they are still not cut.
"""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

GAP = "   "


@dataclass(frozen=True)
class Column:
    header: str
    optional: bool = False
    wraps: bool = False


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> str:
    """The table in at most `width` columns (names may make it wider: they are never cut)."""
    shown = list(range(len(columns)))
    while _width(columns, rows, shown) > width:
        optional = [i for i in shown if columns[i].optional]
        if not optional:
            break
        shown.remove(optional[0])
    widths = {i: max([len(columns[i].header), *(len(row[i]) for row in rows)]) for i in shown}
    last = shown[-1]
    if columns[last].wraps and _width(columns, rows, shown) > width:
        room = width - sum(widths[i] for i in shown[:-1]) - len(GAP) * (len(shown) - 1)
        widths[last] = max(room, len(columns[last].header), 10)
    lines = [_line([columns[i].header for i in shown], [widths[i] for i in shown])]
    for row in rows:
        cells = [row[i] for i in shown]
        if columns[last].wraps:
            wrapped = textwrap.wrap(cells[-1], widths[last]) or [""]
            lines.append(_line([*cells[:-1], wrapped[0]], [widths[i] for i in shown]))
            pad = sum(widths[i] for i in shown[:-1]) + len(GAP) * (len(shown) - 1)
            lines += [" " * pad + more for more in wrapped[1:]]
        else:
            lines.append(_line(cells, [widths[i] for i in shown]))
    return "\n".join(lines)


def _width(columns: Sequence[Column], rows: Sequence[Sequence[str]], shown: list[int]) -> int:
    widths = [max([len(columns[i].header), *(len(row[i]) for row in rows)]) for i in shown]
    return sum(widths) + len(GAP) * (len(shown) - 1)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return GAP.join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """kubectl's short age: 45s, 12m, 5h, 3d."""
    if not timestamp:
        return "<unknown>"
    moment = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or dt.datetime.now(dt.UTC)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2 or (unit == "m" and seconds >= 120):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
