"""A graph-colouring problem: :class:`ColoringProblem` (nodes, edges as index pairs, k, pre-colours)
and ``parse_coloring``, which reads one from a networkx graph, a dict or JSON text and refuses bad
input by name (unknown fields, self-loops, unknown or duplicate nodes, labels Python cannot tell
apart, a k out of range, clashing pre-colours).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch

from constrained.errors import InvalidProblem

from .io import load_json_problem

MAX_COLORS = 256  # colour tokens in the vocabulary: the most colours a model-driven solve can use
MAX_NODES = 4096  # the largest canvas the task lays out (task option max_nodes)
TOO_MANY_COLOURS = (
    "the graph-coloring vocabulary holds {limit} colours; `constrained solve graph-coloring G --chromatic` "
    "(local search, no colour limit) colours graphs that need more"
)


@dataclass
class ColoringProblem:
    """A parsed problem. Canvas position i holds ``nodes[i]``; edges are index pairs i < j."""

    nodes: list[Hashable]
    edges: list[tuple[int, int]]
    k: int
    precolored: dict[int, int] = field(default_factory=dict)

    def edge_index(self) -> torch.Tensor:
        """``edges`` as an [E, 2] long tensor, built once (a parsed problem is not edited afterwards;
        a new ``edges`` list is noticed)."""
        cached = self.__dict__.get("_edge_index")
        if cached is None or cached[0] is not self.edges or len(cached[1]) != len(self.edges):
            cached = (self.edges, torch.tensor(self.edges, dtype=torch.long).reshape(-1, 2))
            self.__dict__["_edge_index"] = cached
        return cached[1]

    def graph(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from((self.nodes[i], self.nodes[j]) for i, j in self.edges)
        return g


def _check_hashable(v: Any, what: str) -> None:
    try:
        hash(v)
    except TypeError:
        raise InvalidProblem(
            f"{what}: node label {v!r} is not hashable ({type(v).__name__}); use a hashable label "
            "such as an int, a str or a tuple"
        ) from None


def _same_label(a: Any, b: Any) -> bool:
    """Equal and of the same type all the way down: 1 and True, or (1,) and (1.0,), are different
    labels even though Python finds them equal."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same_label(x, y) for x, y in zip(a, b))
    return a == b


def parse_coloring(problem: Any, k: int | None, max_nodes: int) -> ColoringProblem:
    """A networkx graph (node attribute ``color`` = pre-colour, ``graph.graph["k"]`` = k), a dict /
    JSON text ``{"nodes": [...], "edges": [[u, v], ...], "k": 3, "precolored": {node: colour}}``
    or a ColoringProblem -> ColoringProblem. The problem's own k wins over the task's."""
    if isinstance(problem, ColoringProblem):
        return problem
    problem = load_json_problem(problem, "graph-colouring problem")
    precolored_raw: dict[Any, Any] = {}
    if isinstance(problem, nx.Graph):
        if problem.is_directed():
            problem = problem.to_undirected()
        nodes = list(problem.nodes())
        edge_list = list(problem.edges())
        k = problem.graph.get("k", k)
        precolored_raw = {v: d["color"] for v, d in problem.nodes(data=True) if d.get("color") is not None}
    elif isinstance(problem, dict):
        unknown = set(problem) - {"nodes", "edges", "k", "precolored"}
        if unknown:
            raise InvalidProblem(
                f"unknown field(s) {sorted(unknown)} in graph-colouring problem; "
                "known: nodes, edges, k, precolored"
            )
        edges_in = problem.get("edges", [])
        if not isinstance(edges_in, list):
            raise InvalidProblem("'edges' must be a list of [u, v] pairs")
        edge_list = []
        for e in edges_in:
            if not isinstance(e, (list, tuple)) or len(e) != 2:
                raise InvalidProblem(f"edge {e!r} is not a [u, v] pair")
            edge_list.append((e[0], e[1]))
        if not isinstance(problem.get("nodes", []), list):
            raise InvalidProblem(f"'nodes' must be a list of node labels, got {problem['nodes']!r}")
        nodes = list(problem.get("nodes", []))
        if not nodes:  # nodes implied by the edges
            seen: dict[Hashable, None] = {}
            for u, v in edge_list:
                seen.setdefault(u)
                seen.setdefault(v)
            nodes = list(seen)
        k = problem.get("k", k)
        if not isinstance(problem.get("precolored") or {}, dict):
            raise InvalidProblem(f"'precolored' must map nodes to colours, got {problem['precolored']!r}")
        precolored_raw = dict(problem.get("precolored") or {})
    else:
        raise InvalidProblem(
            f"a graph-colouring problem must be a networkx Graph, a dict or JSON text, "
            f"got {type(problem).__name__}"
        )
    if k is None:
        raise InvalidProblem("no number of colours: give k (task option --k, or 'k' in the problem)")
    if isinstance(k, bool) or not isinstance(k, int):
        raise InvalidProblem(f"k must be an integer, got {k!r}")
    if k < 1:
        raise InvalidProblem(f"k must be >= 1, got {k}")
    if k > MAX_COLORS:
        raise InvalidProblem(f"k = {k} is more colours than the limit: " + TOO_MANY_COLOURS.format(limit=MAX_COLORS))
    if not nodes:
        raise InvalidProblem("the graph has no nodes")
    if len(nodes) > max_nodes:
        raise InvalidProblem(
            f"the graph has {len(nodes)} nodes; this task takes at most {max_nodes} "
            f"(task option max_nodes, up to {MAX_NODES})"
        )
    index: dict[Hashable, int] = {}
    for i, v in enumerate(nodes):
        _check_hashable(v, f"node {i}")
        if v in index and _same_label(next(u for u in index if u == v), v):
            raise InvalidProblem(f"node {v!r} is listed twice")
        if v in index:  # equal but not the same label (True == 1, 1.0 == 1): two nodes, refused
            raise InvalidProblem(f"nodes {v!r} and {next(u for u in index if u == v)!r} compare equal; "
                                 "give labels that Python tells apart")
        index[v] = i

    def find(v: Any, what: str) -> int:
        _check_hashable(v, what)
        i = index.get(v)
        if i is not None and _same_label(nodes[i], v):
            return i
        raise InvalidProblem(f"{what} names node {v!r}, which is not in the graph")

    edges: set[tuple[int, int]] = set()
    for u, v in edge_list:
        i, j = find(u, f"edge ({u!r}, {v!r})"), find(v, f"edge ({u!r}, {v!r})")
        if i == j:
            raise InvalidProblem(f"self-loop at node {u!r}: a node cannot differ from itself in colour")
        edges.add((min(i, j), max(i, j)))
    pre: dict[int, int] = {}
    text_keys: dict[str, list[int]] = {}  # JSON objects key by text: "0" may name node 0
    for i, v in enumerate(nodes):
        text_keys.setdefault(str(v), []).append(i)
    for v, c in precolored_raw.items():
        try:
            i = find(v, "precolored")
        except InvalidProblem:
            cands = text_keys.get(v, []) if isinstance(v, str) else []
            if len(cands) != 1:
                raise
            i = cands[0]
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < k:
            raise InvalidProblem(f"pre-colour of node {v!r} must be an integer in 0..{k - 1}, got {c!r}")
        pre[i] = c
    for i, j in sorted(edges):
        if i in pre and j in pre and pre[i] == pre[j]:
            raise InvalidProblem(
                f"pre-coloured nodes {nodes[i]!r} and {nodes[j]!r} are adjacent and share colour {pre[i]}"
            )
    return ColoringProblem(nodes=nodes, edges=sorted(edges), k=k, precolored=pre)
