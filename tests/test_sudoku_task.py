import random

import pytest
import torch
from conftest import EASY, EASY_SOLUTION
from constrained.tasks.sudoku import count_solutions, make_puzzle, parse_grid, solve_exact

from constrained import InvalidProblem


def test_parses_string_and_nine_line_grid_to_same_cells(sudoku_task):
    grid = "\n".join(EASY[r * 9 : r * 9 + 9] for r in range(9))
    assert parse_grid(EASY) == parse_grid(grid)
    boxed = sudoku_task.format_solution(EASY)
    assert parse_grid(boxed) == parse_grid(EASY)


def test_wrong_length_names_count():
    with pytest.raises(InvalidProblem, match="81 cells, got 80"):
        parse_grid(EASY[:-1])


def test_illegal_character_names_row_and_column():
    bad = EASY[:12] + "x" + EASY[13:]
    with pytest.raises(InvalidProblem, match="row 2, column 4"):
        parse_grid(bad)


def test_conflicting_givens_name_the_group(sudoku_task):
    bad = "55" + EASY[2:]
    with pytest.raises(InvalidProblem, match="digit 5 appears twice in row 1"):
        sudoku_task.encode([bad])


def test_validator_is_exact_and_localises_conflicts(sudoku_task):
    canvas = sudoku_task.encode([EASY])
    sol = sudoku_task.encode([EASY_SOLUTION]).tokens
    rep = sudoku_task.validate(canvas, sol)
    assert rep.ok.tolist() == [True] and not rep.violations.any()
    broken = sol.clone()
    broken[0, 2] = broken[0, 3]  # r1c3 := r1c4's digit -> row 1 repeats
    rep = sudoku_task.validate(canvas, broken, messages=True)
    assert rep.ok.tolist() == [False]
    assert rep.violations[0, 2] and rep.violations[0, 3]
    assert any("row 1" in m for m in rep.messages[0])


def test_partial_canvas_is_not_ok_but_has_no_violations(sudoku_task):
    canvas = sudoku_task.encode([EASY])
    rep = sudoku_task.validate(canvas, canvas.tokens)
    assert not rep.ok.any() and not rep.violations.any()


def test_one_round_of_candidates_matches_brute_force(sudoku_task):
    from constrained.constraints import alldiff_candidates

    canvas = sudoku_task.encode([EASY])
    oh = sudoku_task._onehot(canvas.tokens)
    cand = alldiff_candidates(sudoku_task.layout.membership, oh, exact=True)[0]  # [81, 9]
    cells = parse_grid(EASY)
    for i in range(81):
        if cells[i]:
            continue
        peers = [j for j in range(81) if j != i and (j // 9 == i // 9 or j % 9 == i % 9 or
                 (j // 27, j % 9 // 3) == (i // 27, i % 9 // 3))]
        naked = {d for d in range(1, 10)} - {cells[j] for j in peers}
        got = {d for d in range(1, 10) if cand[i, d - 1]}
        # hidden singles: a digit with one place left in a row/column/box must go there
        hidden = set()
        for g in sudoku_task.layout.groups:
            if i in g:
                for d in naked:
                    places = [j for j in g if not cells[j] and d not in {cells[k] for k in range(81)
                              if k != j and (k // 9 == j // 9 or k % 9 == j % 9 or
                                             (k // 27, k % 9 // 3) == (j // 27, j % 9 // 3))}]
                    if places == [i]:
                        hidden.add(d)
        assert got == (hidden or naked), i


def test_domains_propagate_singles_to_a_fixpoint_and_keep_the_solution(sudoku_task):
    first = sudoku_task.vocab.id("1")
    # EASY falls to singles alone: propagation leaves exactly the solution
    canvas = sudoku_task.encode([EASY])
    dom = sudoku_task.domains(canvas, canvas.tokens)[0, :, first : first + 9]
    assert all(dom[i].sum() == 1 for i in range(81) if not parse_grid(EASY)[i])
    got = "".join(str(int(dom[i].nonzero()[0]) + 1) for i in range(81) if not parse_grid(EASY)[i])
    want = "".join(EASY_SOLUTION[i] for i in range(81) if not parse_grid(EASY)[i])
    assert got == want
    # on hard puzzles it is sound (the unique solution survives) and at least as tight as one round
    from constrained.constraints import alldiff_candidates

    rng = random.Random(5)
    for _ in range(5):
        puzzle, sol = make_puzzle(rng, "expert")
        canvas = sudoku_task.encode([puzzle])
        dom = sudoku_task.domains(canvas, canvas.tokens)[0, :, first : first + 9]
        one = alldiff_candidates(sudoku_task.layout.membership, sudoku_task._onehot(canvas.tokens), exact=True)[0]
        for i in range(81):
            if not puzzle[i]:
                assert dom[i, sol[i] - 1], (i, sol[i])
                assert not (dom[i] & ~one[i]).any()


def test_domains_show_a_contradiction_as_an_empty_domain(sudoku_task):
    first = sudoku_task.vocab.id("1")
    # a wrong guess whose consequences only singles reveal: put a wrong digit in the first empty
    # cell of EASY and propagate; some empty cell must end with no candidate
    cells = parse_grid(EASY)
    i = cells.index(0)
    sol = int(EASY_SOLUTION[i])
    canvas = sudoku_task.encode([EASY])
    dom0 = sudoku_task.domains(canvas, canvas.tokens)[0]
    for d in range(1, 10):
        if d == sol:
            continue
        tokens = canvas.tokens.clone()
        tokens[0, i] = first + d - 1
        # only digits the first round allows there are interesting: the rest clash at once
        dom = sudoku_task.domains(canvas, tokens)[0, :, first : first + 9]
        empty = [j for j in range(81) if not cells[j] and j != i]
        assert any(dom[j].sum() == 0 for j in empty), d
    assert dom0[i, first + sol - 1]


def test_exact_solver_and_generator_give_unique_puzzles():
    assert "".join(map(str, solve_exact(parse_grid(EASY)))) == EASY_SOLUTION
    puzzle, sol = make_puzzle(random.Random(3), "expert")
    assert count_solutions(puzzle) == 1
    assert solve_exact(puzzle) == sol
    assert sum(1 for v in puzzle if v) <= 30


def test_training_examples_are_valid_grids(sudoku_task):
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(20):
        ex = sudoku_task.training_example(rng)
        canvas = sudoku_task.encode([EASY])
        assert sudoku_task.validate(canvas, ex["tokens"][None]).ok.item()
        assert 17 <= int(ex["fixed"].sum()) <= 45


def test_sudoku_x_adds_two_diagonal_groups():
    from constrained import load_task

    x = load_task("sudoku-x")
    assert len(x.layout.groups) == 29
    sol = torch.tensor([x.vocab.id(c) for c in EASY_SOLUTION])[None]
    rep = x.validate(x.encode([EASY]), sol)
    assert rep.violations.any()  # the classic solution breaks a diagonal
