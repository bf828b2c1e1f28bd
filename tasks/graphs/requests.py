"""A graph-generation request: what ``graph-gen`` is asked for, read and checked before any canvas.

``parse_request`` reads a dict or JSON object into a :class:`GraphRequest` and refuses, by name,
unknown constraints and requests no graph can meet (``check_request``: counting arguments such as
Mantel's and Euler's bounds, Erdős–Gallai for a degree sequence, and what the fixed edges alone
already break). ``satisfies`` checks a finished graph against a request with networkx's own
predicates, independently of the task's validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from constrained.errors import InvalidProblem

from .feasibility import monotone_problems
from .io import load_json_problem

MAX_GEN_NODES = 20
FLAGS = ("connected", "tree", "bipartite", "planar", "triangle_free")
VALUED = ("degree_sequence", "max_degree", "num_edges")
CONSTRAINTS = (*FLAGS, *VALUED, "fixed_edges", "non_edges")
NUMBER_TOKENS = tuple(f"#{i}" for i in range(MAX_GEN_NODES * (MAX_GEN_NODES - 1) // 2 + 1))


@dataclass
class GraphRequest:
    """What to generate: ``n`` nodes (0..n-1) and the constraints that must hold."""

    n: int
    connected: bool = False
    tree: bool = False
    bipartite: bool = False
    planar: bool = False
    triangle_free: bool = False
    degree_sequence: tuple[int, ...] | None = None
    max_degree: int | None = None
    num_edges: int | None = None
    fixed_edges: tuple[tuple[int, int], ...] = ()
    non_edges: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": self.n}
        for f in FLAGS:
            if getattr(self, f):
                d[f] = True
        if self.degree_sequence is not None:
            d["degree_sequence"] = list(self.degree_sequence)
        for f in ("max_degree", "num_edges"):
            if getattr(self, f) is not None:
                d[f] = getattr(self, f)
        if self.fixed_edges:
            d["fixed_edges"] = [list(e) for e in self.fixed_edges]
        if self.non_edges:
            d["non_edges"] = [list(e) for e in self.non_edges]
        return d

    @property
    def edge_target(self) -> int | None:
        if self.num_edges is not None:
            return self.num_edges
        if self.tree:
            return self.n - 1
        if self.degree_sequence is not None:
            return sum(self.degree_sequence) // 2
        return None

    def caps(self) -> list[int]:
        """Largest degree each node may have."""
        cap = [self.n - 1] * self.n
        if self.max_degree is not None:
            cap = [min(c, self.max_degree) for c in cap]
        if self.degree_sequence is not None:
            cap = [min(c, d) for c, d in zip(cap, self.degree_sequence)]
        return cap


def _int(value: Any, what: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProblem(f"{what} must be an integer, got {value!r}")
    if value < lo:
        raise InvalidProblem(f"{what} must be >= {lo}, got {value}")
    return value


def _pairs(value: Any, what: str, n: int) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise InvalidProblem(f"{what} must be a list of [u, v] pairs")
    out = set()
    for e in value:
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            raise InvalidProblem(f"{what}: {e!r} is not a [u, v] pair")
        u, v = _int(e[0], f"{what} node"), _int(e[1], f"{what} node")
        if u == v:
            raise InvalidProblem(f"{what}: self-loop at node {u}; graphs here are simple")
        if u >= n or v >= n:
            raise InvalidProblem(f"{what}: pair ({u}, {v}) names a node outside 0..{n - 1}")
        out.add((min(u, v), max(u, v)))
    return tuple(sorted(out))


def parse_request(problem: Any, max_nodes: int) -> GraphRequest:
    """A dict / JSON text -> GraphRequest, refusing unknown or contradictory constraints up front.

    Flags may be given as keys (``"tree": true``) or listed (``"constraints": ["tree", "planar"]``);
    ``-`` and ``_`` are interchangeable in names."""
    if isinstance(problem, GraphRequest):
        return problem
    problem = load_json_problem(problem, "graph-generation request")
    if not isinstance(problem, dict):
        raise InvalidProblem(
            f"a graph-generation request must be a dict or JSON object, got {type(problem).__name__}"
        )
    data = {str(k).replace("-", "_"): v for k, v in problem.items()}
    listed = data.pop("constraints", [])
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, (list, tuple)):
        raise InvalidProblem(f"'constraints' must be a list of flag names, got {listed!r}")
    for name in listed:
        key = str(name).replace("-", "_")
        if key not in FLAGS:
            raise InvalidProblem(f"unknown constraint {name!r} in 'constraints'; flags: {', '.join(FLAGS)}")
        data[key] = True
    unknown = set(data) - {"n", *CONSTRAINTS}
    if unknown:
        raise InvalidProblem(f"unknown constraint(s) {sorted(unknown)}; known: n, {', '.join(CONSTRAINTS)}")
    if "n" not in data:
        raise InvalidProblem("a graph-generation request needs 'n', the number of nodes")
    n = _int(data["n"], "n", 1)
    if n > max_nodes:
        raise InvalidProblem(f"n = {n} exceeds this task's max_nodes = {max_nodes}")
    req = GraphRequest(n=n)
    for f in FLAGS:
        if f in data:
            if not isinstance(data[f], bool):
                raise InvalidProblem(f"{f} must be true or false, got {data[f]!r}")
            setattr(req, f, data[f])
    if data.get("max_degree") is not None:
        req.max_degree = _int(data["max_degree"], "max_degree")
    if data.get("num_edges") is not None:
        req.num_edges = _int(data["num_edges"], "num_edges")
    if data.get("degree_sequence") is not None:
        ds = data["degree_sequence"]
        if not isinstance(ds, (list, tuple)):
            raise InvalidProblem("degree_sequence must be a list of n integers")
        req.degree_sequence = tuple(_int(d, "degree_sequence entry") for d in ds)
    req.fixed_edges = _pairs(data.get("fixed_edges", []), "fixed_edges", n)
    req.non_edges = _pairs(data.get("non_edges", []), "non_edges", n)
    check_request(req)
    return req


def check_request(req: GraphRequest) -> None:
    """Contradictions that make a request impossible, named."""
    n, m_max = req.n, req.n * (req.n - 1) // 2
    both = set(req.fixed_edges) & set(req.non_edges)
    if both:
        raise InvalidProblem(f"pair {sorted(both)[0]} is both a fixed edge and a fixed non-edge")
    ds = req.degree_sequence
    if ds is not None:
        if len(ds) != n:
            raise InvalidProblem(f"degree_sequence has {len(ds)} entries for n = {n} nodes")
        if sum(ds) % 2:
            raise InvalidProblem(f"degree_sequence {list(ds)} has an odd sum ({sum(ds)}): no graph has it")
        if max(ds) > n - 1:
            raise InvalidProblem(
                f"degree_sequence asks degree {max(ds)} but a node has at most {n - 1} neighbours"
            )
        if not nx.is_graphical(list(ds)):
            raise InvalidProblem(f"degree_sequence {list(ds)} is not graphical (Erdős–Gallai fails)")
        if req.max_degree is not None and max(ds) > req.max_degree:
            raise InvalidProblem(f"degree_sequence has degree {max(ds)} above max_degree {req.max_degree}")
        if req.num_edges is not None and sum(ds) // 2 != req.num_edges:
            raise InvalidProblem(
                f"degree_sequence sums to {sum(ds)} = 2 x {sum(ds) // 2} edges, "
                f"but num_edges is {req.num_edges}"
            )
        if (req.connected or req.tree) and n > 1 and min(ds) == 0:
            raise InvalidProblem("a connected graph has no node of degree 0, but degree_sequence has one")
    m = req.num_edges
    if m is not None and m > m_max:
        raise InvalidProblem(f"num_edges = {m} exceeds the {m_max} pairs of {n} nodes")
    if req.tree:
        if m is not None and m != n - 1:
            raise InvalidProblem(f"a tree on {n} nodes has {n - 1} edges, but num_edges is {m}")
        if ds is not None and sum(ds) != 2 * (n - 1):
            raise InvalidProblem(
                f"a tree on {n} nodes has degree sum {2 * (n - 1)}, degree_sequence sums to {sum(ds)}"
            )
        if req.max_degree is not None and n > 2 and req.max_degree < 2:
            raise InvalidProblem(
                f"a tree on {n} nodes needs a node of degree >= 2, max_degree is {req.max_degree}"
            )
    target = req.edge_target
    if target is not None:
        if (req.connected or req.tree) and target < n - 1:
            raise InvalidProblem(f"a connected graph on {n} nodes needs >= {n - 1} edges, asked for {target}")
        if req.planar and n >= 3 and target > 3 * n - 6:
            raise InvalidProblem(
                f"a planar graph on {n} nodes has at most {3 * n - 6} edges, asked for {target}"
            )
        if (req.triangle_free or req.bipartite) and target > n * n // 4:
            which = "triangle-free" if req.triangle_free else "bipartite"
            raise InvalidProblem(
                f"a {which} graph on {n} nodes has at most {n * n // 4} edges (Turán/Mantel), "
                f"asked for {target}"
            )
        if req.max_degree is not None and target > n * req.max_degree // 2:
            raise InvalidProblem(
                f"max_degree {req.max_degree} allows at most {n * req.max_degree // 2} edges, "
                f"asked for {target}"
            )
        if target < len(req.fixed_edges):
            raise InvalidProblem(f"{len(req.fixed_edges)} fixed edges exceed the {target} edges asked for")
        if target > m_max - len(req.non_edges):
            raise InvalidProblem(f"{len(req.non_edges)} fixed non-edges leave fewer than {target} pairs")
    if (req.connected or req.tree) and n > 1 and req.max_degree == 0:
        raise InvalidProblem("a connected graph on more than one node needs max_degree >= 1")
    if req.fixed_edges:  # what the fixed edges alone already break
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(req.fixed_edges)
        msgs = monotone_problems(req, g)
        if msgs:
            raise InvalidProblem(f"fixed_edges contradict the constraints: {msgs[0]}")



def to_networkx(solution: dict[str, Any]) -> nx.Graph:
    """A ``{"n": ..., "edges": [...]}`` solution as a networkx graph."""
    g = nx.Graph()
    g.add_nodes_from(range(int(solution["n"])))
    g.add_edges_from(tuple(e) for e in solution["edges"])
    return g


def satisfies(request: GraphRequest, g: nx.Graph) -> bool:
    """Independent check of a whole graph against a request with networkx's own predicates."""
    r = request
    if g.number_of_nodes() != r.n or any(u == v for u, v in g.edges()):
        return False
    checks = [
        not r.connected or nx.is_connected(g),
        not r.tree or nx.is_tree(g),
        not r.bipartite or nx.is_bipartite(g),
        not r.planar or nx.is_planar(g),
        not r.triangle_free or sum(nx.triangles(g).values()) == 0,
        r.degree_sequence is None or [d for _, d in sorted(g.degree())] == list(r.degree_sequence),
        r.max_degree is None or max((d for _, d in g.degree()), default=0) <= r.max_degree,
        r.num_edges is None or g.number_of_edges() == r.num_edges,
        all(g.has_edge(*e) for e in r.fixed_edges),
        not any(g.has_edge(*e) for e in r.non_edges),
    ]
    return all(checks)
