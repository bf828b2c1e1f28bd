"""The complete search: verdicts (solved / infeasible / unsolved), proofs, uniqueness, and that an
"infeasible" is never wrong (checked against an exact solver)."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import pytest
import torch
from constrained.engine.model import DenoiserConfig, DenoiserModel
from constrained.tasks.sudoku import count_solutions, make_puzzle, parse_grid, solve_exact

from constrained import load_task, make_solver, solve, solve_with
from constrained.errors import ConfigError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sudoku"


def named() -> dict[str, str]:
    """The well-known puzzles of shared/data/sudoku/named.txt, by the first words of their name."""
    out, name = {}, None
    for line in (DATA / "named.txt").read_text().splitlines():
        if line.startswith("#"):
            name = line[1:].strip()
        elif line.strip() and name:
            out[name] = line.strip()
    return out


needs_data = pytest.mark.skipif(not (DATA / "named.txt").exists(), reason="shared/data/sudoku is not beside the repo")


def _puzzle(prefix: str) -> str:
    return next(p for n, p in named().items() if n.startswith(prefix))


@needs_data
@pytest.mark.parametrize("name", ["AI Escargot", "Arto Inkala", "Golden Nugget"])
def test_famous_hard_puzzles_are_solved_and_shown_unique(name):
    p = _puzzle(name)
    r = solve("sudoku", p, order="fixed", check_unique=True, max_passes=2000)
    assert r.status == "solved" and r.valid and r.unique is True
    assert r.solution == "".join(map(str, solve_exact(parse_grid(p))))


@needs_data
def test_model_ordered_search_solves_ai_escargot():
    r = solve("sudoku", _puzzle("AI Escargot"), max_passes=512)
    assert r.status == "solved" and r.valid and r.passes == r.decisions >= 1


@needs_data
def test_norvig_impossible_grid_with_separators_is_infeasible():
    text = (DATA / "norvig-impossible.txt").read_text()
    assert "|" in text and "------+------+------" in text
    r = solve("sudoku", text, order="fixed")
    assert r.status == "infeasible" and not r.valid and r.solution is None
    assert r.messages[0].startswith("no solution:")


@needs_data
def test_cell_without_candidate_is_infeasible_at_once_naming_the_cell():
    p = _puzzle("no solution")
    r = solve("sudoku", p)
    assert r.status == "infeasible" and r.passes == 0 and r.decisions == 0
    assert r.messages == ["no solution: r5c1 has no candidate (row 5 holds 1,2,3,4,5,7; column 1 holds 3,6,8,9; "
                          "box 4 holds 2,6)"]


@needs_data
def test_fifteen_clue_puzzle_is_reported_not_unique():
    p = _puzzle("15 givens")
    assert sum(ch not in ".0" for ch in p) == 15
    r = solve("sudoku", p, order="fixed", check_unique=True)
    assert r.status == "solved" and r.unique is False
    assert r.alternative is not None and r.alternative != r.solution
    task = load_task("sudoku")
    for grid in (r.solution, r.alternative):  # both complete the givens and break no rule
        cells = [int(c) for c in grid]
        assert all(g == 0 or g == c for g, c in zip(parse_grid(p), cells))
        assert bool(task.validate(task.encode([grid]), task.encode([grid]).tokens).ok[0])


def test_without_check_unique_unique_is_not_claimed():
    p, _ = make_puzzle(random.Random(3), "hard")
    r = solve("sudoku", "".join(map(str, p)), order="fixed")
    assert r.status == "solved" and r.unique is None and r.alternative is None


def _near_valid(rng: random.Random) -> list[int]:
    """A generated puzzle with one to three extra givens that break no rule on sight: some still have
    a solution, many have none."""
    p, _ = make_puzzle(rng, "hard")
    for _ in range(rng.randint(1, 3)):
        empty = [i for i, v in enumerate(p) if not v]
        i = rng.choice(empty)
        ok = [d for d in range(1, 10) if all(
            p[j] != d for j in range(81)
            if j // 9 == i // 9 or j % 9 == i % 9 or (j // 27, j % 9 // 3) == (i // 27, i % 9 // 3))]
        if ok:
            p[i] = rng.choice(ok)
    return p


def test_infeasible_is_never_wrong_on_200_near_valid_puzzles():
    rng = random.Random(2026)
    puzzles = [_near_valid(rng) for _ in range(200)]
    truth = [count_solutions(p, 1) > 0 for p in puzzles]
    solver = make_solver("sudoku", order="fixed", max_passes=4000)
    results = solve_with(solver, ["".join(map(str, p)) for p in puzzles], batch_size=200)
    statuses = [r.status for r in results]
    assert "unsolved" not in statuses  # the complete search finishes every one
    for p, feasible, r in zip(puzzles, truth, results):
        assert r.status == ("solved" if feasible else "infeasible"), p
        if feasible:
            assert all(g == 0 or g == int(c) for g, c in zip(p, r.solution))
    assert 20 < statuses.count("infeasible") < 180  # both verdicts are exercised


@needs_data
def test_budget_out_is_unsolved_never_infeasible():
    task = load_task("sudoku")
    task.locked_rounds = 0  # singles only: the Golden Nugget then needs many decisions
    r = solve(task, _puzzle("Golden Nugget"), order="fixed", max_passes=1)
    assert r.status == "unsolved" and not r.valid and r.passes == 1


@needs_data
def test_local_search_never_claims_infeasible():
    r = solve("sudoku", _puzzle("no solution"), search="local", max_passes=3)
    assert r.status == "unsolved" and not r.valid


def test_search_options_are_checked():
    with pytest.raises(ConfigError, match="search must be one of"):
        make_solver("sudoku", search="exhaustive")
    with pytest.raises(ConfigError, match="order must be one of"):
        make_solver("sudoku", order="random")
    with pytest.raises(ConfigError, match="not a finite constraint problem"):
        solver = make_solver("peptide", search="complete")
        solver.run(solver.task.encode([{"length": 8}]))


def test_several_decisions_per_pass_keep_the_search_complete():
    rng = random.Random(11)
    puzzles = [_near_valid(rng) for _ in range(40)]
    truth = [count_solutions(p, 1) > 0 for p in puzzles]
    res = solve_with(make_solver("sudoku", decisions_per_pass=4, decision_threshold=0.5, max_passes=4000),
                     ["".join(map(str, p)) for p in puzzles])
    assert [r.status for r in res] == ["solved" if t else "infeasible" for t in truth]


# ---- graph colouring: chromatic numbers proved both ways --------------------------------------------
def _tiny_coloring_model(task):
    cfg = DenoiserConfig(vocab_size=len(task.vocab), canvas_length=task.layout.length, hidden_size=16,
                         intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         coord_sizes=dict(task.layout.coord_sizes), max_position_embeddings=1024)
    torch.manual_seed(0)
    return DenoiserModel(cfg).eval()


def test_petersen_graph_two_colours_infeasible_three_solved():
    task = load_task("graph-coloring")
    g = nx.petersen_graph()
    model = _tiny_coloring_model(task)
    for k, status in ((2, "infeasible"), (3, "solved")):
        solver = make_solver(task, model, order="model", max_passes=256)
        (r,) = solve_with(solver, [{"edges": list(g.edges()), "k": k}])
        assert r.status == status, (k, r.messages)
    assert r.valid and all(r.solution[u] != r.solution[v] for u, v in g.edges())


def test_atlas_graphs_coloured_with_chromatic_number_and_one_fewer_refuted():
    task = load_task("graph-coloring")
    model = _tiny_coloring_model(task)
    graphs = [g for g in nx.graph_atlas_g()[1:] if g.number_of_edges() and nx.is_connected(g)][::9]
    problems, expect = [], []
    for g in graphs:
        chi = _chromatic(g)
        for k, status in ((chi, "solved"), (chi - 1, "infeasible")):
            if k >= 1:
                problems.append({"edges": list(g.edges()), "nodes": list(g.nodes()), "k": k})
                expect.append(status)
    res = solve_with(make_solver(task, model, order="fixed", max_passes=512), problems)
    assert [r.status for r in res] == expect
    assert all(r.valid for r in res if r.status == "solved")


def _chromatic(g: nx.Graph) -> int:
    """Exact chromatic number by trying k = 1, 2, ... (atlas graphs have at most 7 nodes)."""
    import itertools

    nodes = list(g.nodes())
    for k in range(1, len(nodes) + 1):
        for cols in itertools.product(range(k), repeat=len(nodes)):
            c = dict(zip(nodes, cols))
            if all(c[u] != c[v] for u, v in g.edges()):
                return k
    return len(nodes)


def test_n_queens_declared_finite_is_searched_completely():
    from constrained.tasks.nqueens import NQueens

    task = NQueens(6)
    assert task.complete_search  # declared by the task itself
    model = _tiny_coloring_model(task)
    # row 1 column 1 and row 2 column 3: no placement of the other four queens completes it
    res = solve_with(make_solver(task, model, order="fixed", max_passes=256), [[1, 3, 0, 0, 0, 0], [0] * 6])
    assert [r.status for r in res] == ["infeasible", "solved"]
    assert res[1].valid and sorted(res[1].solution) == [1, 2, 3, 4, 5, 6]
