"""The fewest colours: bounds on the chromatic number and a colouring for the upper bound.

``chromatic(task, problem)`` (and ``constrained solve graph-coloring G.col --chromatic``):

1. upper bound: networkx's DSATUR (``nx.coloring.greedy_color(strategy="DSATUR")``, Brélaz 1979;
   on graphs of more than ``DSATUR_MAX_EDGES`` edges its smallest-last greedy colouring, since
   networkx's DSATUR takes minutes there);
2. lower bound: the largest clique found (networkx's Bron-Kerbosch enumeration ``find_cliques``
   within a time share, plus a greedy clique grown from each high-degree node); on small graphs
   (``complete_max_nodes``) the Solver's complete search (``search="complete"``) proves a k
   impossible, raising the lower bound to k + 1 (``prove_infeasible``);
3. search downward: for k = upper - 1, upper - 2, ... try to colour with k colours. The start is
   the (k+1)-colouring with its smallest colour class re-noised, or, on graphs the model takes,
   the model's own k-colouring (the diffusion Solver on a top-k schedule) when it has fewer
   conflicts; then the validator's re-noising runs as a local search: the nodes the validator implicates (endpoints of
   a monochromatic edge) are re-noised to the colour with the fewest conflicts, with tabu on
   recent (node, colour) pairs, the min-conflicts scheme of TabuCol (Hertz & de Werra 1987, with
   the dynamic tenure of Galinier & Hao 1999). The search stops at the lower bound, at the time
   limit, or at the first k it cannot colour (on small graphs: that the complete search could not
   settle either).

Every colouring returned has passed the task's validator; the upper bound is always backed by it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from constrained.errors import InvalidProblem

from .coloring_problem import MAX_COLORS, ColoringProblem, parse_coloring
from .io import load_json_problem


@dataclass
class ChromaticResult:
    """Bounds ``lower <= chi(G) <= upper`` and a validated ``upper``-colouring keyed by the graph's
    own node labels. ``status`` is "optimal" when the bounds meet."""

    lower: int
    upper: int
    colouring: dict[Hashable, int]
    lower_reason: str
    upper_reason: str
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)  # per k tried: found, how, seconds

    @property
    def status(self) -> str:
        return "optimal" if self.lower == self.upper else "bounds"

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "status": self.status,
                "lower_reason": self.lower_reason, "upper_reason": self.upper_reason,
                "seconds": round(self.seconds, 2), "history": self.history,
                "colouring": [[v, c] for v, c in self.colouring.items()]}


# --- graph in arrays ------------------------------------------------------------------------
class _Graph:
    """Nodes 0..n-1, CSR neighbour lists and a dense bool adjacency (n <= a few thousand)."""

    def __init__(self, n: int, edges: list[tuple[int, int]]) -> None:
        self.n = n
        e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        src = np.concatenate([e[:, 0], e[:, 1]])
        dst = np.concatenate([e[:, 1], e[:, 0]])
        order = np.argsort(src, kind="stable")
        self.nbr = dst[order]
        self.ptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(self.ptr, src + 1, 1)
        self.ptr = np.cumsum(self.ptr)
        self.adj = np.zeros((n, n), dtype=bool)
        self.adj[e[:, 0], e[:, 1]] = True
        self.adj[e[:, 1], e[:, 0]] = True
        self.deg = self.adj.sum(1)

    def neighbours(self, v: int) -> np.ndarray:
        return self.nbr[self.ptr[v]:self.ptr[v + 1]]

    def conflicts(self, col: np.ndarray) -> int:
        i, j = np.nonzero(np.triu(self.adj, 1))
        return int((col[i] == col[j]).sum())


_NO_PRECOLOURED = "--chromatic colours the whole graph: drop the pre-coloured nodes ('precolored')"


def _as_problem(problem: Any, max_nodes: int) -> ColoringProblem:
    if isinstance(problem, ColoringProblem):
        p = problem
    else:
        problem = load_json_problem(problem, "graph-colouring problem")
        if isinstance(problem, nx.Graph):
            if any(d.get("color") is not None for _, d in problem.nodes(data=True)):
                raise InvalidProblem(_NO_PRECOLOURED)
            problem = {"nodes": list(problem.nodes()), "edges": [list(e) for e in problem.edges()]}
        elif isinstance(problem, dict):
            if problem.get("precolored"):
                raise InvalidProblem(_NO_PRECOLOURED)
            problem = {key: v for key, v in problem.items() if key != "k"}
        p = parse_coloring(problem, 1, max_nodes)
    if p.precolored:
        raise InvalidProblem(_NO_PRECOLOURED)
    return p


# --- bounds ---------------------------------------------------------------------------------
#: above this many edges the first upper bound is networkx's smallest-last greedy colouring instead
#: of its DSATUR, whose pure-Python implementation takes minutes on dense 1,000-node graphs
DSATUR_MAX_EDGES = 30_000


def dsatur(p: ColoringProblem, strategy: str = "DSATUR") -> np.ndarray:
    """networkx's greedy colouring (``strategy``: DSATUR by default) on nodes 0..n-1 -> colours [n]."""
    g = nx.Graph()
    g.add_nodes_from(range(len(p.nodes)))
    g.add_edges_from(p.edges)
    c = nx.coloring.greedy_color(g, strategy=strategy)
    return np.array([c[i] for i in range(len(p.nodes))], dtype=np.int64)


def large_clique(G: _Graph, p: ColoringProblem, budget_s: float, rng: np.random.Generator) -> list[int]:
    """The largest clique found: a greedy clique from each of the highest-degree nodes, then
    networkx's ``find_cliques`` (Bron-Kerbosch with pivoting, exact when it finishes) until
    ``budget_s`` seconds have passed."""
    t0 = time.perf_counter()
    best: list[int] = [0] if G.n else []
    for v in np.argsort(-G.deg)[: min(G.n, 200)]:
        cand = G.adj[v].copy()
        clique = [int(v)]
        while cand.any():
            idx = np.flatnonzero(cand)
            # the candidate with the most neighbours among the candidates (ties at random)
            score = G.adj[np.ix_(idx, idx)].sum(1) + rng.random(idx.size) * 0.5
            u = int(idx[int(np.argmax(score))])
            clique.append(u)
            cand &= G.adj[u]
        if len(clique) > len(best):
            best = clique
        if time.perf_counter() - t0 > budget_s / 2:
            break
    g = nx.Graph()
    g.add_nodes_from(range(G.n))
    g.add_edges_from(p.edges)
    for c in nx.find_cliques(g):
        if len(c) > len(best):
            best = c
        if time.perf_counter() - t0 > budget_s:
            break
    return best


def prove_infeasible(task: Any, solver: Any, p: ColoringProblem, k: int, clique: list[int],
                     budget_s: float) -> tuple[bool | None, np.ndarray | None]:
    """The Solver's complete search (``search="complete"``, constrained/search.py) on ``p`` with k
    colours: (True, None) when it proves no k-colouring exists, (False, colouring) when it finds
    one, (None, None) when the budget runs out or there is no model. Symmetry breaking: the nodes
    of ``clique`` are pre-coloured 0, 1, ... (any k-colouring can be relabelled so), which keeps
    the proof sound while cutting the k! relabellings of every branch."""
    if solver is None or budget_s < 0.5 or k > MAX_COLORS or len(clique) > k:
        return None, None
    import dataclasses  # noqa: PLC0415

    q = ColoringProblem(nodes=list(range(len(p.nodes))), edges=p.edges, k=k,
                        precolored={int(v): i for i, v in enumerate(clique)})
    old = solver.config
    solver.config = dataclasses.replace(old, search="complete", max_passes=1_000_000, time_limit=budget_s,
                                        trace=False, check_unique=False)
    try:
        (r,) = solver.run(task.encode([q]), [q])
    finally:
        solver.config = old
    if r.status == "infeasible":
        return True, None
    if r.status == "solved":
        return False, np.array([r.solution[i] for i in range(len(p.nodes))], dtype=np.int64)
    return None, None


# --- local search: validator re-noising with tabu (TabuCol) ---------------------------------
def tabu_search(G: _Graph, col: np.ndarray, k: int, deadline: float, rng: np.random.Generator,
                max_iters: int | None = None, on_progress: Any = None) -> tuple[np.ndarray, int, int]:
    """Min-conflicts local search with tabu from ``col`` [n] (colours in 0..k-1).

    Each iteration the validator's implicated nodes (an endpoint of a monochromatic edge) are the
    candidates; the (node, colour) move that lowers the conflict count most is taken, unless tabu
    (then only if it beats the best count seen: aspiration). A node leaving colour c may not
    take c again for ``L + 0.6 * |implicated|`` iterations, L uniform in 0..9 (Galinier & Hao).
    Returns (best colouring, its conflicts, iterations)."""
    n = G.n
    col = col.copy()
    gamma = np.zeros((n, k), dtype=np.int64)  # gamma[v, c]: neighbours of v with colour c
    nb = G.nbr
    src = np.repeat(np.arange(n), np.diff(G.ptr))
    np.add.at(gamma, (src, col[nb]), 1)
    own = gamma[np.arange(n), col]
    f = int(own.sum()) // 2
    best_f, best = f, col.copy()
    tabu = np.zeros((n, k), dtype=np.int64)
    it = 0
    ar = np.arange(n)
    while f > 0:
        if max_iters is not None and it >= max_iters:
            break
        if (it & 255) == 0:
            if time.perf_counter() > deadline:
                break
            if on_progress is not None:
                on_progress(best_f)
        conf = np.flatnonzero(gamma[ar, col] > 0)
        g = gamma[conf]  # [m, k]
        delta = g - g[np.arange(conf.size), col[conf]][:, None]
        delta[np.arange(conf.size), col[conf]] = 1 << 30
        blocked = (tabu[conf] > it) & (f + delta >= best_f)
        delta = np.where(blocked, 1 << 30, delta)
        m = delta.min()
        if m >= 1 << 29:  # every move tabu: take a random one
            i = int(rng.integers(conf.size))
            c = int(rng.integers(k - 1))
            c = c + (c >= col[conf[i]])
            v, m = int(conf[i]), int(gamma[conf[i], c] - gamma[conf[i], col[conf[i]]])
        else:
            ii, cc = np.nonzero(delta == m)
            j = int(rng.integers(ii.size))
            v, c = int(conf[ii[j]]), int(cc[j])
        old = int(col[v])
        nv = nb[G.ptr[v]:G.ptr[v + 1]]
        gamma[nv, old] -= 1
        gamma[nv, c] += 1
        col[v] = c
        f += int(m)
        tabu[v, old] = it + int(rng.integers(10)) + int(0.6 * conf.size)
        it += 1
        if f < best_f:
            best_f, best = f, col.copy()
    return best, best_f, it


def _reduce(col: np.ndarray, k: int, G: _Graph, rng: np.random.Generator) -> np.ndarray:
    """A (k+1)-colouring -> a start for k colours: the nodes of the smallest colour class are
    re-noised, each to the colour its neighbours use least."""
    counts = np.bincount(col, minlength=k + 1)
    drop = int(np.argmin(counts[: k + 1]))
    out = col.copy()
    out[out == drop] = -1
    out[out > drop] -= 1
    for v in rng.permutation(np.flatnonzero(out < 0)):
        nbc = out[G.neighbours(v)]
        use = np.bincount(nbc[nbc >= 0], minlength=k)[:k]
        out[v] = int(np.argmin(use + rng.random(k) * 0.1))
    return out


# --- the driver -----------------------------------------------------------------------------
def chromatic(task: Any, problem: Any, solver: Any = None, time_limit: float = 60.0, seed: int = 0,
              progress: bool | None = None, model_max_nodes: int = 250, model_passes: int = 24,
              complete_max_nodes: int = 100, local_share: float = 0.5) -> ChromaticResult:
    """Bounds on the chromatic number of ``problem`` and a validated colouring for the upper bound.

    solver: a ``Solver`` for ``task`` (the model's proposals on graphs of at most ``model_max_nodes``
    nodes and at most MAX_COLORS colours, and the complete search that proves a k impossible on graphs
    of at most ``complete_max_nodes`` nodes; ``None``: local search and the clique bound only).
    time_limit: seconds of wall time for the whole search (the first greedy bound always completes);
    on graphs the complete search takes, the local search at each k gets ``local_share`` of the time
    left and the complete search the rest. progress: a bar on stderr (default: when stderr is a
    terminal). Raises InvalidProblem for a graph the task refuses."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    rng = np.random.default_rng(seed)
    p = _as_problem(problem, task.max_nodes)
    n = len(p.nodes)
    G = _Graph(n, p.edges)
    history: list[dict[str, Any]] = []

    def check(col: np.ndarray, k: int) -> bool:
        """The task's own validator on the colouring (plus the array check)."""
        if col.min() < 0 or col.max() >= k or G.conflicts(col) != 0:
            return False
        if k > MAX_COLORS:  # beyond the vocabulary: the exact array check stands alone
            return True
        q = ColoringProblem(nodes=p.nodes, edges=p.edges, k=k)
        canvas = task.encode([q])
        tokens = task.vocab.id("c0") + canvas.tokens.new_tensor(col).unsqueeze(0)
        return bool(task.validate(canvas, tokens).ok[0])

    greedy = "DSATUR" if len(p.edges) <= DSATUR_MAX_EDGES else "smallest_last"
    best = dsatur(p, greedy)
    upper = int(best.max()) + 1 if n else 0
    if not check(best, upper):
        raise RuntimeError("greedy colouring invalid")  # cannot happen: networkx's greedy is exact
    upper_reason = f"{greedy} (networkx)"
    clique = large_clique(G, p, min(5.0, 0.1 * time_limit), rng)
    lower, lower_reason = len(clique), f"a clique of {len(clique)} nodes"
    history.append({"k": upper, "found": True, "how": greedy, "seconds": round(time.perf_counter() - t0, 2)})
    bar = _bar(progress, time_limit, upper, lower)
    k = upper - 1
    while k >= max(lower, 1) and time.perf_counter() < deadline:
        tk = time.perf_counter()
        found, start = None, _reduce(best, k, G, rng)
        how = "tabu"
        if solver is not None and n <= model_max_nodes and k <= MAX_COLORS:
            col = _model_proposal(task, solver, p, k, model_passes)
            if col is not None and check(col, k):
                found, how = col, "model"
            elif col is not None and G.conflicts(col) < G.conflicts(start):
                start, how = col, "model + tabu"  # the model's canvas, conflicts and all, starts the search
        if found is None:

            def tick(f: int, k: int = k, lower: int = lower, upper: int = upper) -> None:
                if bar is not None:
                    bar.n = min(time_limit, round(time.perf_counter() - t0, 1))
                    bar.set_postfix_str(f"[{lower}, {upper}] trying k={k}: {f} conflicts")
                    bar.refresh()

            stop = deadline
            if solver is not None and n <= complete_max_nodes:  # leave time for the complete search
                stop = time.perf_counter() + local_share * (deadline - time.perf_counter())
            col, conflicts, iters = tabu_search(G, start, k, stop, rng, on_progress=tick)
            found = col if conflicts == 0 else None
            how += f" ({iters} moves)"
        if found is not None and check(found, k):
            best, upper, upper_reason = found, k, f"k={k} by {how.split(' (')[0]}"
            history.append({"k": k, "found": True, "how": how, "seconds": round(time.perf_counter() - tk, 2)})
            k -= 1
            continue
        proved, col = None, None
        if n <= complete_max_nodes:  # small graph: the complete search settles k
            proved, col = prove_infeasible(task, solver, p, k, clique, deadline - time.perf_counter())
        if proved is False and col is not None and check(col, k):
            best, upper, upper_reason = col, k, f"k={k} by complete search"
            history.append({"k": k, "found": True, "how": how + ", complete search",
                            "seconds": round(time.perf_counter() - tk, 2)})
            k -= 1
            continue
        history.append({"k": k, "found": False, "how": how + (", complete search: infeasible" if proved else ""),
                        "seconds": round(time.perf_counter() - tk, 2)})
        if proved:
            lower, lower_reason = k + 1, f"no {k}-colouring (complete search)"
        break
    if bar is not None:
        bar.set_postfix_str(f"[{lower}, {upper}]")
        bar.close()
    colouring = {p.nodes[i]: int(best[i]) for i in range(n)}
    return ChromaticResult(lower=lower, upper=upper, colouring=colouring, lower_reason=lower_reason,
                           upper_reason=upper_reason, seconds=time.perf_counter() - t0, history=history)


def _model_proposal(task: Any, solver: Any, p: ColoringProblem, k: int, passes: int) -> np.ndarray | None:
    """The model's k-colouring of ``p`` (complete, maybe with conflicts): the diffusion Solver with
    domains on, committing on a ``passes``-step top-k schedule, most confident nodes first, with no
    re-noising (the local search repairs what is wrong)."""
    import dataclasses  # noqa: PLC0415

    q = ColoringProblem(nodes=list(range(len(p.nodes))), edges=p.edges, k=k)
    old = solver.config
    solver.config = dataclasses.replace(
        old, search="local", max_passes=passes, validator_renoise=False, backjump=False, tabu=0, restarts=False,
        confidence_renoise=None, trace=False,
        sampler=dataclasses.replace(old.sampler, strategy="topk", steps=passes, floor=False))
    try:
        (r,) = solver.run(task.encode([q]), [q])
    finally:
        solver.config = old
    sol = r.solution
    if any(sol[i] is None or sol[i] >= k for i in range(len(p.nodes))):
        return None
    return np.array([sol[i] for i in range(len(p.nodes))], dtype=np.int64)


def _bar(progress: bool | None, time_limit: float, upper: int, lower: int) -> Any:
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(total=time_limit, unit="s", desc="chromatic", file=sys.stderr,
               bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s {postfix}")
    bar.set_postfix_str(f"[{lower}, {upper}]")
    return bar
