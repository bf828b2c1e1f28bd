"""graph-coloring and graph-gen: parsing, exact validators, domains, generators, solving."""

import json
import time

import networkx as nx
import numpy as np
import pytest
import torch
from conftest import EASY, EASY_SOLUTION, tiny_graph_model, tiny_model
from constrained.engine import make_noise
from constrained.tasks.graphs import GraphRequest, is_proper_coloring, parse_request, satisfies, to_networkx
from constrained.tasks.graphs.generators import planted_graph

from constrained import ConfigError, InvalidProblem, load_task
from constrained.api import make_config
from constrained.cli import main
from constrained.solver import Solver
from constrained.trace import render_html


def _solver(task, model=None, **cfg):
    model = model or tiny_model(task, max_position_embeddings=2048)
    return Solver(task, model, make_noise("mask", task.vocab.mask_id), make_config(**cfg))


# --- graph colouring -------------------------------------------------------------------
def test_sudoku_is_solved_as_nine_colouring_of_the_sudoku_graph():
    g = nx.sudoku_graph(3)  # 81 nodes, row-major, 810 edges
    pre = {i: int(ch) - 1 for i, ch in enumerate(EASY) if ch != "."}
    task = load_task("graph-coloring", k=9, max_nodes=81)
    problem = {"nodes": list(range(81)), "edges": [list(e) for e in g.edges()], "precolored": pre}
    res = _solver(task, max_passes=64, threshold=0.99, floor=False).run(task.encode([problem]), [problem])[0]
    assert res.valid
    assert "".join(str(res.solution[i] + 1) for i in range(81)) == EASY_SOLUTION
    assert is_proper_coloring(g, res.solution, 9)


@pytest.mark.parametrize("family", ["gnp", "planar", "bipartite", "regular"])
def test_planted_generators_give_proper_colourings(family):
    rng = np.random.default_rng(3)
    for _ in range(5):
        g, col = planted_graph(rng, family, 30, 3)
        assert is_proper_coloring(g, col, 3)
        assert g.number_of_edges() > 0
        if family == "planar":
            assert nx.is_planar(g)
        if family == "bipartite":
            assert nx.is_bipartite(g)
        if family == "regular":
            assert len({d for _, d in g.degree()}) == 1


def test_validator_marks_both_ends_of_a_monochromatic_edge_and_domains_drop_neighbour_colours():
    task = load_task("graph-coloring", k=3, max_nodes=8)
    canvas = task.encode([{"edges": [[0, 1], [1, 2], [2, 3]], "k": 3}])
    c = task.vocab.id("c0")
    assert canvas.length == 4  # the canvas is as long as the batch's largest graph
    tokens = torch.tensor([[c, c + 1, c + 1, c]])
    rep = task.validate(canvas, tokens, messages=True)
    assert rep.ok.tolist() == [False]
    assert rep.violations[0].nonzero().squeeze(-1).tolist() == [1, 2]
    assert "adjacent nodes 1 and 2 share colour 1" in rep.messages[0][0]
    proper = torch.tensor([[c, c + 1, c, c + 1]])
    assert task.validate(canvas, proper).ok.tolist() == [True]
    partial = torch.tensor([[c, 1, 1, 1]])  # node 0 coloured 0, the rest [MASK]
    dom = task.domains(canvas, partial)[0]
    assert dom[1, c : c + 3].tolist() == [False, True, True]  # neighbour of node 0
    assert dom[2, c : c + 3].tolist() == [True, True, True]
    assert not dom[1, c + 3 :].any()  # colours >= k never allowed
    assert not task.validate(canvas, partial).ok.any()


def test_bad_colouring_input_is_refused_with_the_reason():
    task = load_task("graph-coloring", k=3)
    cases = [
        ({"edges": [[0, 0]]}, "self-loop at node 0"),
        ({"edges": [[0, 1]], "k": 0}, "k must be >= 1"),
        ({"edges": [[0, 1]], "colors": 3}, "unknown field"),
        ({"edges": [[0, 1]], "precolored": {"0": 1, "1": 1}}, "adjacent and share colour 1"),
        ({"edges": [[0, 1]], "precolored": {"0": 5}}, "0..2"),
        ({"nodes": [0, 1], "edges": [[0, 7]]}, "node 7, which is not in the graph"),
        ("not json", "must be a JSON object"),
        ({"nodes": list(range(1100))}, "1100 nodes"),
        ({"nodes": [[0, 1], [0, 2]], "edges": [[[0, 1], [0, 2]]]}, "not hashable"),
        ({"nodes": [1, True]}, "compare equal"),
        ({"edges": [[0, 1]], "k": 300}, "vocabulary holds 256 colours.*--chromatic"),
    ]
    for problem, message in cases:
        with pytest.raises(InvalidProblem, match=message):
            task.encode([problem])
    with pytest.raises(ConfigError, match="k must be an integer"):
        load_task("graph-coloring", k=0)


def test_networkx_json_and_edge_list_inputs_agree(tmp_path):
    task = load_task("graph-coloring", k=3)
    g = nx.cycle_graph(["a", "b", "c", "d"])
    g.nodes["a"]["color"] = 2
    (tmp_path / "g.json").write_text(
        json.dumps({"edges": [["a", "b"], ["b", "c"], ["c", "d"], ["d", "a"]], "precolored": {"a": 2}})
    )
    (tmp_path / "g.txt").write_text("# a square\na b\nb c\nc d\nd a\n")
    p1 = task.parse(g)
    p2 = task.parse(task.read_problems(tmp_path / "g.json")[0])
    p3 = task.parse(task.read_problems(tmp_path / "g.txt")[0])
    assert p1.edges == p2.edges == p3.edges and p1.nodes == p2.nodes == p3.nodes
    assert p1.precolored == p2.precolored == {0: 2} and p3.precolored == {}


def test_non_colourable_request_is_reported_unsolved_never_invalid():
    task = load_task("graph-coloring", k=3, max_nodes=8)
    k4 = nx.complete_graph(4)
    res = _solver(task, max_passes=16, search="local").run(task.encode([k4, k4]), [k4, k4])
    assert [r.status for r in res] == ["unsolved", "unsolved"]  # local search proves nothing
    assert all(not is_proper_coloring(k4, r.solution, 3) for r in res)
    assert any("share colour" in m for m in res[0].messages)
    res = _solver(task, max_passes=16).run(task.encode([k4]), [k4])  # the complete search proves it
    assert res[0].status == "infeasible" and res[0].solution is None and res[0].messages[0].startswith("no solution")


def test_cli_solves_a_json_file_prints_node_colours_and_draws(tmp_path, capsys):
    task = load_task("graph-coloring", k=2, max_nodes=8)
    tiny_model(task).save_pretrained(tmp_path / "m")
    (tmp_path / "g.json").write_text(json.dumps({"edges": [[0, 1], [1, 2], [2, 3]]}))
    code = main(
        [
            "solve",
            "graph-coloring",
            str(tmp_path / "g.json"),
            "--k",
            "2",
            "--max-nodes",
            "8",
            "--model",
            str(tmp_path / "m"),
            "--draw",
            str(tmp_path / "g.png"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    colours = json.loads(out.splitlines()[0])
    assert colours in ({"0": 0, "1": 1, "2": 0, "3": 1}, {"0": 1, "1": 0, "2": 1, "3": 0})
    assert (tmp_path / "g.png").stat().st_size > 1000
    code = main(
        [
            "solve",
            "graph-coloring",
            str(tmp_path / "g.json"),
            "--k",
            "0",
            "--max-nodes",
            "8",
            "--model",
            str(tmp_path / "m"),
        ]
    )
    assert code == 2


# --- graph generation ------------------------------------------------------------------
def test_contradictory_or_unknown_requests_are_refused_up_front():
    cases = [
        ({"n": 6, "tree": True, "num_edges": 6}, "tree on 6 nodes has 5 edges"),
        ({"n": 4, "degree_sequence": [1, 1, 1, 2]}, "odd sum"),
        ({"n": 4, "acyclic": True}, "unknown constraint"),
        ({"n": 4, "constraints": ["tree", "sparse"]}, "unknown constraint 'sparse'"),
        ({"n": 4, "fixed_edges": [[2, 2]]}, "self-loop at node 2"),
        ({"n": 5, "triangle_free": True, "fixed_edges": [[0, 1], [1, 2], [0, 2]]}, "triangle 0-1-2"),
        ({"n": 6, "planar": True, "num_edges": 13}, "at most 12 edges"),
        ({"n": 20}, "exceeds this task's max_nodes"),
    ]
    for problem, message in cases:
        with pytest.raises(InvalidProblem, match=message):
            parse_request(problem, 12)


def _tokens(task, canvas, g):
    row = canvas.tokens[0].clone()
    for p, (u, v) in enumerate(task.pairs):
        if v < canvas.meta[0].n:
            row[p] = task.vocab.id("1") if g.has_edge(u, v) else task.vocab.id("0")
    return row.unsqueeze(0)


def test_violations_are_localised_to_the_edges_that_cause_them():
    task = load_task("graph-gen", max_nodes=8)

    def implicated(request, g):
        canvas = task.encode([request])
        rep = task.validate(canvas, _tokens(task, canvas, g), messages=True)
        pairs = {task.pairs[p] for p in rep.violations[0].nonzero().squeeze(-1).tolist()}
        return bool(rep.ok[0]), pairs, rep.messages[0]

    tri = nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)])
    ok, pairs, msgs = implicated({"n": 4, "triangle_free": True}, tri)
    assert not ok and pairs == {(0, 1), (1, 2), (0, 2)} and "triangle 0-1-2" in msgs[0]
    ok, pairs, _ = implicated({"n": 4, "tree": True}, tri)
    assert not ok and pairs == {(0, 1), (1, 2), (0, 2)}
    k5 = nx.complete_graph(5)
    ok, pairs, msgs = implicated({"n": 5, "planar": True}, k5)
    assert not ok and len(pairs) == 10 and "Kuratowski" in msgs[0]
    star = nx.star_graph(4)  # centre 0 of degree 4
    ok, pairs, _ = implicated({"n": 5, "max_degree": 3}, star)
    assert not ok and pairs == {(0, 1), (0, 2), (0, 3), (0, 4)}
    two = nx.Graph([(0, 1), (2, 3)])
    ok, pairs, msgs = implicated({"n": 4, "connected": True}, two)
    assert not ok and pairs == {(0, 2), (0, 3), (1, 2), (1, 3)} and "2 connected components" in msgs[0]
    ok, pairs, _ = implicated({"n": 5, "bipartite": True}, nx.cycle_graph(5))
    assert not ok and len(pairs) == 5
    assert implicated({"n": 5, "tree": True, "max_degree": 2}, nx.path_graph(5))[0]


def test_domains_forbid_closing_a_triangle_and_extra_edges():
    task = load_task("graph-gen", max_nodes=5)
    canvas = task.encode([{"n": 4, "triangle_free": True, "num_edges": 2}])
    zero, one, mask = task.vocab.id("0"), task.vocab.id("1"), task.vocab.mask_id
    row = canvas.tokens.clone()
    row[0, task.pos[(0, 1)]] = one
    row[0, task.pos[(1, 2)]] = one
    row[0, task.pos[(2, 3)]] = mask
    dom = task.domains(canvas, row)[0]
    assert not dom[task.pos[(0, 2)], one] and dom[task.pos[(0, 2)], zero]  # would close 0-1-2; count reached
    assert not dom[task.pos[(2, 3)], one]


def test_tiny_model_generates_only_valid_trees_when_it_says_valid():
    task = load_task("graph-gen", max_nodes=8)
    request = {"n": 7, "tree": True}
    res = _solver(task, max_passes=48, temperature=1.0).run(task.encode([request] * 6), [request] * 6)
    assert any(r.valid for r in res)
    for r in res:
        g = to_networkx(r.solution)
        assert r.valid == nx.is_tree(g) == satisfies(GraphRequest(n=7, tree=True), g)


def test_generated_eval_requests_are_satisfied_by_their_graphs():
    task = load_task("graph-gen")
    for request, graph in task.generate(40, seed=5):
        assert satisfies(parse_request(request, 12), to_networkx(graph))


def _partial(task, canvas, edges=(), non_edges=()):
    row = canvas.tokens.clone()
    for e in edges:
        row[0, task.pos[e]] = task.vocab.id("1")
    for e in non_edges:
        row[0, task.pos[e]] = task.vocab.id("0")
    return row


def test_too_few_edges_possible_for_a_bipartite_count_is_caught_on_a_partial_canvas():
    # path 0-1-2 puts 0 and 2 on one side; with 3 kept off (0, 3), at most (1, 3) or (2, 3) can
    # be added without an odd cycle: 3 edges at most, 4 asked (each pair alone would be addable)
    task = load_task("graph-gen", max_nodes=5)
    canvas = task.encode([{"n": 4, "bipartite": True, "num_edges": 4}])
    row = _partial(task, canvas, edges=[(0, 1), (1, 2)], non_edges=[(0, 3)])
    rep = task.validate(canvas, row, messages=True)
    implicated = {task.pairs[p] for p in rep.violations[0].nonzero().squeeze(-1).tolist()}
    assert not rep.ok[0] and implicated == {(0, 3)}
    assert "at most 3 edges possible, want 4" in rep.messages[0][0]


def test_domains_force_bridges_of_a_connected_request_and_count_needed_pairs_one_at_a_time():
    task = load_task("graph-gen", max_nodes=6)
    zero, one = task.vocab.id("0"), task.vocab.id("1")
    canvas = task.encode([{"n": 4, "connected": True}])
    row = _partial(task, canvas, edges=[(0, 1), (1, 2)], non_edges=[(0, 3), (1, 3)])
    dom = task.domains(canvas, row)[0]
    assert not dom[task.pos[(2, 3)], zero] and dom[task.pos[(2, 3)], one]  # node 3's only way in
    assert dom[task.pos[(0, 2)], zero] and dom[task.pos[(0, 2)], one]
    # C4 = K(2,2): after 0-1, 1-2 every remaining crossing pair is needed, but only one is forced per call
    canvas = task.encode([{"n": 4, "bipartite": True, "num_edges": 4}])
    dom = task.domains(canvas, _partial(task, canvas, edges=[(0, 1), (1, 2)]))[0]
    assert not dom[task.pos[(0, 2)], one]  # same side
    forced = [e for e in [(0, 3), (2, 3)] if not dom[task.pos[e], zero]]
    assert len(forced) == 1



def test_training_batches_give_a_domain_reading_model_the_colours_left_by_visible_neighbours():
    from constrained.finetune.data import DiffusionCollator

    task = load_task("graph-coloring", k=3, max_nodes=16, train_min_nodes=10, train_max_nodes=16)
    rng = np.random.default_rng(0)
    examples = [task.training_example(rng) for _ in range(8)]
    noise = make_noise("mask", task.vocab.mask_id)
    batch = DiffusionCollator(task, noise, seed=0, domains=True)(examples)
    first, mask = task.vocab.id("c0"), task.vocab.mask_id
    checked = 0
    for b, ex in enumerate(examples):
        xt, dom = batch["input_ids"][b], batch["domains"][b]
        for i, j in ex["meta"].edges:
            for u, w in ((i, j), (j, i)):
                if xt[u] == mask and xt[w] != mask:
                    assert not dom[u, xt[w]] and dom[u].any()  # the neighbour's colour is gone
                    checked += 1
        assert not dom[xt != mask].any()  # filled positions carry no candidates
        assert not dom[:, first + ex["meta"].k:].any()
    assert checked > 0


# --- input / output ---------------------------------------------------------------------
def test_node_labels_round_trip_exactly_tuples_stay_tuples_and_1_differs_from_text_1():
    task = load_task("graph-coloring", k=3)
    g = nx.Graph([((0, 1), "(0, 1)"), (1, "1"), ((0, 1), 1)])
    canvas = task.encode([g])
    c = task.vocab.id("c0")
    sol = task.decode(canvas, torch.tensor([[c, c + 1, c + 2, c + 1]]))[0]
    assert set(sol) == {(0, 1), "(0, 1)", 1, "1"} and len(sol) == 4
    assert isinstance(next(v for v in sol if isinstance(v, tuple)), tuple)
    assert sol[(0, 1)] == 0 and sol["(0, 1)"] == 1 and sol[1] == 2 and sol["1"] == 1
    assert is_proper_coloring(g, sol, 3)
    # an edge naming "1" where only 1 exists is refused, never merged
    with pytest.raises(InvalidProblem, match="names node '1'"):
        task.encode([{"nodes": [1, 2], "edges": [["1", 2]]}])
    # output: an object when the keys are unambiguous, else [node, colour] pairs
    assert json.loads(task.format_solution({1: 0, 2: 1})) == {"1": 0, "2": 1}
    pairs = json.loads(task.format_solution(sol))
    assert sorted(map(str, (tuple(v) if isinstance(v, list) else v for v, _ in pairs))) == sorted(
        ["(0, 1)", "(0, 1)", "1", "1"])
    assert len(pairs) == 4


def test_dimacs_col_reader_tolerates_duplicates_refuses_self_loops_and_writes_solution_lines(tmp_path):
    task = load_task("graph-coloring", k=3)
    f = tmp_path / "tri.col"
    f.write_text("c a triangle plus a pendant\np edge 4 5\ne 1 2\ne 2 3\ne 3 1\ne 2 1\ne 3 4\n")
    (problem,) = task.read_problems(f)
    p = task.parse(problem)
    assert p.nodes == [1, 2, 3, 4] and p.edges == [(0, 1), (0, 2), (1, 2), (2, 3)]
    f.write_text("p edge 3 2\ne 1 2\ne 3 3\n")
    with pytest.raises(InvalidProblem, match="line 3: self-loop at node 3"):
        task.read_problems(f)
    f.write_text("p edge 3 1\ne 1 4\n")
    with pytest.raises(InvalidProblem, match="node 4 is outside 1..3"):
        task.read_problems(f)
    f.write_text("e 1 2\n")
    with pytest.raises(InvalidProblem, match="before the 'p edge N M' line"):
        task.read_problems(f)
    out = task.format_solution({1: 0, 2: 1, 3: 2, 4: 0}, style="dimacs")
    assert out.splitlines() == ["s col 3", "l 1 1", "l 2 2", "l 3 3", "l 4 1"]


@pytest.mark.parametrize("digit", ["\uff11", "\u0661", "\u00b9"])  # full-width 1, Arabic-Indic 1, superscript 1
def test_only_ascii_digits_count_in_graph_files(tmp_path, digit):
    task = load_task("graph-coloring", k=3)
    f = tmp_path / "g.txt"
    f.write_text(f"1 2\n2 {digit}\n")
    with pytest.raises(InvalidProblem, match=f"line 2: '{digit}'.*not an ASCII digit"):
        task.read_problems(f)
    f.write_text("1 2\n2 x1\n")  # letters and ASCII digits are fine: 'x1' is a name, 1 an int
    assert task.read_problems(f)[0]["nodes"] == [1, 2, "x1"]
    d = tmp_path / "g.col"
    d.write_text(f"p edge 2 1\ne 1 {digit}\n")
    with pytest.raises(InvalidProblem, match="line 2"):
        task.read_problems(d)


def test_cli_reads_a_dimacs_file_and_refuses_a_self_loop_with_exit_2(tmp_path, capsys):
    task = load_task("graph-coloring", k=2, max_nodes=8)
    tiny_graph_model(task).save_pretrained(tmp_path / "m")
    (tmp_path / "g.col").write_text("p edge 4 3\ne 1 2\ne 2 3\ne 3 4\n")
    code = main(["solve", "graph-coloring", str(tmp_path / "g.col"), "--k", "2", "--model", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out.splitlines()[0]) in ({"1": 0, "2": 1, "3": 0, "4": 1}, {"1": 1, "2": 0, "3": 1, "4": 0})
    (tmp_path / "bad.col").write_text("p edge 2 1\ne 2 2\n")
    code = main(["solve", "graph-coloring", str(tmp_path / "bad.col"), "--model", str(tmp_path / "m")])
    assert code == 2 and "self-loop at node 2" in capsys.readouterr().err


def test_graph_denoiser_is_symmetric_in_colours_and_nodes_and_reads_the_adjacency():
    task = load_task("graph-coloring", k=4)
    model = tiny_graph_model(task)
    g = nx.petersen_graph()
    canvas = task.encode([{"nodes": list(g.nodes()), "edges": [list(e) for e in g.edges()], "k": 4,
                           "precolored": {0: 0, 5: 1, 7: 2}}])
    from constrained.engine.denoiser import predict_logits

    x = canvas.tokens
    dom = task.domains(canvas, x)
    base = predict_logits(model, x, canvas, None, dom)[0, :, 2:6]  # [10, 4] colour logits
    # relabel colours 0 <-> 2: the logits swap the same way
    swap = torch.tensor([2, 1, 0, 3])
    c0 = task.vocab.id("c0")
    xs = torch.where(x >= c0, c0 + swap[(x - c0).clamp(0, 3)], x)
    doms = dom.clone()
    doms[..., c0:c0 + 4] = dom[..., c0:c0 + 4][..., swap]
    out = predict_logits(model, xs, canvas, None, doms)[0, :, 2:6]
    assert torch.allclose(out, base[:, swap], atol=1e-5)
    # renumber the nodes: the logits follow the nodes
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    cp = canvas.select([0])
    cp.peers = canvas.peers[:, perm][:, :, perm]
    outp = predict_logits(model, x[:, perm], cp, None, dom[:, perm])[0, :, 2:6]
    assert torch.allclose(outp, base[perm], atol=1e-5)
    # and the adjacency matters: without edges the logits change
    cp.peers = torch.zeros_like(canvas.peers)
    assert not torch.allclose(predict_logits(model, x, cp, None, dom)[0, :, 2:6], base, atol=1e-4)


# --- the fewest colours ------------------------------------------------------------------------
def test_chromatic_bounds_meet_on_graphs_with_a_clique_as_large_as_their_chromatic_number():
    from constrained.tasks.graphs.chromatic import chromatic

    task = load_task("graph-coloring")
    g = nx.Graph(nx.queens_graph(5) if hasattr(nx, "queens_graph") else [])
    if g.number_of_nodes() == 0:  # 5x5 queens by hand: same row, column or diagonal
        cells = [(r, c) for r in range(5) for c in range(5)]
        g.add_edges_from((a, b) for a in cells for b in cells
                         if a < b and (a[0] == b[0] or a[1] == b[1] or abs(a[0] - b[0]) == abs(a[1] - b[1])))
    r = chromatic(task, g, None, time_limit=10, progress=False)
    assert (r.lower, r.upper, r.status) == (5, 5, "optimal")
    assert is_proper_coloring(g, r.colouring, 5) and isinstance(next(iter(r.colouring)), tuple)
    # an odd cycle: the clique proves 2 only; the colouring is proper either way
    c = nx.cycle_graph(9)
    r = chromatic(task, c, None, time_limit=1, progress=False)
    assert r.lower == 2 and r.upper == 3 and is_proper_coloring(c, r.colouring, 3)


def test_chromatic_proves_lower_bounds_above_the_clique_with_the_complete_search():
    from constrained.tasks.graphs.chromatic import chromatic

    from constrained.api import make_solver

    task = load_task("graph-coloring")
    solver = make_solver(task, tiny_graph_model(task))
    for g, chi in ((nx.cycle_graph(9), 3), (nx.mycielski_graph(4), 4)):  # cliques of 2
        r = chromatic(task, g, solver, time_limit=20, progress=False)
        assert (r.lower, r.upper, r.status) == (chi, chi, "optimal"), r.history
        assert "complete search" in r.lower_reason and is_proper_coloring(g, r.colouring, chi)


def test_tabu_local_search_repairs_a_colouring_and_the_search_goes_below_dsatur():
    from constrained.tasks.graphs.chromatic import _Graph, chromatic, dsatur, tabu_search

    task = load_task("graph-coloring")
    rng = np.random.default_rng(0)
    g, planted = planted_graph(rng, "gnp", 120, 5, avg_degree=14.0)
    p = task.parse({"nodes": list(range(120)), "edges": [list(e) for e in g.edges()], "k": 5})
    G = _Graph(120, p.edges)
    start = rng.integers(0, 5, 120)
    assert G.conflicts(start) > 0
    col, conflicts, iters = tabu_search(G, start, 5, time.perf_counter() + 30, rng)
    assert conflicts == 0 and G.conflicts(col) == 0 and iters > 0
    r = chromatic(task, g, None, time_limit=20, progress=False, seed=1)
    assert r.upper <= int(dsatur(p).max()) + 1 and r.upper == 5
    assert is_proper_coloring(g, r.colouring, r.upper)
    assert r.history[0]["how"] == "DSATUR"


def test_cli_chromatic_reports_bounds_and_a_colouring_and_refuses_precoloured_graphs(tmp_path, capsys):
    task = load_task("graph-coloring")
    tiny_graph_model(task).save_pretrained(tmp_path / "m")
    (tmp_path / "k4.col").write_text("p edge 5 7\ne 1 2\ne 1 3\ne 1 4\ne 2 3\ne 2 4\ne 3 4\ne 4 5\n")
    args = ["solve", "graph-coloring", str(tmp_path / "k4.col"), "--chromatic", "--time-limit", "2",
            "--model", str(tmp_path / "m")]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    colours = json.loads(out[0])
    assert len(colours) == 5 and len(set(colours.values())) == 4
    assert "chromatic number in [4, 4] (optimal)" in out[1]
    assert main([*args, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["lower"] == rec["upper"] == 4
    (tmp_path / "pre.json").write_text(json.dumps({"edges": [[0, 1]], "precolored": {"0": 1}}))
    code = main(["solve", "graph-coloring", str(tmp_path / "pre.json"), "--chromatic", "--model", str(tmp_path / "m")])
    assert code == 2 and "drop the pre-coloured nodes" in capsys.readouterr().err


def test_trace_page_draws_graphs_up_to_200_nodes_as_a_graph(tmp_path):
    from constrained.trace import trace_data

    task = load_task("graph-coloring", k=3)
    g = nx.petersen_graph()
    res = _solver(task, tiny_graph_model(task), max_passes=32, trace=True).run(task.encode([g]), [g])[0]
    view = trace_data(res, task)["view"]
    assert view["kind"] == "graph" and len(view["coords"]) == 10 and len(view["edges"]) == 15
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in view["coords"])
    assert view["labels"][0] == "node 0" and set(view["palette"]) == {"c0", "c1", "c2"}
    html = render_html(res, task, tmp_path / "t.html")
    assert '"kind": "graph"' in html or '"kind":"graph"' in html
    big = nx.cycle_graph(201)
    assert task.trace_view(task.encode([big])) is None  # past 200 nodes: the default strip
