"""Small inline SVG charts for the HTML report: no script, no CDN, readable without a network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH_PX = 560
BAR_HEIGHT_PX = 22
LABEL_WIDTH_PX = 220
LINE_HEIGHT_PX = 210
PAD_PX = 30
LINE_TOP_PX = 50  # room for the title above a 100 % point's label
PASS_COLOUR = "#3b7d4f"
FAIL_COLOUR = "#b4443b"
TARGET_COLOUR = "#333"


def bar_chart(title: str, bars: Sequence[tuple[str, float, bool | None]], *,
              scale: float = 1.0, target: float | None = None, fmt: str = ".3g") -> str:
    """Horizontal bars (label, value, good?) on a 0..scale axis, with an optional target line."""
    height = PAD_PX + BAR_HEIGHT_PX * len(bars) + PAD_PX
    span = WIDTH_PX - LABEL_WIDTH_PX - PAD_PX
    parts = [f'<svg class="chart" role="img" width="{WIDTH_PX}" height="{height}" '
             f'viewBox="0 0 {WIDTH_PX} {height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="4" y="18" font-weight="bold">{escape(title)}</text>']
    for row, (label, value, good) in enumerate(bars):
        y = PAD_PX + row * BAR_HEIGHT_PX
        length = max(0.0, min(value / scale, 1.0)) * span if scale else 0.0
        colour = PASS_COLOUR if good in (True, None) else FAIL_COLOUR
        parts.append(f'<text x="4" y="{y + 15}">{escape(label[:34])}</text>')
        parts.append(f'<rect class="bar" x="{LABEL_WIDTH_PX}" y="{y + 3}" width="{length:.1f}" '
                     f'height="{BAR_HEIGHT_PX - 6}" fill="{colour}"/>')
        parts.append(f'<text x="{LABEL_WIDTH_PX + length + 4:.1f}" y="{y + 15}">'
                     f"{format(value, fmt)}</text>")
    if target is not None and scale:
        x = LABEL_WIDTH_PX + min(target / scale, 1.0) * span
        parts.append(f'<line x1="{x:.1f}" y1="{PAD_PX - 4}" x2="{x:.1f}" y2="{height - PAD_PX + 4}"'
                     f' stroke="{TARGET_COLOUR}" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, points: Sequence[tuple[str, float | None]]) -> str:
    """A 0..1 line over labelled steps (a week with no value leaves a gap)."""
    span_x = WIDTH_PX - 3 * PAD_PX  # the last label is centred on its point: keep it inside
    span_y = LINE_HEIGHT_PX - LINE_TOP_PX - PAD_PX
    step = span_x / max(len(points) - 1, 1)
    parts = [f'<svg class="chart" role="img" width="{WIDTH_PX}" height="{LINE_HEIGHT_PX}" '
             f'viewBox="0 0 {WIDTH_PX} {LINE_HEIGHT_PX}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="4" y="18" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{PAD_PX}" y1="{LINE_TOP_PX + span_y}" x2="{PAD_PX + span_x}" '
             f'y2="{LINE_TOP_PX + span_y}" stroke="#999"/>']
    coordinates = []
    for number, (label, value) in enumerate(points):
        x = PAD_PX + number * step
        parts.append(f'<text x="{x:.1f}" y="{LINE_HEIGHT_PX - 8}" text-anchor="middle">'
                     f"{escape(label)}</text>")
        if value is not None:
            y = LINE_TOP_PX + (1 - value) * span_y
            coordinates.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{PASS_COLOUR}"/>')
            parts.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">'
                         f"{value:.0%}</text>")
    if len(coordinates) > 1:
        parts.append(f'<polyline class="line" points="{" ".join(coordinates)}" fill="none" '
                     f'stroke="{PASS_COLOUR}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)
