"""N-Queens: N queens on an N x N board, none attacking another.

The smallest complete task, written from the public API alone (Vocab, Layout, Canvas, Task,
Report): one queen per row, so position r of the canvas holds the column of row r's queen
(tokens "1".."n"); a problem gives some of them (a list of n columns, 0 = empty, or a string
such as ``"..6....."``). Registered as ``"n-queens"`` through the ``constrained.tasks``
entry-point group in pyproject.toml, with no edit of ``tasks/__init__.py``; README "Adding a
new task" walks through this file and tests/test_nqueens.py.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.errors import InvalidProblem
from constrained.layout import Layout
from constrained.report import Report
from constrained.task import Task
from constrained.vocab import Vocab

if TYPE_CHECKING:
    from constrained.trace import TraceView


class NQueens(Task):
    """N queens on an N x N board, none attacking another (the worked example of a new task).

    One queen per row, so position r of the canvas holds the column of row r's queen; a problem
    gives some of them.

    Input:
        n characters, row by row: the column (1-n) of a given queen, '.' for an empty row; or a
        list of n columns, 0 for an empty row
    Example:
        constrained solve n-queens ..6..... --model DIR
    """

    name = "n-queens"
    #: the domains are sound (a column is removed only when a placed queen attacks it), so the
    #: Solver may search completely and prove a problem infeasible
    complete_search = True

    def __init__(self, n: int = 8) -> None:
        """Args:
            n: board size and number of queens (>= 4; columns above 9 need the list form)
        """
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

    def encode_parsed(self, parsed: list[list[int]]) -> Canvas:
        cols = torch.tensor(parsed, dtype=torch.long).view(-1, self.n)
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
    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """One training item: a random solution ``tokens`` [n] with 0..n/2 of its queens ``fixed`` [n]."""
        sol = self._random_solution(random.Random(int(rng.integers(2**63))))
        fixed = np.zeros(self.n, dtype=bool)
        fixed[rng.choice(self.n, int(rng.integers(0, self.n // 2 + 1)), replace=False)] = True
        return {"tokens": torch.tensor(sol) + self._first - 1, "fixed": torch.from_numpy(fixed)}

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
        from constrained.trace import TraceView

        return TraceView(kind="strip", labels=[f"row {r + 1}" for r in range(self.n)], per_row=self.n)
