"""The Task API is enough: the N-Queens task of tasks/nqueens.py (written from the public API
alone: Vocab, Layout, Canvas, Task, Report, and registered by one entry-point line in
pyproject.toml) is solved by the Solver with a tiny random model plus domain masks and validator
re-noising, and by the complete search. README "Adding a new task" walks through it.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_model
from constrained.engine import make_noise
from constrained.tasks.nqueens import NQueens

from constrained import InvalidProblem, Solver, SolverConfig, load_task, solve
from constrained.trace import trace_data


def attacked(cols: list[int]) -> bool:
    """Brute force: does any queen attack another?"""
    return any(a == b or abs(a - b) == s - r for (r, a), (s, b) in itertools.combinations(enumerate(cols), 2))


@pytest.fixture(scope="module")
def task() -> NQueens:
    return NQueens(8)


def test_validator_agrees_with_brute_force_and_names_the_rows(task):
    rng = random.Random(0)
    boards = [[rng.randint(1, 8) for _ in range(8)] for _ in range(200)]
    boards += [sol for _, sol in task.generate(20, seed=1)]
    rep = task.validate(task.encode([[0] * 8]), torch.tensor(boards) + task._first - 1, messages=True)
    for b, cols in enumerate(boards):
        assert bool(rep.ok[b]) == (not attacked(cols))
        for r in range(8):  # a row is implicated exactly when its queen is attacked
            hit = any(cols[s] == cols[r] or abs(cols[s] - cols[r]) == abs(s - r) for s in range(8) if s != r)
            assert bool(rep.violations[b, r]) == hit
    bad = boards.index(next(c for c in boards if c[0] == c[1]))
    assert "queens in rows 1 and 2 attack each other (same column)" in rep.messages[bad]


def test_domains_leave_exactly_the_unattacked_columns(task):
    canvas = task.encode([[1, 0, 0, 0, 0, 0, 0, 0]])
    dom = task.domains(canvas, canvas.tokens)[0, :, task._first:]  # [8 rows, 8 columns]
    assert dom[1].nonzero().squeeze(-1).tolist() == [2, 3, 4, 5, 6, 7]  # not column 1 (0) nor 2 (1)
    assert not dom[7, 0] and not dom[7, 7] and dom[7, 3]  # column 1 and the long diagonal are taken


@pytest.mark.parametrize("problem, words", [
    ([1, 2, 0, 0, 0, 0, 0, 0], "rows 1 and 2 attack each other"),
    ([0] * 7, "needs 8 rows"),
    ([9, 0, 0, 0, 0, 0, 0, 0], "row 1: column 9"),
    ("1......x", "row 8: column -1"),
])
def test_bad_problems_are_refused_by_name(task, problem, words):
    with pytest.raises(InvalidProblem, match=words):
        task.encode([problem])


def _solver(task: NQueens, **cfg: Any) -> Solver:
    noise = make_noise("mask", task.vocab.mask_id)
    return Solver(task, tiny_model(task), noise, SolverConfig(max_passes=256, **cfg))


def test_solver_with_a_random_model_and_renoising_places_every_queen(task):
    pairs = task.generate(12, seed=3, givens=1) + task.generate(4, seed=4, givens=0)
    problems = [p for p, _ in pairs]
    full = _solver(task, search="local").run(task.encode(problems), problems)
    for r, p in zip(full, problems):
        assert r.valid and not attacked(r.solution)
        assert all(g in (0, c) for g, c in zip(p, r.solution))  # givens kept
    bare_solver = _solver(task, domains=False, validator_renoise=False, tabu=0, restarts=False)
    bare = bare_solver.run(task.encode(problems))
    for r in bare:
        assert r.valid == (0 not in r.solution and not attacked(r.solution))  # never called solved wrongly
    assert sum(r.valid for r in bare) < len(problems)  # the random model alone does not get there


def test_public_solve_and_trace_work_on_the_new_task(task):
    res = solve(task, "..6.....", model=tiny_model(task), trace=True, max_passes=256)
    assert res.valid and res.solution[2] == 6 and len(res.trace) == res.passes
    data = trace_data(res, task)
    assert data["view"]["kind"] == "strip" and data["view"]["labels"][0] == "row 1"
    assert data["frames"][-1]["tokens"] == res.tokens
    assert "Q" in task.format_solution(res.solution)


def test_the_task_is_registered_by_its_entry_point_alone():
    from importlib.metadata import entry_points

    eps = [e for e in entry_points(group="constrained.tasks") if e.name == "n-queens"]
    assert len(eps) == 1, "no n-queens entry point: reinstall (pip install -e .) to refresh the package metadata"
    (ep,) = eps
    assert ep.value == "constrained.tasks.nqueens:NQueens"  # pyproject.toml; tasks/__init__.py names no NQueens
    t = load_task("n-queens", n=6)
    assert isinstance(t, NQueens) and t.n == 6 and t.complete_search


OUTSIDE_TASK = '''
from constrained.tasks.nqueens import NQueens


class TinyQueens(NQueens):
    """Four queens, from a package outside the repository."""

    def __init__(self):
        super().__init__(4)
'''


def test_a_task_from_another_package_registers_through_its_own_entry_point(tmp_path):
    """What `pip install` of a package with ``[project.entry-points."constrained.tasks"]`` leaves
    on sys.path (a module and its dist-info), in a fresh interpreter."""
    import os
    import subprocess
    import sys

    (tmp_path / "outside_task.py").write_text(OUTSIDE_TASK)
    info = tmp_path / "outside_task-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: outside-task\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[constrained.tasks]\ntiny-queens = outside_task:TinyQueens\n"
                                           "broken-task = no_such_module:Task\n")
    code = ("import constrained; from conftest import tiny_model; print(constrained.list_tasks());"
            "t = constrained.load_task('tiny-queens');"
            "r = constrained.solve(t, '.4..', model=tiny_model(t), max_passes=64); print(r.status, r.solution)\n"
            "try:\n constrained.load_task('broken-task')\n"
            "except constrained.ConfigError as e:\n print(e)")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{Path(__file__).parent}", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    names, solved, broken = out.stdout.splitlines()
    assert "'tiny-queens'" in names and "'n-queens'" in names and "'broken-task'" in names
    assert broken.startswith("task 'broken-task': its entry point 'no_such_module:Task' does not load")
    assert solved == "solved [2, 4, 1, 3]"  # the one 4-queens solution with the queen of row 2 in column 4


def test_training_examples_are_solutions_with_some_queens_given(task):
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(20):
        ex = task.training_example(rng)
        assert ex["tokens"].shape == ex["fixed"].shape == (8,) and ex["fixed"].sum() <= 4
        cols = (ex["tokens"] - task._first + 1).tolist()
        assert sorted(cols) == list(range(1, 9)) and not attacked(cols)
