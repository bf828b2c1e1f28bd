"""Colour a graph and generate graphs under constraints with the shipped models.

    python examples/graphs.py
"""

import networkx as nx
from constrained.tasks.graphs import to_networkx

from constrained import load_task, solve, solve_batch

# 1. colouring: the Petersen graph with 3 colours, node 0 pre-coloured
g = nx.petersen_graph()
g.nodes[0]["color"] = 1
coloring = load_task("graph-coloring", k=3)
res = solve(coloring, g)
print("3-colouring valid:", res.valid, "passes:", res.passes, res.solution)
coloring.draw(res, "petersen.png")

# a graph that needs 4 colours comes back unsolved, with the reason
res = solve(coloring, nx.complete_graph(4), max_passes=16)
print("K4 with 3 colours valid:", res.valid, "-", res.messages[0])

# the fewest colours: bounds on the chromatic number of the Mycielski graph M5 (chi = 5)
from constrained.tasks.graphs.chromatic import chromatic  # noqa: E402

best = chromatic(coloring, nx.mycielski_graph(5), time_limit=3, progress=False)
print(f"M5 needs between {best.lower} and {best.upper} colours; colouring for {best.upper}:", best.colouring)

# 2. generation: ten different trees on 10 nodes with maximum degree 3
gen = load_task("graph-gen")
results = solve_batch(gen, [{"n": 10, "tree": True, "max_degree": 3}] * 10, temperature=1.0)
for r in results:
    t = to_networkx(r.solution)
    print("valid:", r.valid, "is_tree:", nx.is_tree(t), "degrees:", sorted(d for _, d in t.degree()))
