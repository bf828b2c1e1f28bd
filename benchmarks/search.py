"""Certified search benchmark: the complete, model-guided search on public hard Sudoku collections,
model-ordered against model-free, side by side with OR-tools CP-SAT (one worker) in the same run.

    python benchmarks/search.py                     # every puzzle of both development collections
    python benchmarks/search.py --n 200             # the first 200 of each

Needs ``../shared/data/sudoku`` beside the repository and ``pip install ortools`` (optional: without
it the CP-SAT column is left out and says so). Writes benchmarks/results/search.md (then run
benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, ROOT, command, machine, percentile, write_section  # noqa: E402
from constrained.tasks.sudoku import parse_grid  # noqa: E402

from constrained import load_task, make_solver, solve_with  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "sudoku"
SETS = {
    "17-clue (Royle), dev": SHARED / "royle17-dev-2000.txt",
    "top1465 (magictour), dev": SHARED / "top1465-dev.txt",
    "generated expert (minimal), seed 12345": DATA / "sudoku-expert-1000-seed12345.txt",
}
SETTINGS = {
    "model-ordered, model every 8th pass (default)": {},
    "model-ordered, model every pass": {"model_every": 1},
    "model-free (fewest candidates, fixed value order)": {"order": "fixed"},
    "model-ordered, up to 4 decisions per pass (p >= 0.99)": {"decisions_per_pass": 4, "model_every": 1},
}


def read(path: Path, n: int | None) -> list[str]:
    lines = [ln.split(",")[0].strip() for ln in path.read_text().splitlines() if ln.strip()]
    return lines[:n] if n else lines


def ours(puzzles: list[str], batch_size: int, **options) -> dict[str, float]:
    solver = make_solver("sudoku", **options)
    t0 = time.perf_counter()
    res = solve_with(solver, puzzles, batch_size=batch_size)
    wall = time.perf_counter() - t0
    task = load_task("sudoku")
    for p, r in zip(puzzles, res):  # re-check every claim here, outside the solver
        if r.status == "solved":
            assert bool(task.validate(task.encode([r.solution]), task.encode([r.solution]).tokens).ok[0])
            assert all(g == 0 or str(g) == c for g, c in zip(parse_grid(p), r.solution))
    passes = [r.passes for r in res]
    return {"solved": sum(r.status == "solved" for r in res) / len(res),
            "infeasible": sum(r.status == "infeasible" for r in res),
            "median": statistics.median(passes), "p95": percentile(passes, 95), "max": max(passes),
            "per_s": len(res) / wall, "forward": solver.stats.forward_seconds / wall}


def cpsat(puzzles: list[str]) -> dict[str, float] | None:
    """OR-tools CP-SAT, one worker, AllDifferent on rows, columns and boxes; solutions checked."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        return None
    task = load_task("sudoku")
    solved = 0
    t0 = time.perf_counter()
    for p in puzzles:
        g = parse_grid(p)
        m = cp_model.CpModel()
        x = [m.new_int_var(1, 9, f"x{i}") for i in range(81)]
        for i, v in enumerate(g):
            if v:
                m.add(x[i] == v)
        for group in task.layout.groups:
            m.add_all_different([x[i] for i in group])
        s = cp_model.CpSolver()
        s.parameters.num_workers = 1
        if s.solve(m) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            sol = "".join(str(s.value(v)) for v in x)
            solved += bool(task.validate(task.encode([sol]), task.encode([sol]).tokens).ok[0])
    wall = time.perf_counter() - t0
    return {"solved": solved / len(puzzles), "per_s": len(puzzles) / wall}


def chromatic(g) -> int:
    """Exact chromatic number by backtracking (atlas graphs have at most 7 nodes): an independent check."""
    nodes = sorted(g.nodes(), key=g.degree, reverse=True)

    def colourable(k: int) -> bool:
        col: dict = {}

        def place(i: int) -> bool:
            if i == len(nodes):
                return True
            used = {col[u] for u in g[nodes[i]] if u in col}
            for c in range(min(k, len(set(col.values())) + 1)):
                if c not in used:
                    col[nodes[i]] = c
                    if place(i + 1):
                        return True
                    del col[nodes[i]]
            return False

        return place(0)

    return next(k for k in range(1, len(nodes) + 1) if colourable(k))


def atlas(batch_size: int) -> list[str]:
    """Every graph of the networkx atlas with an edge, asked with chi(G) and chi(G) - 1 colours."""
    import networkx as nx

    graphs = [g for g in nx.graph_atlas_g() if g.number_of_edges()]
    problems, expect = [], []
    for g in graphs:
        chi = chromatic(g)
        for k, want in ((chi, "solved"), (chi - 1, "infeasible")):
            problems.append({"nodes": list(g.nodes()), "edges": [list(e) for e in g.edges()], "k": k})
            expect.append(want)
    lines = ["", "Graph colouring, networkx atlas: every graph with an edge (up to 7 nodes), asked with its chromatic "
             "number chi(G) (from an independent exact backtracking check) and with chi(G) - 1; shipped model, "
             "complete search.", "",
             "| graphs | requests | chi(G): solved (valid) | chi(G) - 1: infeasible | wrong verdicts | invalid | "
             "seconds |", "|---|---|---|---|---|---|---|"]
    t0 = time.perf_counter()
    res = solve_with(make_solver("graph-coloring"), problems, batch_size=batch_size)
    wall = time.perf_counter() - t0
    solved = sum(r.status == "solved" and e == "solved" for r, e in zip(res, expect))
    refuted = sum(r.status == "infeasible" and e == "infeasible" for r, e in zip(res, expect))
    wrong = sum(r.status != "unsolved" and r.status != e for r, e in zip(res, expect))
    invalid = 0
    for p, r in zip(problems, res):
        if r.status == "solved":
            c = r.solution
            ok = all(c[u] != c[v] and 0 <= c[u] < p["k"] for u, v in p["edges"])
            invalid += not ok
    row = (f"| {len(graphs)} | {len(problems)} | {solved} of {len(graphs)} | {refuted} of {len(graphs)} | {wrong} | "
           f"{invalid} | {wall:.0f} |")
    print(row, flush=True)
    return lines + [row]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="first N puzzles of each set (default: all)")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--max-passes", type=int, default=None, help="default: the task's")
    ap.add_argument("--no-atlas", action="store_true", help="leave out the graph-colouring atlas table")
    a = ap.parse_args()
    opts = {} if a.max_passes is None else {"max_passes": a.max_passes}
    budget = make_solver("sudoku", **opts).config.max_passes
    lines = [
        "## Certified search (Sudoku)", "",
        f"Command: `{command()}`  ", f"Machine: {machine()}  ",
        f"The complete search (`search=\"complete\"`, the Sudoku default): each pass propagates (singles, "
        f"locked candidates, Hall sets), commits what is forced and pushes one decision; dead ends backtrack. "
        f"Budget {budget} passes, batch {a.batch_size}, shipped model. *passes* are decision rounds (0 when "
        "propagation alone solves the puzzle); *forward share* is the share of the wall time spent in the "
        f"denoiser. Load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. "
        "Every solution is re-validated by the script; "
        "CP-SAT: OR-tools, one worker, `AllDifferent` per row, column and box, solved one puzzle at a time in "
        "the same run.", "",
        "| puzzles | solver | verified | infeasible | passes median / p95 / max | puzzles/s | forward share |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, path in SETS.items():
        if not path.exists():
            lines.append(f"| {name} | (file {path} not found) | | | | | |")
            continue
        puzzles = read(path, a.n)
        label = f"{name} ({len(puzzles)})"
        for setting, extra in SETTINGS.items():
            if ("decisions per pass" in setting or "every pass" in setting) and "top1465" not in name:
                continue  # measured on the hardest collection only
            m = ours(puzzles, a.batch_size, **opts, **extra)
            row = (f"| {label} | {setting} | {m['solved']:.1%} | {m['infeasible']} | {m['median']:.0f} / "
                   f"{m['p95']:.0f} / {m['max']} | {m['per_s']:.1f} | {m['forward']:.0%} |")
            print(row, flush=True)
            lines.append(row)
        c = cpsat(puzzles)
        row = (f"| {label} | OR-tools CP-SAT, 1 worker | {c['solved']:.1%} | 0 | – | {c['per_s']:.1f} | – |"
               if c else f"| {label} | OR-tools CP-SAT | (ortools not installed) | | | | |")
        print(row, flush=True)
        lines.append(row)
    if not a.no_atlas:
        lines += atlas(a.batch_size)
    print(f"wrote {write_section('search', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
