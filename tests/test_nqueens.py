"""The Task API is enough: an N-Queens task written here from the public API alone (Vocab,
Layout, Canvas, Task, Report), solved by the Solver with a tiny random model plus domain
masks and validator re-noising. README "Adding a new task" walks through this file.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from conftest import tiny_model
from constrained.engine import make_noise

from constrained import Canvas, InvalidProblem, Layout, Report, Solver, SolverConfig, Task, Vocab, solve
from constrained.trace import TraceView, trace_data


class NQueens(Task):
    """N queens on an N x N board, none attacking another. One queen per row, so position r
    of the canvas holds the column of row r's queen; a problem gives some of them."""

    name = "n-queens"

    def __init__(self, n: int = 8) -> None:
        if n < 4:
            raise InvalidProblem(f"n-queens needs n >= 4, got {n}")
        self.n = n
        self.vocab = Vocab.build(str(c) for c in range(1, n + 1))  # tokens "1".."n": the column
        self._first = self.vocab.id("1")
        pairs = list(itertools.combinations(range(n), 2))  # every two rows: one constraint
        self.layout = Layout(length=n, coords={"row": torch.arange(n)}, coord_sizes={"row": n},
                             groups=pairs, group_names=[f"rows {a + 1} and {b + 1}" for a, b in pairs])
        i = torch.arange(n)
        self._row_gap = (i[:, None] - i[None, :]).abs()  # [n, n] |r - s|

    # --- problems: a list of n columns, 1-based, 0 = no queen given ---------------------
    def parse(self, problem: Any) -> list[int]:
        if isinstance(problem, str):
            problem = [0 if ch == "." else int(ch) if ch.isdigit() else -1 for ch in problem]
        if not isinstance(problem, Sequence) or len(problem) != self.n:
            raise InvalidProblem(f"an {self.n}-queens problem needs {self.n} rows, got {problem!r}")
        for r, c in enumerate(problem):
            if not (isinstance(c, int) and 0 <= c <= self.n):
                raise InvalidProblem(f"row {r + 1}: column {c!r} is not 0 (empty) or 1-{self.n}")
        cols = list(problem)
        for r, s in itertools.combinations(range(self.n), 2):
            if cols[r] and cols[s] and (cols[r] == cols[s] or abs(cols[r] - cols[s]) == s - r):
                raise InvalidProblem(f"given queens in rows {r + 1} and {s + 1} attack each other")
        return cols

    def encode(self, problems: Sequence[Any]) -> Canvas:
        cols = torch.tensor([self.parse(p) for p in problems], dtype=torch.long).view(-1, self.n)
        fixed = cols > 0
        tokens = torch.where(fixed, cols + self._first - 1, self.vocab.mask_id)
        return Canvas(tokens=tokens, fixed=fixed, layout=self.layout, vocab=self.vocab)

    def decode(self, canvas: Canvas | None, tokens: torch.Tensor) -> list[list[int]]:
        cols = tokens - self._first + 1
        return torch.where((cols >= 1) & (cols <= self.n), cols, 0).tolist()

    def format_solution(self, solution: list[int]) -> str:
        return "\n".join(" ".join("Q" if c == k else "." for k in range(1, self.n + 1)) for c in solution)

    # --- constraints --------------------------------------------------------------------
    def _attacks(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(filled [B, n], same column [B, n, n], same diagonal [B, n, n]) between filled rows."""
        filled = (tokens >= self._first) & (tokens < self._first + self.n)
        col = tokens - self._first
        both = filled[:, :, None] & filled[:, None, :] & ~torch.eye(self.n, dtype=torch.bool)
        same_col = both & (col[:, :, None] == col[:, None, :])
        same_diag = both & ((col[:, :, None] - col[:, None, :]).abs() == self._row_gap.to(tokens.device))
        return filled, same_col, same_diag

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        filled, same_col, same_diag = self._attacks(tokens)
        violations = (same_col | same_diag).any(-1)  # [B, n]: rows whose queen is attacked
        ok = filled.all(-1) & ~violations.any(-1)
        msgs: list[list[str]] = []
        if messages:
            for b in range(tokens.shape[0]):
                out = [f"queens in rows {r + 1} and {s + 1} attack each other "
                       f"({'same column' if same_col[b, r, s] else 'diagonal'})"
                       for r, s in (same_col[b] | same_diag[b]).triu().nonzero().tolist()]
                if (~filled[b]).any():
                    out.append(f"{int((~filled[b]).sum())} rows have no queen")
                msgs.append(out)
        return Report(ok=ok, violations=violations, messages=msgs)

    def domains(self, canvas: Canvas, tokens: torch.Tensor) -> torch.Tensor:
        """Columns of each row that no placed queen attacks."""
        filled = (tokens >= self._first) & (tokens < self._first + self.n)
        col = (tokens - self._first).clamp(0, self.n - 1)  # [B, n]
        k = torch.arange(self.n, device=tokens.device)
        gap = self._row_gap.to(tokens.device)  # [n, n]
        # hit[b, r, s, k]: the queen of row s attacks column k of row r
        hit = (k == col[:, None, :, None]) | ((k - col[:, None, :, None]).abs() == gap[None, :, :, None])
        other = ~torch.eye(self.n, dtype=torch.bool, device=tokens.device)
        hit &= filled[:, None, :, None] & other[None, :, :, None]
        free = ~hit.any(2)  # [B, n, n]
        out = torch.zeros(*tokens.shape, len(self.vocab), dtype=torch.bool, device=tokens.device)
        out[..., self._first : self._first + self.n] = free
        return out

    # --- data ---------------------------------------------------------------------------
    def generate(self, count: int, seed: int = 0, givens: int = 2) -> list[tuple[list[int], list[int]]]:
        """``count`` (problem, one solution) pairs: a random solution with ``givens`` queens kept."""
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            sol = self._random_solution(rng)
            keep = set(rng.sample(range(self.n), givens))
            out.append(([c if r in keep else 0 for r, c in enumerate(sol)], sol))
        return out

    def _random_solution(self, rng: random.Random) -> list[int]:
        cols: list[int] = []

        def place(r: int) -> bool:
            if r == self.n:
                return True
            for c in rng.sample(range(1, self.n + 1), self.n):
                if all(c != d and abs(c - d) != r - s for s, d in enumerate(cols)):
                    cols.append(c)
                    if place(r + 1):
                        return True
                    cols.pop()
            return False

        place(0)
        return cols

    # --- optional: how `constrained trace` draws it (a strip of rows) -------------------
    def trace_view(self, canvas: Canvas) -> TraceView:
        return TraceView(kind="strip", labels=[f"row {r + 1}" for r in range(self.n)], per_row=self.n)


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
    full = _solver(task).run(task.encode(problems), problems)
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
