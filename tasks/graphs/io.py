"""Reading graph problems from files and drawing graphs (networkx + matplotlib)."""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from constrained.errors import InvalidProblem

PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]


def _node(label: str) -> Hashable:
    return int(label) if label.lstrip("-").isdigit() else label


def read_edge_list(text: str, where: str = "edge list") -> dict[str, Any]:
    """``u v`` per line (``#`` comments; a line with one name is an isolated node) ->
    ``{"nodes": [...], "edges": [[u, v], ...]}``. Names that are integers become ints."""
    nodes: dict[Hashable, None] = {}
    edges = []
    for ln_no, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) == 1:
            nodes.setdefault(_node(parts[0]))
        elif len(parts) in (2, 3):  # a third column (a weight or {}) is ignored
            u, v = _node(parts[0]), _node(parts[1])
            nodes.setdefault(u)
            nodes.setdefault(v)
            edges.append([u, v])
        else:
            raise InvalidProblem(f"{where} line {ln_no}: expected 'u v', got {line!r}")
    return {"nodes": list(nodes), "edges": edges}


def read_graph_file(path: Path) -> list[Any]:
    """Problems in a file: JSON (one object or a list of them), JSON lines, or an edge list."""
    path = Path(path)
    text = path.read_text()
    stripped = text.strip()
    if path.suffix == ".jsonl" or (path.suffix != ".json" and stripped.startswith("{") and "\n{" in stripped):
        out = []
        for i, line in enumerate(stripped.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InvalidProblem(f"{path} line {i}: not JSON: {e.msg}") from None
        return out
    if path.suffix == ".json" or stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise InvalidProblem(f"{path}: not JSON: {e.msg} (line {e.lineno})") from None
        return list(data) if isinstance(data, list) else [data]
    return [read_edge_list(text, where=str(path))]


def _no_constant(name: str) -> Any:
    raise InvalidProblem(f"JSON has no {name}: non-finite numbers are refused")


def load_json_problem(problem: Any, what: str) -> Any:
    """A JSON string becomes its object; anything else is returned as is."""
    if isinstance(problem, str):
        s = problem.strip()
        if not s.startswith("{"):
            raise InvalidProblem(f"a {what} given as text must be a JSON object, got {s[:40]!r}")
        try:
            return json.loads(s, parse_constant=_no_constant)
        except (json.JSONDecodeError, RecursionError) as e:
            raise InvalidProblem(f"{what} is not valid JSON: {getattr(e, 'msg', e)}") from None
    return problem


def draw_graph(
    g: nx.Graph,
    path: str | Path,
    colours: Mapping[Hashable, int | None] | None = None,
    bad_edges: set[frozenset] | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG of ``g``: nodes filled by colour index (grey when uncoloured), ``bad_edges``
    drawn thick red."""
    import matplotlib  # noqa: PLC0415 (drawing only)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pos = nx.spring_layout(g, seed=0)
    node_colors = []
    for v in g.nodes():
        c = None if colours is None else colours.get(v)
        node_colors.append("#dddddd" if c is None else PALETTE[c % len(PALETTE)])
    bad = bad_edges or set()
    edge_colors = ["#d62728" if frozenset((u, v)) in bad else "#555555" for u, v in g.edges()]
    widths = [3.0 if frozenset((u, v)) in bad else 1.0 for u, v in g.edges()]
    fig, ax = plt.subplots(figsize=(6, 6))
    nx.draw_networkx(
        g,
        pos,
        ax=ax,
        node_color=node_colors,
        edge_color=edge_colors,
        width=widths,
        with_labels=g.number_of_nodes() <= 60,
        font_size=8,
        node_size=300,
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
