"""Line charts as server-rendered SVG: no script, no library, safe under a strict CSP.

Colours come from CSS classes (`series-0` ...) in the console's stylesheet; every text in the
SVG is escaped. A chart is a pure function of its points, so it is tested without a browser.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 12, 12, 26


@dataclass
class Series:
    label: str
    points: Sequence[tuple[float, float]]   # (wall time, value)

    @property
    def last(self) -> float:
        return self.points[-1][1] if self.points else 0.0


def nice_max(value: float) -> float:
    """The next 1/2/5 x 10^n at or above `value` (at least 1), for a readable y axis."""
    if value <= 1:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10**exp
        if top >= value:
            return float(top)
    return float(10 ** (exp + 1))


def fmt_number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k" if value % 1000 == 0 else f"{value / 1000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def line_chart(title: str, series: Iterable[Series], now: float, window: float = 600.0,
               unit: str = "", chart_id: str = "") -> Markup:
    series = list(series)
    top = nice_max(max((v for s in series for _, v in s.points), default=0.0))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    start = now - window

    def x(t: float) -> float:
        return PAD_LEFT + max(0.0, min(1.0, (t - start) / window)) * plot_w

    def y(v: float) -> float:
        return PAD_TOP + plot_h - (max(0.0, v) / top) * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}"' + (f' id="{escape(chart_id)}"' if chart_id else "") + ">",
             f"<title>{escape(title)}</title>"]
    for frac in (0.0, 0.5, 1.0):
        gy = PAD_TOP + plot_h - frac * plot_h
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">'
                     f"{escape(fmt_number(top * frac))}</text>")
    minutes = int(window // 60)
    for label, t in ((f"-{minutes}m", start), (f"-{minutes // 2}m", start + window / 2), ("now", now)):
        anchor = "start" if t == start else ("end" if t == now else "middle")
        parts.append(f'<text class="axis" x="{x(t):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                     f"{escape(label)}</text>")
    for i, s in enumerate(series):
        pts = [(t, v) for t, v in s.points if t >= start]
        if len(pts) >= 2:
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
            parts.append(f'<polyline class="line series-{i % 6}" points="{coords}"/>')
        elif len(pts) == 1:
            parts.append(f'<circle class="dot series-{i % 6}" cx="{x(pts[0][0]):.1f}" cy="{y(pts[0][1]):.1f}" r="2"/>')
    parts.append("</svg>")
    legend = "".join(f'<li><span class="swatch series-{i % 6}"></span>{escape(s.label)}: '
                     f'<strong>{escape(fmt_number(round(s.last, 2)))}</strong>{escape(unit)}</li>'
                     for i, s in enumerate(series))
    return Markup(f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>{"".join(parts)}'
                  f'<ul class="legend">{legend}</ul></figure>')
