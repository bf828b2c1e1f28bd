"""The trace page's graph view of a colouring (``GraphColoring.trace_view``): nodes placed by
networkx's spring layout, edges drawn, each node filled with its colour's swatch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from .io import PALETTE

if TYPE_CHECKING:
    from constrained.canvas import Canvas

#: graphs up to this many nodes are drawn as a graph; larger ones as the default strip of tokens
TRACE_MAX_NODES = 200


def coloring_trace_view(task: Any, canvas: Canvas) -> Any:
    """A ``TraceView`` of kind "graph" for the one problem in ``canvas`` (None past TRACE_MAX_NODES)."""
    from constrained.trace import TraceView  # noqa: PLC0415 (trace pages only)

    p = canvas.meta[0]
    n, L = len(p.nodes), canvas.length
    if n > TRACE_MAX_NODES:
        return None
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(p.edges)
    pos = nx.spring_layout(g, seed=0, iterations=100 if n <= 100 else 50)
    xs = [float(pos[i][0]) for i in range(n)]
    ys = [float(pos[i][1]) for i in range(n)]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    coords = [(0.05 + 0.9 * (x - x0) / sx, 0.05 + 0.9 * (y - y0) / sy) for x, y in zip(xs, ys)]
    coords += [(0.0, 0.0)] * (L - n)  # padding positions, hidden
    k = max(p.k, 1)
    palette = {f"c{c}": PALETTE[c % len(PALETTE)] for c in range(k)}
    return TraceView(
        kind="graph",
        coords=coords,
        labels=[f"node {v!r}" for v in p.nodes] + [""] * (L - n),
        edges=[(i, j) for i, j in p.edges],
        palette=palette,
        token_text={f"c{c}": str(c) for c in range(k)},
        hidden=list(range(n, L)),
    )
