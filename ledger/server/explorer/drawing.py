"""A person's identity graph laid out for inline SVG: boxes and curves with fixed coordinates.

The graph itself (nodes and edges from the audit trail) is `projections.graph`'s, the same
one `ledger graph` prints; this module only decides where each piece goes. Columns, left
to right: devices, amplitude IDs (the live one on top, merged ones below it), the user ID.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.graph import Edge, Graph, Node

ROW = 96  # vertical pitch between boxes
BOX_HEIGHT = 52
TOP = 16
COLUMNS = {"device": (8, 232), "live": (450, 196), "merged": (450, 196), "user": (850, 210)}  # x, width
WIDTH = 1068
LABEL = (150, 30)  # room an edge's two-line label needs, width and height
ALONG = (0.5, 0.3, 0.7, 0.18, 0.82)  # where on a straight edge its label may go, most central first
CAPTIONS = {"device": "device ID", "live": "amplitude ID", "merged": "merged amplitude ID", "user": "user ID"}
MAX_CHARS = 24  # of a value inside its box; the full value is in the box's tooltip


@dataclass(frozen=True)
class Box:
    node: Node
    x: int
    y: int
    width: int
    caption: str
    text: str  # the value, shortened to fit

    @property
    def middle(self) -> int:
        return self.y + BOX_HEIGHT // 2


@dataclass(frozen=True)
class Curve:
    edge: Edge
    path: str  # SVG path data
    label_x: int
    label_y: int
    anchor: str  # text-anchor of the label


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    box_height: int
    boxes: list[Box]
    curves: list[Curve]


def draw(graph: Graph) -> Drawing:
    """Place every node in its column and route every edge between the boxes it joins."""
    rows = {"device": 0, "amplitude": 0, "user": 0}
    boxes: dict[str, Box] = {}
    for node in sorted(graph.nodes, key=lambda node: node.kind == "merged"):  # the live ID heads its column
        column = "amplitude" if node.kind in ("live", "merged") else node.kind
        x, width = COLUMNS[node.kind]
        boxes[node.key] = Box(node, x, TOP + rows[column] * ROW, width, CAPTIONS[node.kind], _shortened(node.value))
        rows[column] += 1
    curves: list[Curve] = []
    for edge in graph.edges:
        if edge.source in boxes and edge.target in boxes:
            curves.append(_curve(edge, boxes[edge.source], boxes[edge.target], curves))
    height = TOP * 2 + max(1, *rows.values()) * ROW - (ROW - BOX_HEIGHT)
    return Drawing(WIDTH, height, BOX_HEIGHT, list(boxes.values()), curves)


def _curve(edge: Edge, source: Box, target: Box, placed: list[Curve]) -> Curve:
    """The edge's path, and a place for its label clear of the labels `placed` before it."""
    if edge.kind == "merged":  # within the amplitude ID column: an arc bulging to the right
        right, bend, end = source.x + source.width, source.x + source.width + 64, target.middle + 8
        path = f"M{right},{source.middle} C{bend},{source.middle} {bend},{end} {right + 2},{end}"
        return Curve(edge, path, bend - 8, (source.middle + target.middle) // 2, "start")
    if source.x > target.x:  # the user ID, right of its amplitude ID
        start, end = source.x, target.x + target.width + 2
    else:  # a device, left of its amplitude ID
        start, end = source.x + source.width, target.x - 2
    path = f"M{start},{source.middle} L{end},{target.middle}"
    spots = [(round(start + (end - start) * t), round(source.middle + (target.middle - source.middle) * t) - 4)
             for t in ALONG]
    x, y = next((spot for spot in spots if not any(_overlap(spot, other) for other in placed)), spots[0])
    return Curve(edge, path, x, y, "middle")


def _overlap(spot: tuple[int, int], other: Curve) -> bool:
    """Whether a centred label at `spot` would cover `other`'s label (merge labels are left-aligned)."""
    width, height = LABEL
    left = other.label_x - (0 if other.anchor == "start" else width // 2)
    return abs(spot[0] - width // 2 - left) < width and abs(spot[1] - other.label_y) < height


def _shortened(value: str) -> str:
    return value if len(value) <= MAX_CHARS else value[: MAX_CHARS - 1] + "…"
