"""Graph benchmarks: colouring (held-out planted graphs, the networkx graph atlas) and
constrained generation (validity, uniqueness, novelty, samples/s), with the shipped models.

    python benchmarks/graphs.py [--coloring 500] [--samples 1000] [--quick]

Writes benchmarks/results/graphs.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, machine, write_section  # noqa: E402
from constrained.tasks.graphs import is_proper_coloring, parse_request, satisfies, to_networkx  # noqa: E402

from constrained.api import make_solver, solve_with  # noqa: E402
from constrained.registry import load_task  # noqa: E402

GEN_SETS = [
    {"n": 10, "tree": True},
    {"n": 10, "connected": True, "planar": True, "triangle_free": True},
    {"n": 10, "bipartite": True, "connected": True, "num_edges": 12},
    {"n": 10, "degree_sequence": [3] * 10},
    {"n": 12, "connected": True, "max_degree": 3, "num_edges": 14},
    {
        "n": 8,
        "connected": True,
        "triangle_free": True,
        "fixed_edges": [[0, 1], [1, 2]],
        "non_edges": [[0, 3]],
    },
]


def k_colourable(g: nx.Graph, k: int) -> bool:
    """Exact: backtracking over nodes in descending degree order."""
    order = sorted(g.nodes(), key=lambda v: -g.degree(v))
    col: dict = {}

    def rec(i: int) -> bool:
        if i == len(order):
            return True
        v = order[i]
        used = {col[w] for w in g[v] if w in col}
        for c in range(k):
            if c not in used:
                col[v] = c
                if rec(i + 1):
                    return True
                del col[v]
        return False

    return rec(0)


def chromatic_number(g: nx.Graph) -> int:
    k = 1
    while not k_colourable(g, k):
        k += 1
    return k


HELDOUT_SETTINGS = ("model only", "local 64", "local default", "complete")


def bench_coloring_heldout(n: int, lines: list[str], model: str = "default",
                           settings: tuple[str, ...] = HELDOUT_SETTINGS) -> None:
    task = load_task("graph-coloring", k=3)
    pairs = task.generate(n, seed=2026, family="mixed", min_nodes=20, max_nodes=50, k=3)
    problems = [p for p, _ in pairs]
    lines += [
        f"### Colouring: {n} held-out planted 3-colourable graphs, 20-50 nodes",
        "",
        "Families mixed evenly (G(n,p), planar, bipartite, regular), generator seed 2026 (training "
        "draws from its own stream). `valid` is the task's exact validator; every valid answer is "
        "re-checked with networkx (`is_proper_coloring`).",
        "",
        "| setting | solved | mean passes | median passes | s / graph |",
        "|---|---|---|---|---|",
    ]
    default_passes = task.solver_defaults.get("max_passes", 64)
    for key, name, opts in (
        ("model only", "model only", {"model_only": True}),
        ("local 64", "local search (domains, re-noising, backjumping, tabu, restarts), 64 passes",
         {"max_passes": 64, "search": "local"}),
        ("local default", f"local search, {default_passes} passes", {"search": "local"}),
        ("complete", f"complete search, {default_passes} passes (the task's default up to 100 nodes)", {}),
    ):
        if key not in settings:
            continue
        solver = make_solver(task, model, **opts)
        t0 = time.perf_counter()
        res = solve_with(solver, problems, batch_size=256)
        dt = time.perf_counter() - t0
        for p, r in zip(problems, res):
            g = nx.Graph([tuple(e) for e in p["edges"]])
            g.add_nodes_from(p["nodes"])
            assert r.valid == is_proper_coloring(g, r.solution, 3), "validator disagrees with networkx"
        passes = [r.passes for r in res]
        lines.append(
            f"| {name} | {sum(r.valid for r in res)}/{n} ({sum(r.valid for r in res) / n:.1%}) | "
            f"{statistics.mean(passes):.1f} | {statistics.median(passes):.0f} | {dt / n:.3f} |"
        )
        print(lines[-1], flush=True)
    lines.append("")


def bench_atlas(lines: list[str], max_passes: int, model: str = "default") -> None:
    task = load_task("graph-coloring", max_nodes=8)
    graphs = [g for g in nx.graph_atlas_g() if g.number_of_nodes() > 0]
    chi = [chromatic_number(g) for g in graphs]
    feasible = []
    infeasible = []
    for g, c in zip(graphs, chi):
        feasible.append({"nodes": list(g.nodes()), "edges": [list(e) for e in g.edges()], "k": c})
        if c > 1:
            infeasible.append({"nodes": list(g.nodes()), "edges": [list(e) for e in g.edges()], "k": c - 1})
    solver = make_solver(task, model, max_passes=max_passes)
    t0 = time.perf_counter()
    res_f = solve_with(solver, feasible, batch_size=256)
    res_i = solve_with(solver, infeasible, batch_size=256)
    dt = time.perf_counter() - t0
    bad = 0
    for p, r in zip(feasible + infeasible, res_f + res_i):
        g = nx.Graph()
        g.add_nodes_from(p["nodes"])
        g.add_edges_from(tuple(e) for e in p["edges"])
        if r.valid and not is_proper_coloring(g, r.solution, p["k"]):
            bad += 1
    solved_f = sum(r.valid for r in res_f)
    solved_i = sum(r.valid for r in res_i)
    hist = {c: chi.count(c) for c in sorted(set(chi))}
    lines += [
        f"### Colouring: the networkx graph atlas ({len(graphs)} graphs, 1-7 nodes)",
        "",
        f"Chromatic numbers computed exactly by backtracking (k = 1, 2, ...): {hist}. The empty "
        f"graph G0 is left out (the task refuses a graph with no nodes). Every graph is asked for a "
        f"chi(G)-colouring (colourable) and, when chi(G) > 1, a (chi(G) - 1)-colouring (not colourable); "
        f"max_passes {max_passes}, shipped model, every mechanism on (task option `max_nodes=8`; "
        "each canvas is as long as its batch's largest graph).",
        "",
        "| request | requests | reported solved | target |",
        "|---|---|---|---|",
        f"| chi(G) colours (colourable) | {len(feasible)} | {solved_f} ({solved_f / len(feasible):.1%}) | all |",
        f"| chi(G) - 1 colours (not colourable) | {len(infeasible)} | {solved_i} | 0 |",
        f"| invalid colourings reported valid (networkx re-check) | {len(feasible) + len(infeasible)} | {bad} | 0 |",
        "",
        f"Wall time {dt:.1f} s for {len(feasible) + len(infeasible)} requests.",
        "",
    ]
    print("\n".join(lines[-8:]), flush=True)


def training_hashes(steps: int, batch: int, seed: int = 0) -> set[str]:
    """WL hashes of the graphs the shipped graph-gen model saw (its training stream replayed)."""
    task = load_task("graph-gen")
    rng = np.random.default_rng([seed, 0, 0])  # TaskStream(seed, rank 0, worker 0)
    out = set()
    one = task.vocab.id("1")
    for _ in range(steps * batch):
        ex = task.training_example(rng)
        n = int(ex["context"][1]) - task.vocab.id("#0")
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(e for p, e in enumerate(task.pairs) if e[1] < n and int(ex["tokens"][p]) == one)
        out.add(_hash(g))
    return out


def _hash(g: nx.Graph) -> str:
    return f"{g.number_of_nodes()}:{g.number_of_edges()}:{nx.weisfeiler_lehman_graph_hash(g, iterations=4)}"


def bench_generation(
    samples: int, lines: list[str], train_steps: int, train_batch: int, model: str = "default"
) -> None:
    task = load_task("graph-gen")
    t0 = time.perf_counter()
    seen = training_hashes(train_steps, train_batch)
    t_hash = time.perf_counter() - t0
    lines += [
        f"### Generation: {samples} samples per constraint set (graphs up to 12 nodes)",
        "",
        f"Sampling temperature 1.0, at most {task.solver_defaults.get('max_passes', 64)} passes (the task's "
        "default). *validity*: the task's validator passed (every valid sample "
        "re-checked with networkx predicates, `satisfies`); *uniqueness*: distinct isomorphism "
        "classes among valid samples / valid samples; *novelty*: valid samples whose class never "
        f"appears among the {train_steps * train_batch} training graphs the shipped model saw "
        "(its training stream replayed; classes compared by node count, edge count and "
        "Weisfeiler-Lehman hash, as DiGress-style metrics do); samples/s over the whole batch "
        f"(replaying the training set took {t_hash:.0f} s, not counted).",
        "",
        "| constraint set | setting | validity | uniqueness | novelty | mean passes | samples/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for request in GEN_SETS:
        req = parse_request(request, task.max_nodes)
        for name, opts in (("model only", {"model_only": True}), ("full", {})):
            solver = make_solver(task, model, temperature=1.0, seed=1, **opts)
            t0 = time.perf_counter()
            res = solve_with(solver, [request] * samples, batch_size=500)
            dt = time.perf_counter() - t0
            valid = [r for r in res if r.valid]
            for r in valid:
                assert satisfies(req, to_networkx(r.solution)), "validator disagrees with networkx"
            hashes = [_hash(to_networkx(r.solution)) for r in valid]
            uniq = len(set(hashes)) / len(valid) if valid else 0.0
            novel = sum(h not in seen for h in hashes) / len(valid) if valid else 0.0
            passes = statistics.mean(r.passes for r in res)
            lines.append(
                f"| `{_short(request)}` | {name} | {len(valid) / samples:.1%} | {uniq:.1%} | "
                f"{novel:.1%} | {passes:.1f} | {samples / dt:.1f} |"
            )
            print(lines[-1], flush=True)
    lines.append("")


def _short(request: dict) -> str:
    return ", ".join(f"{k}={v}" if v is not True else k for k, v in request.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coloring", type=int, default=500, help="held-out colouring graphs")
    ap.add_argument("--samples", type=int, default=1000, help="generation samples per constraint set")
    ap.add_argument("--atlas-passes", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=150, help="steps the shipped graph-gen model trained")
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--coloring-model", default="default")
    ap.add_argument("--gen-model", default="default")
    ap.add_argument("--out", default="graphs", help="results section name (benchmarks/results/NAME.md)")
    ap.add_argument("--append", action="store_true", help="add to the results file instead of replacing it")
    ap.add_argument("--skip", nargs="*", default=[], choices=["heldout", "atlas", "generation", "dimacs"])
    ap.add_argument("--heldout-settings", nargs="*", default=list(HELDOUT_SETTINGS), choices=HELDOUT_SETTINGS)
    ap.add_argument("--dimacs-parts", nargs="*", default=["dsatur", "cpsat", "ours"],
                    choices=["dsatur", "cpsat", "ours", "scale"],
                    help="DIMACS: which solvers to run (others' stored figures are kept); scale: one forward pass "
                         "on 1,000 nodes / 250,000 edges")
    ap.add_argument("--dimacs-limit", type=float, default=60.0, help="DIMACS: seconds per instance for ours")
    ap.add_argument("--cpsat-limit", type=float, default=60.0, help="DIMACS: seconds per instance for CP-SAT")
    ap.add_argument("--dimacs-only", nargs="*", default=None, help="DIMACS: these instances only")
    ap.add_argument("--dimacs-resume", action="store_true", help="DIMACS: skip figures already stored")
    a = ap.parse_args()
    if "dimacs" not in a.skip:  # its own results section (benchmarks/results/graphs-dimacs.md)
        import dimacs  # noqa: PLC0415

        dimacs.run(a.dimacs_parts, a.dimacs_limit, a.cpsat_limit, a.dimacs_only, command(), a.coloring_model,
                   resume=a.dimacs_resume)
        write_section("graphs-dimacs", "\n".join(["## Graphs: DIMACS colouring", "", *dimacs.table(machine())]))
        if set(a.skip) >= {"heldout", "atlas", "generation"}:
            return
    lines = ["## Graphs", "", f"Command: `{command()}`", "", f"Machine: {machine()}", ""]
    t0 = time.perf_counter()
    if "heldout" not in a.skip:
        bench_coloring_heldout(a.coloring, lines, a.coloring_model, tuple(a.heldout_settings))
    if "atlas" not in a.skip:
        bench_atlas(lines, a.atlas_passes, a.coloring_model)
    if "generation" not in a.skip:
        bench_generation(a.samples, lines, a.train_steps, a.train_batch, a.gen_model)
    lines.append(f"Wall time of this run: {time.perf_counter() - t0:.0f} s.")
    text = "\n".join(lines)
    prev = RESULTS / f"{a.out}.md"
    if a.append and prev.exists():  # a later part of the benchmark, run separately
        text = prev.read_text().rstrip() + "\n\n" + "\n".join(lines[6:])
    path = write_section(a.out, text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
