"""Constrained graph generation: an n-node graph under constraints chosen per request.

Canvas: the upper triangle of the adjacency matrix, one position per node pair (u, v),
u < v, row-major, tokens ``0`` (no edge) / ``1`` (edge), padded to ``max_nodes`` with fixed
``[PAD]``. Fixed edges and fixed non-edges of a request are fixed tokens. Each position
carries ``u`` and ``v`` coordinates; the layout's groups are the pairs at each node (so a
dead end frees the pairs that share a node with it).

Constraints: connected, tree, bipartite, planar, triangle_free, degree_sequence,
max_degree, num_edges, fixed_edges, non_edges. The model is conditioned on them through
context tokens (``n #10 tree max_degree #3 ...``). Validation is exact with networkx, and
violations are localised to the pairs that cause them: a triangle's edges, a cycle's edges
(tree), an odd cycle's edges (bipartite), a Kuratowski subgraph's edges
(``nx.check_planarity(counterexample=True)``), the edges at an over-full node, the absent
pairs between components (connected) or at an under-full node. On a partial canvas only
what the committed pairs already decide is reported.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Report
from constrained.task import Task
from constrained.vocab import Vocab

from .generators import GEN_FAMILIES, random_graph
from .io import draw_graph, load_json_problem, read_graph_file

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
        msgs = _monotone_problems(req, g)
        if msgs:
            raise InvalidProblem(f"fixed_edges contradict the constraints: {msgs[0]}")


# ---------------------------------------------------------------------------------------
# checks on a graph (networkx); each returns the implicated node pairs and messages
# ---------------------------------------------------------------------------------------
def odd_cycle(g: nx.Graph) -> list[int] | None:
    """Nodes of an odd cycle of ``g`` (closed by the last-to-first edge), or None if bipartite."""
    side: dict[int, int] = {}
    parent: dict[int, int | None] = {}
    for s in g:
        if s in side:
            continue
        side[s], parent[s] = 0, None
        queue = [s]
        for x in queue:
            for y in g[x]:
                if y not in side:
                    side[y], parent[y] = 1 - side[x], x
                    queue.append(y)
                elif side[y] == side[x]:
                    px, py = [x], [y]
                    while parent[px[-1]] is not None:
                        px.append(parent[px[-1]])
                    while parent[py[-1]] is not None:
                        py.append(parent[py[-1]])
                    on_py = {v: i for i, v in enumerate(py)}
                    i = next(i for i, v in enumerate(px) if v in on_py)
                    return px[: i + 1] + list(reversed(py[: on_py[px[i]]]))
    return None


def _cycle_pairs(nodes: list[int]) -> list[tuple[int, int]]:
    return [(nodes[i], nodes[(i + 1) % len(nodes)]) for i in range(len(nodes))]


def _monotone_checks(req: GraphRequest, g: nx.Graph) -> list[tuple[list[tuple[int, int]], str]]:
    """Violations that adding edges cannot repair, judged on the committed edges ``g``."""
    out: list[tuple[list[tuple[int, int]], str]] = []
    if req.triangle_free:
        seen = set()
        for u, v in g.edges():
            for w in set(g[u]) & set(g[v]):
                tri = tuple(sorted((u, v, w)))
                if tri not in seen:
                    seen.add(tri)
                    out.append(
                        (
                            [(tri[0], tri[1]), (tri[0], tri[2]), (tri[1], tri[2])],
                            f"triangle {tri[0]}-{tri[1]}-{tri[2]} (triangle_free)",
                        )
                    )
    if req.bipartite:
        cyc = odd_cycle(g)
        if cyc is not None:
            out.append((_cycle_pairs(cyc), f"odd cycle {'-'.join(map(str, cyc))} (bipartite)"))
    if req.tree:
        try:
            cyc_edges = nx.find_cycle(g)
            out.append(
                ([(u, v) for u, v in cyc_edges], f"cycle {'-'.join(str(u) for u, _ in cyc_edges)} (tree)")
            )
        except nx.NetworkXNoCycle:
            pass
    if req.planar and g.number_of_edges() > 8:
        is_planar, cert = nx.check_planarity(g, counterexample=True)
        if not is_planar:
            out.append(
                (list(cert.edges()), f"not planar: Kuratowski subgraph with {cert.number_of_edges()} edges")
            )
    caps = req.caps()
    for v in range(req.n):
        if g.degree(v) > caps[v]:
            out.append(([(v, w) for w in g[v]], f"node {v} has degree {g.degree(v)} > {caps[v]}"))
    target = req.edge_target
    if target is not None and g.number_of_edges() > target:
        excess = g.number_of_edges() - target
        fixed = set(req.fixed_edges)
        ranked = sorted(
            g.edges(), key=lambda e: ((min(e), max(e)) in fixed, -(g.degree(e[0]) + g.degree(e[1])))
        )
        out.append((ranked[:excess], f"{g.number_of_edges()} edges, want {target}"))
    return out


def _monotone_problems(req: GraphRequest, g: nx.Graph) -> list[str]:
    return [m for _, m in _monotone_checks(req, g)]


@functools.cache
def _bipartitions(n: int) -> np.ndarray:
    """[2^(n-1), n] bool: every split of nodes 0..n-1 into two sides, node 0 on side False."""
    codes = np.arange(1 << max(n - 1, 0))[:, None]
    return np.concatenate([np.zeros_like(codes, dtype=bool), (codes >> np.arange(n - 1)) & 1 == 1], axis=1)


class Addable:
    """Which absent pairs could still become edges given the committed edges ``g1``: not at a
    node already at its degree cap, not closing a triangle (triangle_free), not inside a
    component (tree), not inside one side of a component (bipartite). Adding edges never makes
    a blocked pair addable again, so what is blocked now stays blocked."""

    def __init__(self, req: GraphRequest, g1: nx.Graph) -> None:
        self.req, self.g1 = req, g1
        self.caps = req.caps()
        self.deg = dict(g1.degree())
        self.comp: dict[int, int] = {}
        self.side: dict[int, int] | None = None
        if req.tree or req.bipartite:
            self.comp = {v: i for i, c in enumerate(nx.connected_components(g1)) for v in c}
        if req.bipartite:
            self.side = {}
            for c in nx.connected_components(g1):
                sub = g1.subgraph(c)
                if nx.is_bipartite(sub):
                    self.side.update(nx.bipartite.color(sub))

        # bipartite: the splits of the nodes that every committed edge crosses [M, n]
        self.splits = None
        if req.bipartite:
            splits = _bipartitions(req.n)
            for u, v in g1.edges():
                splits = splits[splits[:, u] != splits[:, v]]
            self.splits = splits

    def crossing(self, pairs: list[tuple[int, int]]) -> np.ndarray | None:
        """[M, len(pairs)] bool: which pairs cross each bipartite split still possible (bipartite only)."""
        if self.splits is None:
            return None
        idx = np.array(pairs, dtype=int).reshape(-1, 2)
        return self.splits[:, idx[:, 0]] != self.splits[:, idx[:, 1]]

    def blocked_by_cap(self, u: int, v: int) -> bool:
        return self.deg[u] >= self.caps[u] or self.deg[v] >= self.caps[v]

    def __call__(self, u: int, v: int) -> bool:
        r, g1, side = self.req, self.g1, self.side
        return not (
            self.blocked_by_cap(u, v)
            or (r.triangle_free and not g1[u].keys().isdisjoint(g1[v].keys()))
            or (r.tree and self.comp[u] == self.comp[v])
            or (
                side is not None
                and self.comp[u] == self.comp[v]
                and u in side
                and v in side
                and side[u] == side[v]
            )
        )

    def max_new_edges(self, pairs: list[tuple[int, int]]) -> int:
        """An upper bound on how many of ``pairs`` (addable ones) can be added together: their
        count, and half the spare degree the nodes have towards them."""
        spare_at = [0] * self.req.n
        for u, v in pairs:
            spare_at[u] += 1
            spare_at[v] += 1
        spare = sum(min(self.caps[w] - self.deg[w], spare_at[w]) for w in range(self.req.n))
        most = min(len(pairs), spare // 2)
        cross = self.crossing(pairs)
        if cross is not None:  # bipartite: only pairs across one split can all be added
            most = min(most, int(cross.sum(1).max()) if cross.shape[0] else 0)
        return most


def _deficit_checks(
    req: GraphRequest,
    g1: nx.Graph,
    open_pairs: list[tuple[int, int]],
    absent: set[tuple[int, int]],
    fixed: set[tuple[int, int]],
) -> list[tuple[list[tuple[int, int]], str]]:
    """Violations that need edges added. Judged on ``g_opt``: the committed edges ``g1`` plus the
    open pairs that can still become edges (``Addable``); ``absent`` are the committed non-edges,
    the pairs that could be flipped (those that would be addable first), ``fixed`` the request's
    fixed pairs, which are never implicated."""
    out: list[tuple[list[tuple[int, int]], str]] = []
    n = req.n
    can_add = Addable(req, g1)
    grow = [e for e in open_pairs if can_add(*e)]
    g_opt = g1.copy()
    g_opt.add_edges_from(grow)
    flippable = sorted((e for e in absent if e not in fixed), key=lambda e: (not can_add(*e), e))
    if (req.connected or req.tree) and n > 1 and not nx.is_connected(g_opt):
        comps = list(nx.connected_components(g_opt))
        comp_of = {v: i for i, c in enumerate(comps) for v in c}
        pairs = [e for e in flippable if comp_of[e[0]] != comp_of[e[1]]]
        out.append((pairs, f"{len(comps)} connected components ({'tree' if req.tree else 'connected'})"))
    if req.degree_sequence is not None:
        short = {v for v in range(n) if g_opt.degree(v) < req.degree_sequence[v]}
        for v in sorted(short):
            mine = [e for e in flippable if v in e]
            both = [e for e in mine if (e[0] if e[1] == v else e[1]) in short]
            out.append((both or mine, f"node {v} has degree {g_opt.degree(v)} < {req.degree_sequence[v]}"))
    target = req.edge_target
    if target is not None:
        most = g1.number_of_edges() + can_add.max_new_edges(grow)
        if most < target:
            deficit = target - most
            addable = [e for e in flippable if can_add(*e)]
            ranked = sorted(addable, key=lambda e: g1.degree(e[0]) + g1.degree(e[1]))
            if not ranked:  # nothing absent could be flipped: free edges at the nodes that block
                full = {w for w in range(n) if can_add.deg[w] >= can_add.caps[w]}
                ranked = [e for e in g1.edges() if (e[0] in full or e[1] in full)
                          and (min(e), max(e)) not in fixed]
            if not ranked:
                ranked = sorted(flippable, key=lambda e: g1.degree(e[0]) + g1.degree(e[1]))
            out.append((ranked[:deficit], f"at most {most} edges possible, want {target}"))
    return out


class GraphGeneration(Task):
    """Generate an n-node graph under structural constraints, validated with networkx.

    Input:
        a JSON request {"n": 10, "constraints": ["tree"], "max_degree": 3, ...}: flags connected,
        tree, bipartite, planar, triangle_free (as keys or listed under "constraints"), and
        degree_sequence, max_degree, num_edges, fixed_edges, non_edges; or a file of requests
        (JSON, JSON lines)
    Example:
        constrained solve graph-gen '{"n": 10, "constraints": ["tree"], "max_degree": 3}' --temperature 1
    """

    name = "graph-gen"
    default_model = "graph-gen"
    #: the model rarely reaches the commit threshold, so a canvas (up to 66 pairs at 12 nodes) fills
    #: about one pair a pass, with every forced pair propagated; 128 passes leave room for search
    solver_defaults: dict[str, Any] = {"max_passes": 128}

    def __init__(self, max_nodes: int = 12, train_min_nodes: int = 4) -> None:
        """Args:
            max_nodes: the largest graph, 2-12 for the shipped model
            train_min_nodes: smallest training graph
        """
        if not 2 <= max_nodes <= MAX_GEN_NODES:
            raise ConfigError(f"max_nodes must be in 2..{MAX_GEN_NODES}, got {max_nodes}")
        if not 1 <= train_min_nodes <= max_nodes:
            raise ConfigError(f"train_min_nodes must be in 1..{max_nodes}, got {train_min_nodes}")
        self.max_nodes, self.train_min_nodes = max_nodes, train_min_nodes
        N = max_nodes
        iu, ju = np.triu_indices(N, 1)
        self.pairs = list(zip(iu.tolist(), ju.tolist()))
        self.pos = {e: p for p, e in enumerate(self.pairs)}
        groups = [[p for p, e in enumerate(self.pairs) if w in e] for w in range(N)]
        self.layout = Layout(
            length=len(self.pairs),
            coords={"u": torch.from_numpy(iu).long(), "v": torch.from_numpy(ju).long()},
            coord_sizes={"u": N, "v": N},
            groups=groups,
            group_names=[f"pairs at node {w}" for w in range(N)],
        )
        self.vocab = Vocab.build(("0", "1"), ("n", *CONSTRAINTS[:-2], *NUMBER_TOKENS))
        self._zero, self._one = self.vocab.id("0"), self.vocab.id("1")

    # --- problems ------------------------------------------------------------------
    def parse(self, problem: Any) -> GraphRequest:
        return parse_request(problem, self.max_nodes)

    def _num(self, x: int) -> int:
        return self.vocab.id(f"#{x}")

    def _context(self, r: GraphRequest) -> list[int]:
        ctx = [self.vocab.id("n"), self._num(r.n)]
        ctx += [self.vocab.id(f) for f in FLAGS if getattr(r, f)]
        if r.max_degree is not None:
            ctx += [self.vocab.id("max_degree"), self._num(min(r.max_degree, len(NUMBER_TOKENS) - 1))]
        if r.num_edges is not None:
            ctx += [self.vocab.id("num_edges"), self._num(r.num_edges)]
        if r.degree_sequence is not None:
            ctx += [self.vocab.id("degree_sequence"), *(self._num(d) for d in r.degree_sequence)]
        return ctx

    def _row(self, r: GraphRequest) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        L, V = self.layout.length, len(self.vocab)
        tokens = torch.full((L,), self.vocab.mask_id, dtype=torch.long)
        fixed = torch.zeros(L, dtype=torch.bool)
        allowed = torch.zeros(L, V, dtype=torch.bool)
        real = torch.tensor([v < r.n for _, v in self.pairs])
        tokens[~real] = self.vocab.pad_id
        fixed[~real] = True
        allowed[~real, self.vocab.pad_id] = True
        allowed[real, self._zero] = True
        allowed[real, self._one] = True
        for e in r.fixed_edges:
            tokens[self.pos[e]], fixed[self.pos[e]] = self._one, True
        for e in r.non_edges:
            tokens[self.pos[e]], fixed[self.pos[e]] = self._zero, True
        return tokens, fixed, allowed

    def encode(self, problems: Sequence[Any]) -> Canvas:
        if isinstance(problems, (str, dict)):
            raise InvalidProblem("encode takes a list of requests; wrap a single request in a list")
        reqs = []
        for i, p in enumerate(problems):
            try:
                reqs.append(self.parse(p))
            except InvalidProblem as e:
                raise (InvalidProblem(f"request {i}: {e}") if len(problems) > 1 else e) from None
        rows = [self._row(r) for r in reqs]
        ctxs = [self._context(r) for r in reqs]
        C = max(len(c) for c in ctxs)
        context = torch.zeros(len(reqs), C, dtype=torch.long)
        cmask = torch.zeros(len(reqs), C, dtype=torch.bool)
        for b, c in enumerate(ctxs):
            context[b, : len(c)] = torch.tensor(c)
            cmask[b, : len(c)] = True
        return Canvas(
            tokens=torch.stack([r[0] for r in rows]),
            fixed=torch.stack([r[1] for r in rows]),
            allowed=torch.stack([r[2] for r in rows]),
            layout=self.layout,
            vocab=self.vocab,
            context=context,
            context_mask=cmask,
            meta=reqs,
        )

    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[dict[str, Any]]:
        out = []
        for b, r in enumerate(canvas.meta):
            row = tokens[b].tolist()
            edges = [list(e) for p, e in enumerate(self.pairs) if e[1] < r.n and row[p] == self._one]
            out.append({"n": r.n, "edges": edges})
        return out

    def format_solution(self, solution: dict[str, Any] | None) -> str:
        return json.dumps(solution)

    def read_problems(self, path: Path) -> list[Any]:
        return read_graph_file(path)

    def draw(self, result: Any, path: str | Path) -> Path:
        """PNG of a generated graph."""
        sol = result.solution or {"n": 0, "edges": []}
        g = to_networkx(sol)
        state = "valid" if getattr(result, "valid", False) else "not valid"
        return draw_graph(
            g, path, title=f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges ({state})"
        )

    # --- constraints ---------------------------------------------------------------
    def _graphs(self, r: GraphRequest, row: list[int]) -> tuple[nx.Graph, list[tuple[int, int]], set, bool]:
        """(committed edges, open pairs, committed non-edges, complete?)."""
        g1 = nx.Graph()
        g1.add_nodes_from(range(r.n))
        absent = set()
        open_pairs = []
        for p, e in enumerate(self.pairs):
            if e[1] >= r.n:
                continue
            t = row[p]
            if t == self._one:
                g1.add_edge(*e)
            elif t == self._zero:
                absent.add(e)
            else:
                open_pairs.append(e)
        return g1, open_pairs, absent, not open_pairs

    def check(self, r: GraphRequest, row: list[int]) -> tuple[bool, list[int], list[str]]:
        """(ok, implicated positions, messages) for one item's tokens."""
        g1, open_pairs, absent, complete = self._graphs(r, row)
        fixed = set(r.fixed_edges) | set(r.non_edges)
        found = _monotone_checks(r, g1) + _deficit_checks(r, g1, open_pairs, absent, fixed)
        implicated = sorted({self.pos[(min(u, v), max(u, v))] for pairs, _ in found for u, v in pairs})
        return complete and not found, implicated, [m for _, m in found]

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        B, L = tokens.shape
        ok = torch.zeros(B, dtype=torch.bool)
        viol = torch.zeros(B, L, dtype=torch.bool)
        msgs: list[list[str]] = []
        rows = tokens.tolist()
        for b, r in enumerate(canvas.meta):
            good, impl, m = self.check(r, rows[b])
            ok[b] = good
            viol[b, impl] = True
            if messages:
                n_open = sum(
                    1
                    for p, e in enumerate(self.pairs)
                    if e[1] < r.n and rows[b][p] not in (self._zero, self._one)
                )
                msgs.append(m + ([f"{n_open} pairs undecided"] if n_open else []))
        return Report(ok=ok.to(tokens.device), violations=viol.to(tokens.device), messages=msgs)

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        """Pairs forced by committed ones: no edge where one cannot be added (``Addable``: a full
        node, closing a triangle for triangle_free, inside a component for tree, inside one side
        for bipartite) or past the edge count; an edge where a node needs every open pair it can
        still get (degree_sequence), a bridge of the committed and addable edges (connected,
        tree), or a pair without which too few edges stay possible (num_edges; one such pair per
        call, since pairs each needed alone can clash together, e.g. close an odd cycle)."""
        allowed = canvas.domain()  # [B, L, V]: 0/1 on real pairs, [PAD] on padding
        out = allowed.detach().to("cpu").numpy().copy()
        rows = tokens.tolist()
        one, zero = self._one, self._zero
        for b, r in enumerate(canvas.meta):
            g1, open_pairs, _absent, complete = self._graphs(r, rows[b])
            if complete:
                continue
            can_add = Addable(r, g1)
            grow = [e for e in open_pairs if can_add(*e)]
            target = r.edge_target
            m1 = g1.number_of_edges()
            full_count = target is not None and m1 >= target
            all_needed = target is not None and m1 + len(grow) <= target
            ds = r.degree_sequence
            grow_at = [0] * r.n
            for u, v in grow:
                grow_at[u] += 1
                grow_at[v] += 1
            grow_set = set(grow)
            # edge count: a pair whose loss would leave too few possible edges is needed
            room = [c - d for c, d in zip(can_add.caps, (can_add.deg[w] for w in range(r.n)))]
            spare = sum(min(room[w], grow_at[w]) for w in range(r.n))
            # connectivity: an open pair that is a bridge of (committed + addable) edges is needed
            bridges: set[tuple[int, int]] = set()
            if (r.connected or r.tree) and r.n > 1:
                g_opt = g1.copy()
                g_opt.add_edges_from(grow)
                if nx.is_connected(g_opt):
                    bridges = {(min(e), max(e)) for e in nx.bridges(g_opt)} & grow_set
            count_forced = False  # one pair a call: pairs needed one by one may clash together
            cross = can_add.crossing(grow) if target is not None else None
            cross_n = cross.sum(1) if cross is not None else None
            grow_idx = {e: j for j, e in enumerate(grow)}
            for e in open_pairs:
                u, v = e
                p = self.pos[e]
                if full_count or e not in grow_set:
                    out[b, p, one] = False
                    continue
                needed = e in bridges
                if target is not None and not needed and not count_forced:
                    spare_wo = spare - (grow_at[u] <= room[u]) - (grow_at[v] <= room[v])
                    most_wo = min(len(grow) - 1, spare_wo // 2)
                    if cross is not None:
                        j = grow_idx[e]
                        most_wo = min(most_wo, int((cross_n - cross[:, j]).max()) if cross.shape[0] else 0)
                    needed = count_forced = all_needed or m1 + most_wo < target
                if needed or (
                    ds is not None and (can_add.deg[u] + grow_at[u] <= ds[u] or can_add.deg[v] + grow_at[v] <= ds[v])
                ):
                    out[b, p, zero] = False
        return torch.from_numpy(out).to(tokens.device)

    # --- data ----------------------------------------------------------------------
    def request_from_graph(
        self, g: nx.Graph, rng: np.random.Generator, fix_prob: float = 0.25
    ) -> GraphRequest:
        """A random request that ``g`` satisfies: each property it has is asked for with some
        probability, with its edge count / max degree / degree sequence sometimes, and a few
        pairs fixed sometimes."""
        n = g.number_of_nodes()
        connected = n > 0 and nx.is_connected(g)
        r = GraphRequest(n=n)
        r.tree = connected and g.number_of_edges() == n - 1 and rng.random() < 0.7
        r.connected = connected and not r.tree and rng.random() < 0.5
        r.bipartite = nx.is_bipartite(g) and rng.random() < 0.4
        r.planar = nx.is_planar(g) and rng.random() < 0.4
        r.triangle_free = sum(nx.triangles(g).values()) == 0 and rng.random() < 0.4
        degs = [d for _, d in sorted(g.degree())]
        if rng.random() < 0.3:
            r.max_degree = max(degs, default=0)
        if rng.random() < 0.3:
            r.num_edges = g.number_of_edges()
        if rng.random() < 0.15:
            r.degree_sequence = tuple(degs)
        if rng.random() < fix_prob and n > 1:
            pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
            k = int(rng.integers(1, max(2, len(pairs) // 4) + 1))
            chosen = [pairs[int(i)] for i in rng.choice(len(pairs), min(k, len(pairs)), replace=False)]
            r.fixed_edges = tuple(sorted(e for e in chosen if g.has_edge(*e)))
            r.non_edges = tuple(sorted(e for e in chosen if not g.has_edge(*e)))
        return r

    def _sample_graph(self, rng: np.random.Generator, min_nodes: int, max_nodes: int) -> nx.Graph:
        n = int(rng.integers(min_nodes, max_nodes + 1))
        return random_graph(rng, GEN_FAMILIES[int(rng.integers(len(GEN_FAMILIES)))], n)

    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A random graph of a random family and size; target = its adjacency; context = a
        request it satisfies (fixed pairs are fixed tokens)."""
        g = self._sample_graph(rng, self.train_min_nodes, self.max_nodes)
        r = self.request_from_graph(g, rng)
        tokens, fixed, allowed = self._row(r)
        for p, (u, v) in enumerate(self.pairs):
            if v < r.n:
                tokens[p] = self._one if g.has_edge(u, v) else self._zero
        return {
            "tokens": tokens,
            "fixed": fixed,
            "allowed": allowed,
            "context": torch.tensor(self._context(r), dtype=torch.long),
        }

    def generate(
        self, n: int, seed: int = 0, min_nodes: int | None = None, max_nodes: int | None = None
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """``n`` (request, a graph that satisfies it) pairs, requests drawn as in training."""
        lo = self.train_min_nodes if min_nodes is None else min_nodes
        hi = self.max_nodes if max_nodes is None else max_nodes
        if not 1 <= lo <= hi <= self.max_nodes:
            raise ConfigError(f"need 1 <= min_nodes <= max_nodes <= {self.max_nodes}, got {lo}, {hi}")
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            g = self._sample_graph(rng, lo, hi)
            r = self.request_from_graph(g, rng)
            out.append(
                (r.to_dict(), {"n": g.number_of_nodes(), "edges": [list(e) for e in sorted(g.edges())]})
            )
        return out


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


__all__ = ["GraphGeneration", "GraphRequest", "odd_cycle", "parse_request", "satisfies", "to_networkx"]
