"""Geometry of the inline SVG charts. The templates draw them (so every label is escaped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.grading.schemas import PASS_MARK

MAX_SCORE = 5.0
# Colour-blind-safe palette (Okabe-Ito), each with its own dash pattern so print and
# monochrome still tell the series apart.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "4 4", "1 3", "10 4", "3 6")


@dataclass
class Bar:
    label: str
    value: float
    y: float
    """Top of the bar; its label sits on the line above it."""
    width: float
    passed: bool


@dataclass
class BarChart:
    width: int
    height: int
    left: int
    """Where the bars start (their labels start there too, on their own line above each bar, so
    a long topic title never squeezes the bars on a narrow screen)."""
    bar_h: int
    plot_w: int
    pass_x: float
    bars: list[Bar]
    ticks: list[tuple[float, str]]

    @property
    def axis_y(self) -> float:
        return self.height - 18


def topic_bars(
    topic_scores: Mapping[str, float], titles: Mapping[str, str] | None = None, *, width: int = 420
) -> BarChart:
    """One bar per topic (labelled by its title where the bank declares one).

    The view box is narrow (420 units): the chart is drawn at most a little wider than that, so
    its 12-unit text stays readable when a phone scales it down to 375 px."""
    left, label_h, bar_h, gap, top = 6, 19, 18, 10, 4
    plot_w = width - left - 40
    row = label_h + bar_h + gap
    bars = []
    for i, (topic, score) in enumerate(topic_scores.items()):
        value = max(0.0, min(MAX_SCORE, float(score)))
        label = (titles or {}).get(topic, topic)
        bars.append(Bar(label, value, top + i * row + label_h, plot_w * value / MAX_SCORE, value >= PASS_MARK))
    height = top + len(bars) * row + 20
    ticks = [(left + plot_w * v / MAX_SCORE, str(v)) for v in range(6)]
    return BarChart(width, height, left, bar_h, plot_w, left + plot_w * PASS_MARK / MAX_SCORE, bars, ticks)


@dataclass
class Point:
    x: float
    y: float
    value: float
    label: str


@dataclass
class Series:
    name: str
    color: str
    dash: str
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass
class LineChart:
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    series: list[Series]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    pass_y: float
    legend: list[tuple[float, float, Series]] = field(default_factory=list)
    """``(x, y, series)`` of each legend entry, three to a row under the plot."""


def score_lines(
    series: Mapping[str, Sequence[tuple[int, float]]], x_labels: Sequence[str], *, width: int = 640, height: int = 300
) -> LineChart:
    """One line per topic over the sessions (x: session index, y: score 0-5)."""
    left, top, right, bottom = 44, 12, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(x_labels))

    def x_of(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y_of(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(MAX_SCORE, v)) / MAX_SCORE)

    out = []
    for k, (name, pts) in enumerate(series.items()):
        out.append(
            Series(
                name,
                PALETTE[k % len(PALETTE)],
                DASHES[k % len(DASHES)],
                [Point(x_of(i), y_of(v), v, x_labels[i] if i < len(x_labels) else str(i + 1)) for i, v in pts],
            )
        )
    every = max(1, n // 8)
    x_ticks = [(x_of(i), label) for i, label in enumerate(x_labels) if i % every == 0]
    y_ticks = [(y_of(v), str(v)) for v in range(6)]
    chart = LineChart(
        width, height + 22 * ((len(out) + 2) // 3), left, top, plot_w, plot_h, out, y_ticks, x_ticks, y_of(PASS_MARK)
    )
    col_w = plot_w / 3
    chart.legend = [(left + (k % 3) * col_w, top + plot_h + 40 + (k // 3) * 22, s) for k, s in enumerate(out)]
    return chart
