"""The edge constraint (constrained/constraints/edges.py): values differ across each edge of a sparse,
per-item edge list. Its violations and candidates are checked against brute force on small random
graphs (batches whose items have different graphs), its candidates for soundness against every
completion, and the colouring task that composes it against the dense ``A @ X`` formulation."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest
import torch

from constrained import load_task
from constrained.constraints import EdgesDiffer, value_onehot

torch.set_num_threads(1)


def _onehot(values: list[list[int | None]], V: int) -> torch.Tensor:
    """[B, L, V] one-hot; None: an empty position (all zeros)."""
    B, L = len(values), len(values[0])
    oh = torch.zeros(B, L, V)
    for b, row in enumerate(values):
        for i, v in enumerate(row):
            if v is not None:
                oh[b, i, v] = 1.0
    return oh


def _random_batch(rng: random.Random, B: int, L: int, V: int, fill: float):
    """Per item: a random graph on its own number of nodes (the rest of the canvas has no edges) and
    a random partial assignment."""
    graphs, values = [], []
    for _ in range(B):
        n = rng.randint(1, L)
        g = nx.gnp_random_graph(n, rng.uniform(0.1, 0.9), seed=rng.randrange(1 << 30))
        graphs.append([(u, v) if rng.random() < 0.5 else (v, u) for u, v in g.edges()])  # either orientation
        values.append([rng.randrange(V) if i < n and rng.random() < fill else None for i in range(L)])
    return graphs, values


def _brute_violations(graphs, values) -> list[list[bool]]:
    out = []
    for edges, row in zip(graphs, values):
        bad = [False] * len(row)
        for u, v in edges:
            if row[u] is not None and row[u] == row[v]:
                bad[u] = bad[v] = True
        out.append(bad)
    return out


def _brute_candidates(graphs, values, V: int) -> list[list[list[bool]]]:
    out = []
    for edges, row in zip(graphs, values):
        nbrs = [set() for _ in row]
        for u, v in edges:
            nbrs[u].add(v)
            nbrs[v].add(u)
        out.append([[all(row[j] != c for j in nbrs[i]) for c in range(V)] for i in range(len(row))])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_violations_and_candidates_match_brute_force_on_random_batches(seed):
    rng = random.Random(seed)
    for fill in (0.0, 0.3, 0.7, 1.0):
        B, L, V = rng.randint(1, 4), rng.randint(2, 9), rng.randint(1, 5)
        graphs, values = _random_batch(rng, B, L, V, fill)
        c = EdgesDiffer.from_lists(graphs)
        oh = _onehot(values, V)
        assert c.violations(oh).tolist() == _brute_violations(graphs, values)
        assert c.candidates(oh).tolist() == _brute_candidates(graphs, values, V)


@pytest.mark.parametrize("seed", range(4))
def test_candidates_keep_every_value_a_completion_uses(seed):
    """Soundness by enumeration: every assignment of the empty positions that violates no edge uses,
    at each empty position, a value the candidates kept; and a value no such completion uses at a
    position whose neighbours are all filled is removed (the rule is exact there)."""
    rng = random.Random(100 + seed)
    graphs, values = _random_batch(rng, 3, 6, 3, 0.5)
    c = EdgesDiffer.from_lists(graphs)
    cand = c.candidates(_onehot(values, 3))
    for b, (edges, row) in enumerate(zip(graphs, values)):
        empty = [i for i, v in enumerate(row) if v is None]
        used = [set() for _ in row]
        for fill in itertools.product(range(3), repeat=len(empty)):
            full = list(row)
            for i, v in zip(empty, fill):
                full[i] = v
            if all(full[u] != full[v] for u, v in edges):
                for i in empty:
                    used[i].add(full[i])
        for i in empty:
            assert all(cand[b, i, v] for v in used[i]), (b, i, used[i])
            nbrs = {v for e in edges for v in e if i in e} - {i}
            if nbrs and all(row[j] is not None for j in nbrs) and used[i]:
                assert {v for v in range(3) if cand[b, i, v]} == used[i]


def test_edge_lists_adjacency_and_duplicates_give_the_same_answers():
    rng = random.Random(7)
    graphs, values = _random_batch(rng, 3, 8, 4, 0.6)
    oh = _onehot(values, 4)
    L = oh.shape[1]
    adj = torch.zeros(3, L, L, dtype=torch.bool)
    for b, edges in enumerate(graphs):
        for u, v in edges:
            adj[b, u, v] = adj[b, v, u] = True
    a, b_ = EdgesDiffer.from_lists(graphs), EdgesDiffer.from_adjacency(adj)
    twice = EdgesDiffer.from_lists([e + [(v, u) for u, v in e] for e in graphs])  # both orientations
    for c in (b_, twice):
        assert torch.equal(c.violations(oh), a.violations(oh))
        assert torch.equal(c.candidates(oh), a.candidates(oh))
    none = EdgesDiffer.from_lists([[], None, []])
    assert not none.violations(oh).any() and none.candidates(oh).all()
    with pytest.raises(ValueError, match=r"\[E, 3\]"):
        EdgesDiffer(torch.zeros(4, 2, dtype=torch.long))


def test_messages_name_each_violated_edge_of_the_item_in_edge_order():
    c = EdgesDiffer.from_lists([[(0, 1), (1, 2), (2, 3)], [(0, 1)]], labels=[["a", "b", "c", "d"], [5, 6, 7, 8]],
                               node_word="nodes", value_word="colour")
    oh = _onehot([[2, 2, 2, None], [1, 1, None, None]], 3)
    assert c.messages(oh, 0) == ["adjacent nodes 'a' and 'b' share colour 2",
                                 "adjacent nodes 'b' and 'c' share colour 2"]
    assert c.messages(oh, 1) == ["adjacent nodes 5 and 6 share colour 1"]
    assert EdgesDiffer.from_lists([[(0, 1)]]).messages(_onehot([[0, 0]], 1), 0) == [
        "adjacent positions 0 and 1 share value 0"]
    assert c.messages(_onehot([[0, 1, 0, 1], [0, 1, None, None]], 3), 0) == []


def test_graph_colouring_validate_and_domains_equal_the_dense_adjacency_formulation():
    """GraphColoring composes EdgesDiffer; its answers equal the dense A @ X version it replaced."""
    task = load_task("graph-coloring", k=4)
    rng = random.Random(3)
    problems = []
    for _ in range(4):
        n = rng.randint(3, 30)
        g = nx.gnp_random_graph(n, rng.uniform(0.1, 0.6), seed=rng.randrange(1 << 30))
        problems.append({"nodes": list(range(n)), "edges": [list(e) for e in g.edges()], "k": rng.randint(2, 5)})
    canvas = task.encode(problems)
    adj = canvas.peers.float()
    ks = torch.tensor([p.k for p in canvas.meta])
    K = int(ks.max())
    real = canvas.tokens != task.vocab.pad_id
    gen = torch.Generator().manual_seed(0)
    for fill in (0.3, 0.7, 1.0):
        tokens = canvas.tokens.clone()
        pick = (torch.rand(tokens.shape, generator=gen) < fill) & real
        tokens[pick] = task._first + torch.randint(0, 6, tokens.shape, generator=gen)[pick]
        oh = value_onehot(tokens, task._first, K)
        val = tokens - task._first
        filled = (val >= 0) & (val < 256)
        over = filled & (val >= ks[:, None])
        viol = (((torch.bmm(adj, oh) * oh).sum(-1) > 0) | over) & real
        rep = task.validate(canvas, tokens)
        assert torch.equal(rep.violations, viol)
        assert rep.ok.tolist() == ((filled | ~real).all(-1) & ~viol.any(-1)).tolist()
        used = torch.bmm(adj, oh) > 0.5
        dom = task.domains(canvas, tokens)[..., task._first : task._first + K]
        in_k = torch.arange(K)[None, :] < ks[:, None]
        assert torch.equal(dom, ~used & in_k[:, None, :])
