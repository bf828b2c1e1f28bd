"""Graph colouring completion: give every node one of k colours, adjacent nodes different.

Canvas: one colour token per node (position i holds node ``nodes[i]``), padded with fixed
``[PAD]`` to the batch's largest graph. Pre-coloured nodes are fixed tokens. The vocabulary is
the same for every k and size (colours ``c0``..``c255``, nothing else), so one model serves
them all; k acts through per-item domains (``Canvas.allowed``).

How the graph reaches the model: through its structure, never as tokens. ``Canvas.peers``
[B, N, N] holds each item's adjacency; the shipped model (``GraphDenoiser``, engine/graph.py)
reads it as an attention mask over the nodes and as the neighbourhood of its colour-symmetric
value stream, so a graph of 1,000 nodes and 250,000 edges is one canvas of 1,000 positions.
The canvas is as long as the largest graph of the batch (``group_key`` buckets problems by
size), up to ``max_nodes``. The solver's exact work uses the same edges: the validator
(both endpoints of every monochromatic edge) and the domains (colours of committed neighbours
removed) come from the constraint library's ``EdgesDiffer`` (constrained/constraints/edges.py)
over each problem's own edge list (``canvas.meta``, from which ``encode`` builds ``peers``), in
O(E) time and memory with no dense product; dead-end re-noising frees the neighbours of a node
left without a colour.

Node labels are kept exactly as given (any hashable: tuples stay tuples, ``1`` and ``"1"`` are
two nodes); a solution is a dict keyed by them. Problems and their parsing live in
coloring_problem.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.constraints import EdgesDiffer, value_onehot
from constrained.errors import ConfigError, InvalidProblem
from constrained.layout import Layout
from constrained.report import Report
from constrained.task import Task
from constrained.vocab import Vocab

from .coloring_problem import MAX_COLORS, MAX_NODES, TOO_MANY_COLOURS, ColoringProblem, parse_coloring
from .generators import COLORING_FAMILIES, planted_graph
from .io import draw_graph, format_coloring, read_graph_file

COLOR_TOKENS = tuple(f"c{i}" for i in range(MAX_COLORS))


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
    #: model's most confident; 256 passes leave room for backjumps and restarts on 50-node graphs
    #: (solved graphs stop early). The fewest colours on large graphs: ``chromatic`` (chromatic.py)
    solver_defaults: dict[str, Any] = {"max_passes": 256, "threshold": 1.0}
    complete_search = True  # domains drop the colours of coloured neighbours and those >= k: sound
    value_symmetry = True  # colours are interchangeable: the complete search opens them in order
    #: ``search="auto"`` searches completely up to this many nodes, and locally (re-noising) above
    complete_max_nodes = 100

    def prefers_complete_search(self, canvas: Canvas) -> bool:
        return int((canvas.tokens != self.vocab.pad_id).sum(-1).max()) <= self.complete_max_nodes

    def __init__(
        self,
        k: int = 3,
        max_nodes: int = 1024,
        train_min_nodes: int = 20,
        train_max_nodes: int = 200,
        train_k: Sequence[int] = (2, 3, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30),
        precolor_prob: float = 0.2,
        output: str = "json",
    ) -> None:
        """Args:
            k: colours, 1-256, when the problem does not give its own
            max_nodes: the largest graph taken (each canvas is as long as its batch's largest graph)
            train_min_nodes: smallest training graph
            train_max_nodes: largest training graph (and the training canvas's length)
            train_k: colour counts drawn for training graphs
            precolor_prob: share of training graphs with pre-coloured nodes
            output: how a colouring is printed: json, or dimacs (s col K / l NODE COLOUR lines)
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_COLORS:
            raise ConfigError(f"k must be an integer in 1..{MAX_COLORS}, got {k!r}")
        if not 1 <= max_nodes <= MAX_NODES:
            raise ConfigError(f"max_nodes must be in 1..{MAX_NODES}, got {max_nodes}")
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
        if any(not 1 <= x <= MAX_COLORS for x in self.train_k):
            raise ConfigError(f"train_k must hold colour counts in 1..{MAX_COLORS}, got {self.train_k}")
        self.precolor_prob = precolor_prob
        if output not in ("json", "dimacs"):
            raise ConfigError(f"output must be 'json' or 'dimacs', got {output!r}")
        self.output = output  # how format_solution writes a colouring (CLI: --output dimacs)
        self.vocab = Vocab.build(COLOR_TOKENS)
        #: the training canvas (examples are padded to train_max_nodes); ``encode`` lays each batch
        #: out as long as its largest graph
        self.layout = Layout(length=train_max_nodes)
        self._layouts: dict[int, Layout] = {train_max_nodes: self.layout}
        self._first = self.vocab.id("c0")
        #: (ids of a batch's problems, device) -> (the problems, their EdgesDiffer), oldest first
        self._edge_cache: dict[tuple[Any, ...], tuple[list[ColoringProblem], EdgesDiffer]] = {}

    def _layout(self, n: int) -> Layout:
        if n not in self._layouts:
            self._layouts[n] = Layout(length=n)
        return self._layouts[n]

    # --- problems ------------------------------------------------------------------
    def parse(self, problem: Any) -> ColoringProblem:
        return parse_coloring(problem, self.k, self.max_nodes)

    def group_key(self, problem: Any) -> Any:
        """Batches hold graphs of similar size: the node count rounded up to a power of two."""
        try:
            n = len(self.parse(problem).nodes)
        except InvalidProblem:
            return None
        return 1 << max(n - 1, 0).bit_length()

    def encode_parsed(self, parsed: list[ColoringProblem]) -> Canvas:
        B, V = len(parsed), len(self.vocab)
        N = max(len(p.nodes) for p in parsed)
        tokens = torch.full((B, N), self.vocab.mask_id, dtype=torch.long)
        fixed = torch.zeros(B, N, dtype=torch.bool)
        allowed = torch.zeros(B, N, V, dtype=torch.bool)
        peers = torch.zeros(B, N, N, dtype=torch.bool)
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
                e = p.edge_index()
                peers[b, e[:, 0], e[:, 1]] = True
                peers[b, e[:, 1], e[:, 0]] = True
        return Canvas(tokens=tokens, fixed=fixed, layout=self._layout(N), vocab=self.vocab, allowed=allowed,
                      peers=peers, meta=parsed)

    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[dict[Hashable, int | None]]:
        """Per item, ``{node: colour}`` keyed by the problem's own labels (None: uncoloured)."""
        v = (tokens - self._first).tolist()
        return [
            {node: (v[b][i] if 0 <= v[b][i] < MAX_COLORS else None) for i, node in enumerate(p.nodes)}
            for b, p in enumerate(canvas.meta)
        ]

    def format_solution(self, solution: dict[Hashable, int | None] | None, style: str | None = None) -> str:
        """``style`` (default: the task option ``output``) "json" (see ``io.format_coloring``) or
        "dimacs" (``s col K`` and ``l NODE COLOUR`` solution lines)."""
        return format_coloring(solution, style or self.output)

    def cli_chromatic(self, problems: list[Any], solver: Any, time_limit: float | None, as_json: bool) -> int:
        """``constrained solve graph-coloring G --chromatic [--time-limit S]``: per graph, the bounds
        ``[lower, upper]`` and the colouring for the upper bound. Exit 0 (a colouring is always found)."""
        import json  # noqa: PLC0415

        from .chromatic import chromatic  # noqa: PLC0415

        for problem in problems:
            r = chromatic(self, problem, solver, time_limit=60.0 if time_limit is None else time_limit)
            if as_json:
                print(json.dumps(r.to_dict(), default=str))
                continue
            print(self.format_solution(r.colouring))
            print(f"chromatic number in [{r.lower}, {r.upper}] ({r.status}); lower: {r.lower_reason}; "
                  f"upper: {r.upper_reason}; {r.seconds:.1f} s")
        return 0

    def read_problems(self, path: Path) -> list[Any]:
        return read_graph_file(path)

    def draw(self, result: Any, path: str | Path) -> Path:
        """PNG of the problem's graph coloured by ``result.solution``; monochromatic edges red."""
        p = self.parse(result.problem)
        g = p.graph()
        colours = result.solution or {}
        col = {node: colours.get(node) for node in p.nodes}
        bad = {
            frozenset((p.nodes[i], p.nodes[j]))
            for i, j in p.edges
            if col[p.nodes[i]] is not None and col[p.nodes[i]] == col[p.nodes[j]]
        }
        state = "valid" if getattr(result, "valid", False) else "not solved"
        return draw_graph(g, path, col, bad, title=f"{p.k}-colouring ({state})")

    def trace_view(self, canvas: Canvas) -> Any:
        """The trace page's graph view (nodes placed by networkx's spring layout, filled with their
        colour) for graphs of up to ``TRACE_MAX_NODES`` nodes; larger ones fall back to a strip."""
        from .trace_view import coloring_trace_view  # noqa: PLC0415 (traces only)

        return coloring_trace_view(self, canvas)

    # --- constraints ---------------------------------------------------------------
    def _ks(self, canvas: Canvas, device: torch.device) -> torch.Tensor:
        return torch.tensor([p.k for p in canvas.meta], device=device)

    def _kmax(self, canvas: Canvas) -> int:
        return max(p.k for p in canvas.meta)

    def _edges(self, canvas: Canvas, device: torch.device) -> EdgesDiffer:
        """The batch's edges (each problem's own, the ones ``encode`` writes into ``Canvas.peers``) as
        the library's edge constraint, kept for the last few batches: a search asks again each pass."""
        meta = canvas.meta
        key = (tuple(map(id, meta)), str(device))
        hit = self._edge_cache.get(key)
        if hit is None or any(a is not b for a, b in zip(hit[0], meta)):
            edges = [p.edge_index() if isinstance(p, ColoringProblem) else p.edges for p in meta]
            hit = (list(meta), EdgesDiffer.from_lists(edges, device, labels=[p.nodes for p in meta],
                                                      node_word="nodes", value_word="colour"))
            self._edge_cache[key] = hit
            while len(self._edge_cache) > 4:
                self._edge_cache.pop(next(iter(self._edge_cache)))
        return hit[1]

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        oh = value_onehot(tokens, self._first, MAX_COLORS)  # [B, N, 256]
        edges = self._edges(canvas, tokens.device)
        real = canvas.tokens != self.vocab.pad_id
        val = tokens - self._first
        filled = (val >= 0) & (val < MAX_COLORS)
        over = filled & (val >= self._ks(canvas, tokens.device)[:, None])
        viol = (edges.violations(oh) | over) & real
        ok = (filled | ~real).all(-1) & ~viol.any(-1)
        msgs: list[list[str]] = []
        if messages:
            col = val.tolist()
            for b, p in enumerate(canvas.meta):
                out = edges.messages(oh, b)
                for i in (over[b] & real[b]).nonzero().squeeze(-1).tolist():
                    out.append(f"node {p.nodes[i]!r} has colour {col[b][i]}, outside 0..{p.k - 1}")
                n_empty = int((~filled[b] & real[b]).sum())
                if n_empty:
                    out.append(f"{n_empty} nodes uncoloured")
                msgs.append(out)
        return Report(ok=ok, violations=viol, messages=msgs)

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        K = self._kmax(canvas)
        free = self._edges(canvas, tokens.device).candidates(value_onehot(tokens, self._first, K))  # [B, N, K]
        in_k = torch.arange(K, device=tokens.device)[None, :] < self._ks(canvas, tokens.device)[:, None]
        B, N = tokens.shape
        out = torch.zeros(B, N, len(self.vocab), dtype=torch.bool, device=tokens.device)
        out[..., self._first : self._first + K] = free & in_k[:, None, :]
        out[..., self.vocab.pad_id] = canvas.tokens == self.vocab.pad_id
        return out

    def explain_empty(self, canvas: Canvas, tokens: torch.Tensor, positions: list[int]) -> str:
        p = canvas.meta[0]
        return f"node {p.nodes[positions[0]]!r} has no colour left: its neighbours hold all {p.k}"

    # --- data ----------------------------------------------------------------------
    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A planted k-colourable graph of a random family (G(n,p), planar, bipartite, regular) and
        size (log-uniform in train_min_nodes..train_max_nodes), k drawn from ``train_k`` (at most
        n / 2); target = the planted colouring; with probability ``precolor_prob`` 5-25 % of nodes
        are pre-coloured. ``peers`` [N, N] is the adjacency the graph model reads."""
        lo, hi = np.log(self.train_min_nodes), np.log(self.train_max_nodes + 1)
        n = int(np.exp(rng.uniform(lo, hi)))
        n = min(max(n, self.train_min_nodes), self.train_max_nodes)
        k = int(self.train_k[int(rng.integers(len(self.train_k)))])
        k = max(1, min(k, n // 2))
        g, colours = planted_graph(rng, "mixed", n, k)
        n = g.number_of_nodes()
        N, V = self.layout.length, len(self.vocab)
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
        edges = sorted((min(u, v), max(u, v)) for u, v in g.edges())
        peers = torch.zeros(N, N, dtype=torch.bool)
        if edges:
            e = torch.tensor(edges)
            peers[e[:, 0], e[:, 1]] = True
            peers[e[:, 1], e[:, 0]] = True
        return {
            "tokens": tokens,
            "fixed": fixed,
            "allowed": allowed,
            "peers": peers,
            "meta": ColoringProblem(nodes=list(range(n)), edges=edges, k=k),  # the collator's domains need k
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


def is_proper_coloring(g: nx.Graph, colours: dict[Hashable, int | None], k: int) -> bool:
    """Independent check with networkx: every node coloured in 0..k-1, no monochromatic edge."""
    if any(colours.get(v) is None or not 0 <= colours[v] < k for v in g.nodes()):
        return False
    return all(colours[u] != colours[v] for u, v in g.edges())


__all__ = ["COLOR_TOKENS", "MAX_COLORS", "MAX_NODES", "TOO_MANY_COLOURS", "ColoringProblem", "GraphColoring",
           "is_proper_coloring", "parse_coloring"]
