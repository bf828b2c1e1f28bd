"""Graph colouring completion: give every node one of k colours, adjacent nodes different.

Canvas: one colour token per node (position i holds node ``nodes[i]``), padded with fixed
``[PAD]`` to ``max_nodes`` so graphs of any size up to it share a batch. Pre-coloured nodes
are fixed tokens. The vocabulary is the same for every k and size (colours ``c0``..``c9``,
``k`` tokens, node tokens ``v0``..``v127`` in ``extra``), so one model serves them all; k
acts through per-item domains (``Canvas.allowed``) and a context token.

How the graph reaches the model: as context tokens after the canvas, ``k<k>`` then every
edge as a pair of node tokens ``v<i> v<j>``, and each canvas position carries its node
index as a ``node`` coordinate. An attention bias from the adjacency would be more direct
but needs a model change; the context design works with any denoiser that takes context
(the project's model and hub masked LMs alike), and the exact work is done by the solver:
``Canvas.peers`` holds each item's adjacency, so the validator (both endpoints of every
monochromatic edge), the domains (colours of committed neighbours removed) and dead-end
re-noising (neighbours of a node left without a colour are freed) are exact and vectorised.
An edge is a 2-position all-different group; with adjacency A [B, N, N] and one-hot colours
X [B, N, k], ``A @ X`` counts each node's neighbours per colour, which is what
``constrained.constraints`` computes from group memberships.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.constraints import value_onehot
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Report
from constrained.task import Task
from constrained.vocab import Vocab

from .generators import COLORING_FAMILIES, planted_graph
from .io import draw_graph, load_json_problem, read_graph_file

MAX_COLORS = 10
NODE_TOKENS = 128  # node tokens in the vocabulary: the largest max_nodes a model can see
COLOR_TOKENS = tuple(f"c{i}" for i in range(MAX_COLORS))
K_TOKENS = tuple(f"k{i}" for i in range(1, MAX_COLORS + 1))
NODE_NAMES = tuple(f"v{i}" for i in range(NODE_TOKENS))


@dataclass
class ColoringProblem:
    """A parsed problem. Canvas position i holds ``nodes[i]``; edges are index pairs i < j."""

    nodes: list[Hashable]
    edges: list[tuple[int, int]]
    k: int
    precolored: dict[int, int] = field(default_factory=dict)

    def graph(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from((self.nodes[i], self.nodes[j]) for i, j in self.edges)
        return g


def _label(node: Hashable) -> str:
    return str(node)


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
        raise InvalidProblem(f"k = {k} exceeds the {MAX_COLORS} colours the task supports")
    if not nodes:
        raise InvalidProblem("the graph has no nodes")
    if len(nodes) > max_nodes:
        raise InvalidProblem(
            f"the graph has {len(nodes)} nodes; this task takes at most {max_nodes} "
            f"(task option max_nodes, up to {NODE_TOKENS})"
        )
    index: dict[Hashable, int] = {}
    by_label: dict[str, int] = {}
    for i, v in enumerate(nodes):
        if v in index:
            raise InvalidProblem(f"node {v!r} is listed twice")
        index[v] = i
        by_label[_label(v)] = i

    def find(v: Any, what: str) -> int:
        if isinstance(v, Hashable) and v in index:
            return index[v]
        if _label(v) in by_label:
            return by_label[_label(v)]
        raise InvalidProblem(f"{what} names node {v!r}, which is not in the graph")

    edges: set[tuple[int, int]] = set()
    for u, v in edge_list:
        i, j = find(u, f"edge ({u!r}, {v!r})"), find(v, f"edge ({u!r}, {v!r})")
        if i == j:
            raise InvalidProblem(f"self-loop at node {u!r}: a node cannot differ from itself in colour")
        edges.add((min(i, j), max(i, j)))
    pre: dict[int, int] = {}
    for v, c in precolored_raw.items():
        i = find(v, "precolored")
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < k:
            raise InvalidProblem(f"pre-colour of node {v!r} must be an integer in 0..{k - 1}, got {c!r}")
        pre[i] = c
    for i, j in sorted(edges):
        if i in pre and j in pre and pre[i] == pre[j]:
            raise InvalidProblem(
                f"pre-coloured nodes {nodes[i]!r} and {nodes[j]!r} are adjacent and share colour {pre[i]}"
            )
    return ColoringProblem(nodes=nodes, edges=sorted(edges), k=k, precolored=pre)


class GraphColoring(Task):
    """Graph colouring with k colours (pre-coloured nodes allowed), validated exactly.

    Input:
        a JSON object {"nodes": [...], "edges": [[u, v], ...], "k": 3, "precolored": {"u": 0}}
        (only "edges" is needed; the problem's own k wins over --k), or a file: JSON (an object or
        a list), JSON lines, or an edge list ("u v" per line); a networkx graph from Python
    Example:
        constrained solve graph-coloring '{"edges": [[0, 1], [1, 2], [2, 0], [2, 3]]}' --k 3
    """

    name = "graph-coloring"
    default_model = "graph-coloring"
    #: threshold 1.0: each pass commits every forced node (one colour left) and one free choice, the
    #: model's most confident; confident choices committed together can clash on an edge, and undoing
    #: them together trapped the backjumping on small graphs. A 50-node graph then takes ~30 passes
    #: per descent; 256 leave room for backjumps and restarts (solved graphs stop early)
    solver_defaults: dict[str, Any] = {"max_passes": 256, "threshold": 1.0}
    complete_search = True  # domains drop the colours of coloured neighbours and those >= k: sound
    value_symmetry = True  # colours are interchangeable: the complete search opens them in order

    def __init__(
        self,
        k: int = 3,
        max_nodes: int = 64,
        train_min_nodes: int = 8,
        train_max_nodes: int = 50,
        train_k: Sequence[int] = (2, 3, 3, 3, 4),
        precolor_prob: float = 0.3,
    ) -> None:
        """Args:
            k: colours, 1-10, when the problem does not give its own
            max_nodes: canvas length: the largest graph (the shipped model: 64)
            train_min_nodes: smallest training graph
            train_max_nodes: largest training graph
            train_k: colour counts drawn for training graphs
            precolor_prob: share of pre-coloured nodes in training graphs
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_COLORS:
            raise ConfigError(f"k must be an integer in 1..{MAX_COLORS}, got {k!r}")
        if not 1 <= max_nodes <= NODE_TOKENS:
            raise ConfigError(f"max_nodes must be in 1..{NODE_TOKENS}, got {max_nodes}")
        train_max_nodes = min(train_max_nodes, max_nodes)
        train_min_nodes = min(train_min_nodes, train_max_nodes)
        if not 1 <= train_min_nodes <= train_max_nodes:
            raise ConfigError(
                f"need 1 <= train_min_nodes ({train_min_nodes}) <= train_max_nodes "
                f"({train_max_nodes}) <= max_nodes ({max_nodes})"
            )
        self.k = k
        self.max_nodes = max_nodes
        self.train_min_nodes, self.train_max_nodes = train_min_nodes, train_max_nodes
        self.train_k = tuple(int(x) for x in train_k)
        self.precolor_prob = precolor_prob
        self.vocab = Vocab.build(COLOR_TOKENS, K_TOKENS + NODE_NAMES)
        self.layout = Layout(
            length=max_nodes, coords={"node": torch.arange(max_nodes)}, coord_sizes={"node": max_nodes}
        )
        self._first = self.vocab.id("c0")
        self._node0 = self.vocab.id("v0")

    # --- problems ------------------------------------------------------------------
    def parse(self, problem: Any) -> ColoringProblem:
        return parse_coloring(problem, self.k, self.max_nodes)

    def _context(self, p: ColoringProblem) -> list[int]:
        ctx = [self.vocab.id(f"k{p.k}")]
        for i, j in p.edges:
            ctx += [self._node0 + i, self._node0 + j]
        return ctx

    def encode(self, problems: Sequence[Any]) -> Canvas:
        if isinstance(problems, (str, dict, nx.Graph)):
            raise InvalidProblem("encode takes a list of problems; wrap a single problem in a list")
        parsed = []
        for i, p in enumerate(problems):
            try:
                parsed.append(self.parse(p))
            except InvalidProblem as e:
                raise (InvalidProblem(f"problem {i}: {e}") if len(problems) > 1 else e) from None
        B, N, V = len(parsed), self.max_nodes, len(self.vocab)
        tokens = torch.full((B, N), self.vocab.mask_id, dtype=torch.long)
        fixed = torch.zeros(B, N, dtype=torch.bool)
        allowed = torch.zeros(B, N, V, dtype=torch.bool)
        peers = torch.zeros(B, N, N, dtype=torch.bool)
        ctxs = []
        for b, p in enumerate(parsed):
            n = len(p.nodes)
            tokens[b, n:] = self.vocab.pad_id
            fixed[b, n:] = True
            allowed[b, n:, self.vocab.pad_id] = True
            allowed[b, :n, self._first : self._first + p.k] = True
            for i, c in p.precolored.items():
                tokens[b, i] = self._first + c
                fixed[b, i] = True
            if p.edges:
                e = torch.tensor(p.edges)
                peers[b, e[:, 0], e[:, 1]] = True
                peers[b, e[:, 1], e[:, 0]] = True
            ctxs.append(self._context(p))
        C = max(len(c) for c in ctxs)
        context = torch.zeros(B, C, dtype=torch.long)
        context_mask = torch.zeros(B, C, dtype=torch.bool)
        for b, c in enumerate(ctxs):
            context[b, : len(c)] = torch.tensor(c)
            context_mask[b, : len(c)] = True
        return Canvas(
            tokens=tokens,
            fixed=fixed,
            layout=self.layout,
            vocab=self.vocab,
            allowed=allowed,
            context=context,
            context_mask=context_mask,
            peers=peers,
            meta=parsed,
        )

    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[dict[Hashable, int | None]]:
        v = (tokens - self._first).tolist()
        out = []
        for b, p in enumerate(canvas.meta):
            out.append(
                {
                    _key(node): (v[b][i] if 0 <= v[b][i] < MAX_COLORS else None)
                    for i, node in enumerate(p.nodes)
                }
            )
        return out

    def format_solution(self, solution: dict[Hashable, int | None] | None) -> str:
        import json  # noqa: PLC0415

        if solution is None:
            return "null"
        return json.dumps({str(k): v for k, v in solution.items()})

    def read_problems(self, path: Path) -> list[Any]:
        return read_graph_file(path)

    def draw(self, result: Any, path: str | Path) -> Path:
        """PNG of the problem's graph coloured by ``result.solution``; monochromatic edges red."""
        p = self.parse(result.problem)
        g = p.graph()
        colours = result.solution or {}
        col = {node: colours.get(_key(node)) for node in p.nodes}
        bad = {
            frozenset((p.nodes[i], p.nodes[j]))
            for i, j in p.edges
            if col[p.nodes[i]] is not None and col[p.nodes[i]] == col[p.nodes[j]]
        }
        state = "valid" if getattr(result, "valid", False) else "not solved"
        return draw_graph(g, path, col, bad, title=f"{p.k}-colouring ({state})")

    # --- constraints ---------------------------------------------------------------
    def _ks(self, canvas: Canvas, device: torch.device) -> torch.Tensor:
        return torch.tensor([p.k for p in canvas.meta], device=device)

    def _adjacency(self, canvas: Canvas, device: torch.device) -> torch.Tensor:
        """[B, N, N] float: each item's adjacency, from ``Canvas.peers`` (set by ``encode``) or, for a
        canvas built elsewhere (the training collator's), from the problems in ``canvas.meta``."""
        if canvas.peers is not None:
            return canvas.peers.to(device).float()
        B, N = canvas.tokens.shape
        adj = torch.zeros(B, N, N, device=device)
        for b, p in enumerate(canvas.meta):
            if p is not None and p.edges:
                e = torch.tensor(p.edges, device=device)
                adj[b, e[:, 0], e[:, 1]] = 1.0
                adj[b, e[:, 1], e[:, 0]] = 1.0
        return adj

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        oh = value_onehot(tokens, self._first, MAX_COLORS)  # [B, N, C]
        adj = self._adjacency(canvas, tokens.device)  # [B, N, N]
        same = (torch.bmm(adj, oh) * oh).sum(-1) > 0  # a neighbour has my colour
        real = canvas.tokens != self.vocab.pad_id
        filled = oh.sum(-1) > 0
        over = filled & ((tokens - self._first) >= self._ks(canvas, tokens.device)[:, None])
        viol = (same | over) & real
        ok = (filled | ~real).all(-1) & ~viol.any(-1)
        msgs: list[list[str]] = []
        if messages:
            col = (tokens - self._first).tolist()
            for b, p in enumerate(canvas.meta):
                out = []
                for i, j in p.edges:
                    if filled[b, i] and filled[b, j] and col[b][i] == col[b][j]:
                        out.append(
                            f"adjacent nodes {p.nodes[i]!r} and {p.nodes[j]!r} share colour {col[b][i]}"
                        )
                for i in (over[b] & real[b]).nonzero().squeeze(-1).tolist():
                    out.append(f"node {p.nodes[i]!r} has colour {col[b][i]}, outside 0..{p.k - 1}")
                n_empty = int((~filled[b] & real[b]).sum())
                if n_empty:
                    out.append(f"{n_empty} nodes uncoloured")
                msgs.append(out)
        return Report(ok=ok, violations=viol, messages=msgs)

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        oh = value_onehot(tokens, self._first, MAX_COLORS)
        used = torch.bmm(self._adjacency(canvas, tokens.device), oh) > 0.5  # [B, N, C] colours of filled neighbours
        in_k = (
            torch.arange(MAX_COLORS, device=tokens.device)[None, :] < self._ks(canvas, tokens.device)[:, None]
        )
        B, N = tokens.shape
        out = torch.zeros(B, N, len(self.vocab), dtype=torch.bool, device=tokens.device)
        out[..., self._first : self._first + MAX_COLORS] = ~used & in_k[:, None, :]
        out[..., self.vocab.pad_id] = canvas.tokens == self.vocab.pad_id
        return out

    # --- data ----------------------------------------------------------------------
    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A planted k-colourable graph of a random family and size; target = the planted
        colouring; with probability ``precolor_prob`` 5-25 % of nodes are pre-coloured."""
        k = int(self.train_k[int(rng.integers(len(self.train_k)))])
        n = int(rng.integers(self.train_min_nodes, self.train_max_nodes + 1))
        g, colours = planted_graph(rng, "mixed", n, k)
        n = g.number_of_nodes()
        N, V = self.max_nodes, len(self.vocab)
        tokens = torch.full((N,), self.vocab.pad_id, dtype=torch.long)
        for v, c in colours.items():
            tokens[v] = self._first + c
        fixed = torch.zeros(N, dtype=torch.bool)
        fixed[n:] = True
        if rng.random() < self.precolor_prob:
            m = int(round(n * rng.uniform(0.05, 0.25)))
            fixed[torch.from_numpy(rng.choice(n, m, replace=False)).long()] = True
        allowed = torch.zeros(N, V, dtype=torch.bool)
        allowed[:n, self._first : self._first + k] = True
        allowed[n:, self.vocab.pad_id] = True
        p = ColoringProblem(
            nodes=list(range(n)), edges=sorted((min(u, v), max(u, v)) for u, v in g.edges()), k=k
        )
        return {
            "tokens": tokens,
            "fixed": fixed,
            "allowed": allowed,
            "context": torch.tensor(self._context(p), dtype=torch.long),
            "meta": p,  # the collator's domains (for a domain-reading model) need k and the edges
        }

    def generate(
        self,
        n: int,
        seed: int = 0,
        family: str = "mixed",
        min_nodes: int = 20,
        max_nodes: int = 50,
        k: int | None = None,
        avg_degree: float | None = None,
        precolored: float = 0.0,
    ) -> list[tuple[dict[str, Any], dict[int, int]]]:
        """``n`` (problem, planted colouring) pairs: graphs of ``family`` (one of
        gnp/planar/bipartite/regular or mixed) with ``min_nodes``..``max_nodes`` nodes and a planted
        k-colouring; a ``precolored`` fraction of nodes carries its planted colour as a given."""
        if family not in (*COLORING_FAMILIES, "mixed"):
            raise ConfigError(f"unknown graph family {family!r}: use one of {(*COLORING_FAMILIES, 'mixed')}")
        if not 1 <= min_nodes <= max_nodes <= self.max_nodes:
            raise ConfigError(
                f"need 1 <= min_nodes <= max_nodes <= {self.max_nodes}, got {min_nodes}, {max_nodes}"
            )
        k = self.k if k is None else k
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            size = int(rng.integers(min_nodes, max_nodes + 1))
            g, colours = planted_graph(rng, family, size, k, avg_degree)
            pre = {}
            if precolored > 0:
                m = int(round(g.number_of_nodes() * precolored))
                pre = {int(v): colours[int(v)] for v in rng.choice(g.number_of_nodes(), m, replace=False)}
            problem = {"nodes": sorted(g.nodes()), "edges": [[u, v] for u, v in sorted(g.edges())], "k": k}
            if pre:
                problem["precolored"] = pre
            out.append((problem, colours))
        return out


def _key(node: Hashable) -> Hashable:
    """Solution keys: ints and strings as they are, anything else (tuples...) as its text, so
    a solution always serialises to JSON."""
    return node if isinstance(node, (int, str)) else str(node)


def is_proper_coloring(g: nx.Graph, colours: dict[Hashable, int | None], k: int) -> bool:
    """Independent check with networkx: every node coloured in 0..k-1, no monochromatic edge."""
    if any(colours.get(_key(v)) is None or not 0 <= colours[_key(v)] < k for v in g.nodes()):
        return False
    return all(colours[_key(u)] != colours[_key(v)] for u, v in g.edges())
