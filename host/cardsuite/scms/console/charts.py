"""Charts drawn on the server: a horizontal bar chart's geometry, which the template turns into inline SVG
(no script, nothing fetched: the console's Content-Security-Policy allows neither)."""

from __future__ import annotations

from dataclasses import dataclass

LABEL_WIDTH = 190
BAR_WIDTH = 360
ROW = 20
LABEL_CHARS = 28


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: int


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    width: int = LABEL_WIDTH + BAR_WIDTH + 60
    label_width: int = LABEL_WIDTH
    row: int = ROW

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * self.row + 10


def bar_chart(title: str, items: list[tuple[str, int]]) -> BarChart:
    """Bars scaled to the largest value; labels cut to fit (the tables beside the charts have them whole)."""
    top = max((value for _, value in items), default=0) or 1
    bars = [Bar(label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…", value, 5 + i * ROW,
                round(BAR_WIDTH * value / top)) for i, (label, value) in enumerate(items)]
    return BarChart(title, bars)
