"""A person's graph (`projections.graph`) as text: Mermaid (renders on GitHub) or Graphviz dot."""

from __future__ import annotations

from ledger.cli.render import when
from projections.graph import Edge, Graph

_MERMAID_SHAPES = {"user": ('(["', '"])'), "live": ('(("', '"))'), "merged": ('("', '")'), "device": ('["', '"]')}
_DOT_SHAPES = {"user": "ellipse", "live": "doublecircle", "merged": "circle", "device": "box"}


def label(edge: Edge) -> str:
    """What an edge says: its fact, and when for a binding or a merge (a device link has no time of its own)."""
    if edge.kind == "linked":
        return "linked"
    return f"{'bound' if edge.kind == 'rebound' else edge.kind} {when(edge.time)}"


def mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        lines.append(f"    {node.key}{opening}{node.label.replace(chr(34), '#quot;')}{closing}")
    lines += [f'    {edge.source} -->|"{label(edge)}"| {edge.target}' for edge in graph.edges]
    lines += [f"    class {node.key} merged" for node in graph.nodes if node.kind == "merged"]
    lines.append("    classDef merged stroke-dasharray: 5 3")
    return "\n".join(lines)


def dot(graph: Graph) -> str:
    lines = ["digraph person {", "    rankdir=LR;"]
    for node in graph.nodes:
        style = ", style=dashed" if node.kind == "merged" else ""
        lines.append(f"    {node.key} [label={_quoted(node.label)}, shape={_DOT_SHAPES[node.kind]}{style}];")
    lines += [f"    {edge.source} -> {edge.target} [label={_quoted(label(edge))}];" for edge in graph.edges]
    lines.append("}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
