"""Charts drawn on the server as SVG shapes: no script library, nothing inline for the CSP.

Each function turns figures into plain numbers (rectangles, points, labels) in a fixed
view box; the templates write them out as SVG elements.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.web.reports import DayFigures

WIDTH = 720
HEIGHT = 200
PAD_LEFT = 40
PAD_BOTTOM = 22
PAD_TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the tooltip


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class DailyChart:
    width: int
    height: int
    calls: list[Bar]
    answered: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    baseline: float
    empty: bool


def _nice_ceiling(value: int) -> int:
    """The next round number at or above ``value`` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def daily_chart(days: list[DayFigures]) -> DailyChart:
    """Calls per day as bars, the answered ones overlaid."""
    top = _nice_ceiling(max((d.calls for d in days), default=0))
    plot_w = WIDTH - PAD_LEFT
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    base = float(HEIGHT - PAD_BOTTOM)
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.8, 1.0)
    calls: list[Bar] = []
    answered: list[Bar] = []
    for i, d in enumerate(days):
        x = PAD_LEFT + i * slot + (slot - bar_w) / 2
        h = plot_h * d.calls / top
        calls.append(Bar(x, base - h, bar_w, h, f"{d.day}: {d.calls} calls"))
        ha = plot_h * d.answered / top
        answered.append(Bar(x, base - ha, bar_w, ha, f"{d.day}: {d.answered} answered"))
    marks = (0, top // 2, top) if top % 2 == 0 else (0, top)
    y_ticks = [Tick(PAD_LEFT - 6, base - plot_h * m / top, str(m)) for m in marks]
    every = max(1, len(days) // 8)
    x_ticks = [
        Tick(PAD_LEFT + i * slot + slot / 2, HEIGHT - 6, d.day.strftime("%b %d"))
        for i, d in enumerate(days)
        if i % every == 0
    ]
    return DailyChart(
        WIDTH,
        HEIGHT,
        calls,
        answered,
        y_ticks,
        x_ticks,
        base,
        empty=not any(d.calls for d in days),
    )


@dataclass(frozen=True)
class FunnelBar:
    label: str
    count: int
    width: float  # in the 0-100 view box
    share: str  # of the first step


def funnel_bars(steps: list[tuple[str, int]]) -> list[FunnelBar]:
    first = steps[0][1] if steps else 0
    return [
        FunnelBar(
            label,
            count,
            100 * count / first if first else 0.0,
            f"{100 * count / first:.1f}%" if first else "–",
        )
        for label, count in steps
    ]
