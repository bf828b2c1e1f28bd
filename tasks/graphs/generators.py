"""Random graphs for training and evaluation.

Colouring generators *plant* a k-colouring: every node gets a colour first and only
edges between different colours are drawn, so a proper k-colouring is known to exist
(the planted one). Families: G(n, p), random planar (Delaunay triangulation of random
points, bichromatic edges kept), random bipartite, random regular (union of random
perfect matchings between colour classes). Node labels are shuffled so colour classes
are not contiguous.

Generation generators draw unconstrained graphs of several families (G(n, p), trees,
bipartite, planar, triangle-free, regular) that conditional training examples are
described from.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

COLORING_FAMILIES = ("gnp", "planar", "bipartite", "regular")
GEN_FAMILIES = ("gnp", "tree", "bipartite", "planar", "triangle_free", "regular")


def _relabel(
    rng: np.random.Generator, g: nx.Graph, colours: dict[int, int]
) -> tuple[nx.Graph, dict[int, int]]:
    n = g.number_of_nodes()
    perm = rng.permutation(n)
    mapping = {i: int(perm[i]) for i in range(n)}
    h = nx.Graph()
    h.add_nodes_from(range(n))
    h.add_edges_from((mapping[u], mapping[v]) for u, v in g.edges())
    return h, {mapping[i]: c for i, c in colours.items()}


def _balanced_colours(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


def planted_gnp(
    rng: np.random.Generator, n: int, k: int, avg_degree: float
) -> tuple[nx.Graph, dict[int, int]]:
    """G(n, p) restricted to pairs of different planted colours; p set for ``avg_degree``."""
    col = _balanced_colours(rng, n, k)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    if n > 1 and k > 1:
        iu, ju = np.triu_indices(n, 1)
        cross = col[iu] != col[ju]
        p = min(1.0, avg_degree * n / 2 / max(int(cross.sum()), 1))
        pick = cross & (rng.random(iu.shape[0]) < p)
        g.add_edges_from(zip(iu[pick].tolist(), ju[pick].tolist()))
    return _relabel(rng, g, {i: int(c) for i, c in enumerate(col)})


def planted_planar(
    rng: np.random.Generator, n: int, k: int, keep: float = 1.0
) -> tuple[nx.Graph, dict[int, int]]:
    """Delaunay triangulation of ``n`` random points; edges between different planted colours
    kept (each with probability ``keep``). Planar by construction."""
    from scipy.spatial import Delaunay  # noqa: PLC0415 (only this generator needs scipy)

    col = _balanced_colours(rng, n, k)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    if n >= 3:
        tri = Delaunay(rng.random((n, 2)))
        for s in tri.simplices:
            for a, b in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2])):
                if col[a] != col[b] and rng.random() < keep:
                    g.add_edge(int(a), int(b))
    elif n == 2 and col[0] != col[1]:
        g.add_edge(0, 1)
    return _relabel(rng, g, {i: int(c) for i, c in enumerate(col)})


def planted_bipartite(rng: np.random.Generator, n: int, avg_degree: float) -> tuple[nx.Graph, dict[int, int]]:
    """Random bipartite graph: colours 0 and 1 are the two sides."""
    return planted_gnp(rng, n, 2, avg_degree)


def planted_regular(
    rng: np.random.Generator, n: int, k: int, degree: int, max_tries: int = 100
) -> tuple[nx.Graph, dict[int, int]]:
    """A ``degree``-regular graph on ``k * (n // k)`` nodes with a planted k-colouring: each
    round adds random perfect matchings between colour classes (class c with c + 1 around a
    cycle for k >= 3: +2 degree; the two classes for k = 2: +1). Odd degrees for k >= 3 are
    rounded down."""
    if k < 2:
        raise ValueError("a regular planted graph needs k >= 2")
    m = max(n // k, 1)
    classes = [list(range(c * m, (c + 1) * m)) for c in range(k)]
    pairs = [(0, 1)] if k == 2 else [(c, (c + 1) % k) for c in range(k)]
    rounds = degree if k == 2 else degree // 2
    rounds = min(rounds, m if k == 2 else max(m - (1 if m > 1 else 0), 0))
    g = nx.Graph()
    g.add_nodes_from(range(k * m))
    for _ in range(rounds):
        for a, b in pairs:
            for _try in range(max_tries):
                perm = rng.permutation(m)
                new = [(classes[a][i], classes[b][int(perm[i])]) for i in range(m)]
                if not any(g.has_edge(u, v) for u, v in new):
                    g.add_edges_from(new)
                    break
    colours = {v: c for c in range(k) for v in classes[c]}
    return _relabel(rng, g, colours)


def planted_graph(
    rng: np.random.Generator, family: str, n: int, k: int, avg_degree: float | None = None
) -> tuple[nx.Graph, dict[int, int]]:
    """A graph of ``family`` (one of COLORING_FAMILIES, or ``mixed``) with a planted k-colouring."""
    if family == "mixed":
        family = COLORING_FAMILIES[int(rng.integers(len(COLORING_FAMILIES)))]
    if k < 2:  # one colour: only edgeless graphs are colourable
        return planted_gnp(rng, n, 1, 0.0)
    if family == "gnp":
        d = avg_degree if avg_degree is not None else float(rng.uniform(1.5, 1.6 * k))
        return planted_gnp(rng, n, k, d)
    if family == "planar":
        return planted_planar(rng, n, k, keep=float(rng.uniform(0.7, 1.0)))
    if family == "bipartite":
        d = avg_degree if avg_degree is not None else float(rng.uniform(1.5, 4.0))
        return planted_bipartite(rng, n, d)
    if family == "regular":
        k_eff = max(k, 2)
        d = int(rng.choice([2, 4])) if k_eff >= 3 else int(rng.integers(1, 4))
        return planted_regular(rng, n, k_eff, d)
    raise ValueError(f"unknown graph family {family!r}: use one of {(*COLORING_FAMILIES, 'mixed')}")


# ---------------------------------------------------------------------------------------
# unconstrained families for generation
# ---------------------------------------------------------------------------------------
def random_graph(rng: np.random.Generator, family: str, n: int) -> nx.Graph:
    """A random graph on nodes 0..n-1 of ``family`` (one of GEN_FAMILIES)."""
    seed = int(rng.integers(1 << 31))
    if family == "gnp":
        g = nx.gnp_random_graph(n, float(rng.uniform(0.1, 0.6)), seed=seed)
    elif family == "tree":
        g = nx.random_labeled_tree(n, seed=seed) if n > 1 else nx.empty_graph(n)
    elif family == "bipartite":
        g, _ = planted_bipartite(rng, n, float(rng.uniform(1.0, max(1.5, n / 2))))
    elif family == "planar":
        g, _ = planted_planar(rng, n, n, keep=float(rng.uniform(0.5, 1.0)))  # n colours: every edge kept
    elif family == "triangle_free":
        g = nx.empty_graph(n)
        iu, ju = np.triu_indices(n, 1)
        order = rng.permutation(iu.shape[0])
        budget = int(rng.integers(n // 2, n * n // 4 + 1))
        for idx in order[:]:
            if g.number_of_edges() >= budget:
                break
            u, v = int(iu[idx]), int(ju[idx])
            if not set(g[u]) & set(g[v]):
                g.add_edge(u, v)
    elif family == "regular":
        d = int(rng.integers(1, min(4, n - 1) + 1)) if n > 1 else 0
        if (n * d) % 2:
            d -= 1
        g = nx.random_regular_graph(d, n, seed=seed) if d > 0 else nx.empty_graph(n)
    else:
        raise ValueError(f"unknown graph family {family!r}: use one of {GEN_FAMILIES}")
    h = nx.Graph()
    h.add_nodes_from(range(n))
    h.add_edges_from(g.edges())
    return h
