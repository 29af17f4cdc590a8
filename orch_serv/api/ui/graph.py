"""A flow drawn as a graph: its steps top to bottom, each with its service and command,
retry policy and timeouts, and beside each step that declares one its compensation; the
compensations are linked in the order they run (last step first). Pure layout: the page
draws it as inline SVG (``_graph.svg``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from orch_serv.flow.spec import FlowSpec, StepSpec

BOX_W, BOX_H, GAP, LEFT, TOP, COMP_X = 330, 58, 34, 10, 10, 430


@dataclass(frozen=True, slots=True)
class Node:
    """A box: a step (``kind`` "step") or a compensation ("compensation")."""

    x: float
    y: float
    w: float
    h: float
    title: str
    lines: tuple[str, ...]
    kind: str


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow from (x1, y1) to (x2, y2); ``dashed`` for the compensation path."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Graph:
    """The nodes and edges of a flow, and the drawing's size."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def _policy(step: StepSpec) -> str:
    parts = []
    if step.retry is not None:
        parts.append(f"retry: {step.retry.max_attempts} attempts")
    if step.timeouts is not None:
        limits = step.timeouts.model_dump(exclude_none=True)
        if limits:
            parts.append("timeouts: " + ", ".join(f"{k} {v:g}s" for k, v in limits.items()))
    return "; ".join(parts)


def layout(spec: FlowSpec) -> Graph:
    """Boxes and arrows for ``spec`` (a linear flow today: one column of steps)."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    compensations: list[Node] = []
    for step in spec.steps:
        y = TOP + step.index * (BOX_H + GAP)
        lines = [f"{step.service}.{step.command}"]
        policy = _policy(step)
        if policy:
            lines.append(policy)
        title = f"{step.index + 1}. {step.name}"
        nodes.append(Node(LEFT, y, BOX_W, BOX_H, title, tuple(lines), "step"))
        if step.index > 0:
            edges.append(Edge(LEFT + BOX_W / 2, y - GAP, LEFT + BOX_W / 2, y - 2))
        if step.compensate:
            comp = Node(
                COMP_X,
                y,
                BOX_W * 0.75,
                BOX_H,
                f"undo {step.name}",
                (f"{step.service}.{step.compensate}",),
                "compensation",
            )
            nodes.append(comp)
            compensations.append(comp)
            edges.append(
                Edge(LEFT + BOX_W, y + BOX_H / 2, COMP_X - 2, y + BOX_H / 2, "on failure", True)
            )
    for later, earlier in zip(compensations[::-1], compensations[-2::-1], strict=False):
        edges.append(
            Edge(
                later.x + later.w / 2,
                later.y,
                earlier.x + earlier.w / 2,
                earlier.y + BOX_H + 2,
                "then",
                True,
            )
        )
    height = TOP + len(spec.steps) * (BOX_H + GAP)
    width = COMP_X + BOX_W * 0.75 + LEFT if compensations else LEFT * 2 + BOX_W
    return Graph(nodes, edges, width, height)


__all__ = ["Edge", "Graph", "Node", "layout"]
