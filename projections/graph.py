"""One person as a graph: the user ID's binding, amplitude IDs, merges and devices.

Built from the person's audit trail as plain data, on the read side, so every drawing says the
same thing: the command line writes it as Mermaid or Graphviz dot (`ledger.cli.graph`), the
explorer lays it out as SVG (`ledger.server.explorer.drawing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    kind: str  # the audit fact: "bound", "rebound", "merged" or "linked"
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
            edges.append(Edge("u", f"a{entry.amplitude_id}", *fact))
        elif entry.kind == "merged":
            edges.append(Edge(f"a{entry.amplitude_id}", f"a{entry.merged_amplitude_id}", *fact))
        elif entry.kind == "linked":
            if entry.device_id not in devices:
                devices[entry.device_id] = f"d{len(devices) + 1}"
                nodes.append(Node(devices[entry.device_id], f"device {entry.device_id}", "device", entry.device_id))
            edges.append(Edge(devices[entry.device_id], f"a{entry.amplitude_id}", *fact))
    return Graph(nodes, edges)
