"""Server-rendered SVG bar charts of the trends (no JavaScript, no external files).

Only what ``tables`` hands over is drawn: a hidden count is a dashed outline
with its mark ("<5" or the secondary mark), never a bar of its height.
"""

from __future__ import annotations

from dataclasses import dataclass

from casework.statistics.tables import Trend

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 560, 200, 16, 28, 8


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    period: str
    hidden: bool
    label_y: float


@dataclass
class Chart:
    key: str
    title: str
    width: int
    height: int
    baseline: float
    bars: list[Bar]


def bar_chart(trend: Trend) -> Chart:
    points = trend.points
    shown = [pt.row.value for pt in points if pt.row.value is not None]
    top = max(shown, default=0) or 1
    plot = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - 2 * LEFT) / max(len(points), 1)
    bars = []
    for index, point in enumerate(points):
        x = LEFT + index * slot + slot * 0.15
        value = point.row.value
        # A hidden count: an outline of a small fixed height, with its mark.
        height = plot * 0.12 if value is None else plot * value / top
        y = TOP + plot - height
        bars.append(
            Bar(
                x=round(x, 1),
                y=round(y, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                label=point.row.display,
                period=point.period.label,
                hidden=value is None,
                label_y=round(y - 4, 1),
            )
        )
    return Chart(trend.key, str(trend.label), WIDTH, HEIGHT, TOP + plot, bars)
