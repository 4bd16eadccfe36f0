"""Server-drawn charts: the geometry of bar charts and the social graph, as numbers for SVG.

The templates draw these as inline SVG (no chart library, nothing to fetch); labels stay text
the template escapes.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 160
BAR_WIDTH = 320
GRAPH_SIZE = 360
GRAPH_MARGIN = 40
PILLAR_COLOURS = 10  # .pillar-0 … .pillar-9 in studio.css


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value text and geometry."""

    label: str
    value: str
    y: int
    width: int
    colour: int


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars sized against the largest value."""

    bars: list[Bar]
    height: int
    label_width: int = LABEL_WIDTH
    bar_width: int = BAR_WIDTH


def pillar_colour(pillar: str) -> int:
    """A stable colour class number for a pillar name (the same in every view)."""
    return zlib.crc32(pillar.encode("utf-8")) % PILLAR_COLOURS


def bar_chart(rows: list[tuple[str, float, str]]) -> BarChart:
    """Bars for (label, value, value text) rows, in the order given."""
    largest = max((value for _, value, _ in rows), default=0) or 1
    bars = [Bar(label, text, index * (BAR_HEIGHT + BAR_GAP),
                max(1, round(BAR_WIDTH * value / largest)), pillar_colour(label))
            for index, (label, value, text) in enumerate(rows)]
    return BarChart(bars, max(1, len(bars)) * (BAR_HEIGHT + BAR_GAP))


@dataclass(frozen=True)
class GraphNode:
    """A persona on the circle."""

    id: str
    label: str
    x: float
    y: float


@dataclass(frozen=True)
class GraphEdge:
    """A tie between two placed personas."""

    x1: float
    y1: float
    x2: float
    y2: float
    relation: str


@dataclass(frozen=True)
class GraphDrawing:
    """The batch's social graph laid out on a circle."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    size: int = GRAPH_SIZE


def graph_drawing(nodes: list[tuple[str, str]],
                  edges: list[tuple[str, str, str]]) -> GraphDrawing:
    """Place (id, label) nodes on a circle and draw (source, target, relation) edges."""
    radius = GRAPH_SIZE / 2 - GRAPH_MARGIN
    centre = GRAPH_SIZE / 2
    placed: dict[str, GraphNode] = {}
    for index, (node_id, label) in enumerate(nodes):
        angle = 2 * math.pi * index / max(1, len(nodes)) - math.pi / 2
        placed[node_id] = GraphNode(node_id, label, round(centre + radius * math.cos(angle), 1),
                                    round(centre + radius * math.sin(angle), 1))
    lines = [GraphEdge(placed[s].x, placed[s].y, placed[t].x, placed[t].y, relation)
             for s, t, relation in edges if s in placed and t in placed]
    return GraphDrawing(list(placed.values()), lines)
