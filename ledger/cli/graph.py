"""One person as a graph: the user ID's binding, amplitude IDs, merges and devices.

Built from the person's audit trail, then written as Mermaid (renders on GitHub) or
Graphviz dot. Nodes and edges are plain data first so both formats say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.cli.render import when
from projections.models import AuditEntry, Identity


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    kind: str  # "user", "live", "merged" or "device"
    value: str  # the ID itself, for links and short captions


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    kind: str  # the audit fact: "bound", "merged" or "linked"
    position: int  # where in the ledger the fact was recorded
    time: int  # the event time of the call behind it


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]


def person_graph(identity: Identity, audit: Sequence[AuditEntry]) -> Graph:
    """user ID -> live amplitude ID (bound), merged ID -> live ID (merged), device -> amplitude ID (linked)."""
    live = identity.amplitude_id
    nodes = [Node(f"a{live}", f"amplitude ID {live}", "live", str(live))]
    nodes += [Node(f"a{merged}", f"amplitude ID {merged} (merged)", "merged", str(merged))
              for merged in identity.merged_amplitude_ids]
    edges: list[Edge] = []
    devices: dict[str, str] = {}
    for entry in audit:
        fact = (entry.kind, entry.position, entry.event_time)
        if entry.kind in ("bound", "rebound") and entry.user_id is not None:
            nodes.insert(0, Node("u", f"user ID {entry.user_id}", "user", entry.user_id))
            edges.append(Edge("u", f"a{entry.amplitude_id}", f"bound {when(entry.event_time)}", *fact))
        elif entry.kind == "merged":
            label = f"merged {when(entry.event_time)}"
            edges.append(Edge(f"a{entry.amplitude_id}", f"a{entry.merged_amplitude_id}", label, *fact))
        elif entry.kind == "linked":
            if entry.device_id not in devices:
                devices[entry.device_id] = f"d{len(devices) + 1}"
                nodes.append(Node(devices[entry.device_id], f"device {entry.device_id}", "device", entry.device_id))
            edges.append(Edge(devices[entry.device_id], f"a{entry.amplitude_id}", "linked", *fact))
    return Graph(nodes, edges)


_MERMAID_SHAPES = {"user": ('(["', '"])'), "live": ('(("', '"))'), "merged": ('("', '")'), "device": ('["', '"]')}
_DOT_SHAPES = {"user": "ellipse", "live": "doublecircle", "merged": "circle", "device": "box"}


def mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        lines.append(f"    {node.key}{opening}{node.label.replace(chr(34), '#quot;')}{closing}")
    lines += [f'    {edge.source} -->|"{edge.label}"| {edge.target}' for edge in graph.edges]
    lines += [f"    class {node.key} merged" for node in graph.nodes if node.kind == "merged"]
    lines.append("    classDef merged stroke-dasharray: 5 3")
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    lines = ["digraph person {", "    rankdir=LR;"]
    for node in graph.nodes:
        style = ", style=dashed" if node.kind == "merged" else ""
        lines.append(f"    {node.key} [label={_quoted(node.label)}, shape={_DOT_SHAPES[node.kind]}{style}];")
    lines += [f"    {edge.source} -> {edge.target} [label={_quoted(edge.label)}];" for edge in graph.edges]
    lines.append("}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
