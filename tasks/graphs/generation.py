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

Requests (fields, parsing, contradictions refused up front) live in requests.py; the checks on a
partial graph that the validator and the domains share (what the committed edges break, which
open pairs can still become edges) in feasibility.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.errors import ConfigError
from constrained.layout import Layout
from constrained.report import Report
from constrained.task import Task
from constrained.vocab import Vocab

from .feasibility import Addable, deficit_checks, monotone_checks, odd_cycle
from .generators import GEN_FAMILIES, random_graph
from .io import draw_graph, read_graph_file
from .requests import (
    CONSTRAINTS,
    FLAGS,
    MAX_GEN_NODES,
    NUMBER_TOKENS,
    GraphRequest,
    parse_request,
    satisfies,
    to_networkx,
)


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
    item_name = "request"
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

    def encode_parsed(self, reqs: list[GraphRequest]) -> Canvas:
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
        found = monotone_checks(r, g1) + deficit_checks(r, g1, open_pairs, absent, fixed)
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
        allowed = canvas.allowed_values()  # [B, L, V]: 0/1 on real pairs, [PAD] on padding
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


__all__ = ["GraphGeneration", "GraphRequest", "odd_cycle", "parse_request", "satisfies", "to_networkx"]
