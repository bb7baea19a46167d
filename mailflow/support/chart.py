"""The dashboard's activity chart as server-rendered SVG: mails sent, bounced and replied per day.

No script and no CDN: the page works offline and behind the port's proxy. Every point carries a <title>
so hovering shows the exact figure, and the SVG names itself for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from mailflow.support.queries import DayActivity

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 28, 36


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


SERIES = (
    Series("sent", "寄出", "#0b5394"),
    Series("bounced", "退信", "#b00020"),
    Series("replied", "回信", "#1b6e3a"),
)


def nice_ceiling(value: int) -> int:
    """A round axis top at or above ``value`` (1, 2, 5 × 10^n), so gridlines land on whole numbers."""
    if value <= 4:
        return 4
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor * 4:
                return step * factor * 4
        step *= 10


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: int, top: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _grid(top: int) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i // 4
        y = _y(value, top)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#cfd6de"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value}</text>')
    return parts


def _day_labels(days: Sequence[DayActivity]) -> list[str]:
    parts = []
    every = max(1, len(days) // 6)
    for i, day in enumerate(days):
        if i % every == 0 or i == len(days) - 1:
            parts.append(f'<text x="{_x(i, len(days)):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                         f'font-size="11">{day.day.month}/{day.day.day}</text>')
    return parts


def _line(series: Series, days: Sequence[DayActivity], top: int) -> list[str]:
    points = [(_x(i, len(days)), _y(getattr(d, series.key), top), d) for i, d in enumerate(days)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
    parts = [f'<polyline class="series-{series.key}" fill="none" stroke="{series.colour}" stroke-width="2" '
             f'points="{path}"/>']
    for x, y, d in points:
        label = f"{d.day.isoformat()} {series.label} {getattr(d, series.key)}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{series.colour}">'
                     f"<title>{escape(label)}</title></circle>")
    return parts


def _legend() -> list[str]:
    parts = []
    for i, series in enumerate(SERIES):
        x = LEFT + i * 90
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{series.colour}"/>')
        parts.append(f'<text x="{x + 16}" y="16" font-size="12">{escape(series.label)}</text>')
    return parts


def render_activity_svg(days: Sequence[DayActivity]) -> str:
    """The chart for ``days`` (oldest first). An empty list still gives a valid, labelled SVG."""
    totals = {s.key: sum(getattr(d, s.key) for d in days) for s in SERIES}
    summary = "、".join(f"{s.label} {totals[s.key]} 封" for s in SERIES)
    title = f"最近 {len(days)} 天每日郵件:{summary}"
    top = nice_ceiling(max((getattr(d, s.key) for d in days for s in SERIES), default=0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="activity-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'role="img" aria-label={quoteattr(title)}>', f"<title>{escape(title)}</title>"]
    parts += _grid(top) + _legend()
    if days:
        parts += _day_labels(days)
        for series in SERIES:
            parts += _line(series, days, top)
    parts.append("</svg>")
    return "\n".join(parts)
