"""Feasibility of a graph-generation request on a partial graph: what the committed edges already
break, and what the open pairs can still repair.

``monotone_checks``: violations that adding edges cannot repair (a triangle, an odd cycle, a
cycle for a tree, a Kuratowski subgraph, an over-full node, too many edges). ``Addable``: which
open pairs could still become edges. ``deficit_checks``: violations that need edges the open
pairs cannot supply (too few for connectivity, a degree sequence or an edge count). Each check
returns the node pairs it implicates with a message; the task's validator and domains
(generation.py) and ``check_request`` (requests.py) build on them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

if TYPE_CHECKING:
    from .requests import GraphRequest


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


def monotone_checks(req: GraphRequest, g: nx.Graph) -> list[tuple[list[tuple[int, int]], str]]:
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


def monotone_problems(req: GraphRequest, g: nx.Graph) -> list[str]:
    return [m for _, m in monotone_checks(req, g)]


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


def deficit_checks(
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
