"""Sudoku grids without tensors: parsing, rule checks, an exact solver and a puzzle generator.

Pure Python (no torch), so the command line can check a puzzle typed on it before torch loads
(``Sudoku.input_check``); :mod:`constrained.tasks.sudoku` builds the task on these.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from constrained.errors import InvalidProblem

DIGITS = "123456789"
BLANKS = ".0"
GRADES = {"easy": 40, "medium": 32, "hard": 27, "expert": 0}  # target clue counts; expert = minimal
ROW = [i // 9 for i in range(81)]
COL = [i % 9 for i in range(81)]
BOX = [(i // 27) * 3 + (i % 9) // 3 for i in range(81)]
FULL = 0x3FE  # bits 1..9


def sudoku_groups() -> tuple[list[list[int]], list[str]]:
    groups, names = [], []
    for r in range(9):
        groups.append([r * 9 + c for c in range(9)])
        names.append(f"row {r + 1}")
    for c in range(9):
        groups.append([r * 9 + c for r in range(9)])
        names.append(f"column {c + 1}")
    for b in range(9):
        groups.append([i for i in range(81) if BOX[i] == b])
        names.append(f"box {b + 1}")
    return groups, names


def cell_name(i: int) -> str:
    return f"r{ROW[i] + 1}c{COL[i] + 1}"


# ---------------------------------------------------------------------------------------
# exact solver: bitmask backtracking, most-constrained cell first
# ---------------------------------------------------------------------------------------
def _search(grid: list[int], limit: int, rng: random.Random | None, extra: list[list[int]] | None = None,
            ) -> tuple[int, list[int] | None]:
    """Count solutions of ``grid`` (0 = blank) up to ``limit``; return (count, first solution)."""
    groups_of = [[ROW[i], 9 + COL[i], 18 + BOX[i]] for i in range(81)]
    n_groups = 27
    if extra:
        for g in extra:
            for i in g:
                groups_of[i].append(n_groups)
            n_groups += 1
    used = [0] * n_groups
    for i, v in enumerate(grid):
        if v:
            bit = 1 << v
            for g in groups_of[i]:
                if used[g] & bit:
                    return 0, None
                used[g] |= bit
    g = list(grid)
    empties = [i for i in range(81) if not g[i]]
    count = 0
    first: list[int] | None = None

    def rec(n_left: int) -> bool:
        nonlocal count, first
        if n_left == 0:
            count += 1
            if first is None:
                first = list(g)
            return count >= limit
        best, best_mask, best_n = -1, 0, 10
        for i in empties:
            if g[i]:
                continue
            m = FULL
            for gg in groups_of[i]:
                m &= ~used[gg]
            n = m.bit_count()
            if n < best_n:
                best, best_mask, best_n = i, m, n
                if n <= 1:
                    break
        if best_n == 0:
            return False
        vals = [v for v in range(1, 10) if best_mask >> v & 1]
        if rng is not None:
            rng.shuffle(vals)
        gs = groups_of[best]
        for v in vals:
            bit = 1 << v
            g[best] = v
            for gg in gs:
                used[gg] |= bit
            if rec(n_left - 1):
                return True
            for gg in gs:
                used[gg] &= ~bit
            g[best] = 0
        return False

    rec(len(empties))
    return count, first


def count_solutions(grid: Sequence[int], limit: int = 2, extra_groups: list[list[int]] | None = None) -> int:
    return _search(list(grid), limit, None, extra_groups)[0]


def solve_exact(grid: Sequence[int], extra_groups: list[list[int]] | None = None) -> list[int] | None:
    return _search(list(grid), 1, None, extra_groups)[1]


def random_solution(rng: random.Random, extra_groups: list[list[int]] | None = None) -> list[int]:
    sol = _search([0] * 81, 1, rng, extra_groups)[1]
    assert sol is not None
    return sol


def make_puzzle(rng: random.Random, grade: str = "hard", clues: int | None = None,
                extra_groups: list[list[int]] | None = None, max_tries: int = 200) -> tuple[list[int], list[int]]:
    """A puzzle with a unique solution and its solution.

    ``grade`` sets a target clue count (``expert`` removes clues until none can go);
    ``clues`` asks for at most that many (retrying minimal puzzles until one fits).
    """
    if grade not in GRADES:
        raise ValueError(f"unknown grade {grade!r}: use one of {sorted(GRADES)}")
    target = GRADES[grade] if clues is None else clues
    best: tuple[list[int], list[int]] | None = None
    for _ in range(max_tries):
        sol = random_solution(rng, extra_groups)
        puzzle = list(sol)
        order = list(range(81))
        rng.shuffle(order)
        n = 81
        for i in order:
            if n <= target:
                break
            keep = puzzle[i]
            puzzle[i] = 0
            if count_solutions(puzzle, 2, extra_groups) != 1:
                puzzle[i] = keep
            else:
                n -= 1
        if best is None or n < sum(1 for v in best[0] if v):
            best = (puzzle, sol)
        if clues is None or n <= clues:
            return puzzle, sol
    assert best is not None
    return best


# ---------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------
def parse_grid(text: str) -> list[int]:
    """81-character string or 9 lines of 9 cells -> 81 ints (0 = blank).

    Whitespace and the box-drawing characters ``|``, ``-``, ``+`` between cells are ignored
    in the 9-line form.
    """
    if not isinstance(text, str):
        raise InvalidProblem(f"a Sudoku puzzle must be a string, got {type(text).__name__}")
    raw = text.strip()
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    if len(lines) > 1:
        rows = []
        for ln in lines:
            cells = "".join(ch for ch in ln if ch not in " \t|+")
            if cells and set(cells) <= {"-"}:  # separator line
                continue
            rows.append(cells.replace("-", "."))
        if len(rows) != 9:
            raise InvalidProblem(f"a Sudoku grid needs 9 rows, got {len(rows)}")
        for r, row in enumerate(rows):
            if len(row) != 9:
                raise InvalidProblem(f"row {r + 1} has {len(row)} cells, expected 9: {row!r}")
        flat = "".join(rows)
    else:
        flat = raw.replace(" ", "")
        if len(flat) != 81:
            raise InvalidProblem(f"a Sudoku puzzle needs 81 cells, got {len(flat)}")
    cells = []
    for i, ch in enumerate(flat):
        if ch in BLANKS:
            cells.append(0)
        elif ch in DIGITS:
            cells.append(int(ch))
        else:
            raise InvalidProblem(f"illegal character {ch!r} at row {ROW[i] + 1}, column {COL[i] + 1}: "
                                 "use 1-9 for givens and '.' or '0' for blanks")
    return cells


def check_givens(cells: Sequence[int], groups: Sequence[Sequence[int]], names: Sequence[str]) -> None:
    for g, name in zip(groups, names):
        seen: dict[int, int] = {}
        for i in g:
            v = cells[i]
            if v:
                if v in seen:
                    raise InvalidProblem(f"givens break a rule: digit {v} appears twice in {name} "
                                         f"({cell_name(seen[v])} and {cell_name(i)})")
                seen[v] = i


def format_grid(s: str) -> str:
    """81-character string -> 9 lines with box separators."""
    out = []
    for r in range(9):
        row = s[r * 9 : r * 9 + 9]
        out.append(" ".join(row[0:3]) + " | " + " ".join(row[3:6]) + " | " + " ".join(row[6:9]))
        if r in (2, 5):
            out.append("------+-------+------")
    return "\n".join(out)


def read_puzzles(path: str | Path) -> list[str]:
    """One puzzle per line (81 characters), or a single 9-line grid."""
    text = Path(path).read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and all(len(ln.replace(" ", "")) == 81 for ln in lines):
        return [ln.replace(" ", "") for ln in lines]
    return [text]


def diagonal_groups() -> tuple[list[list[int]], list[str]]:
    """Sudoku-X's two extra groups: the main diagonal and the anti-diagonal."""
    return [[i * 10 for i in range(9)], [i * 8 + 8 for i in range(9)]], ["main diagonal", "anti-diagonal"]


def check_puzzle(text: str) -> None:
    """InvalidProblem naming what is wrong with a Sudoku puzzle given as text (cell count, an
    illegal character, two equal givens in a row, column or box); the task's own parse says the same."""
    groups, names = sudoku_groups()
    check_givens(parse_grid(text), groups, names)


def check_x_puzzle(text: str) -> None:
    """:func:`check_puzzle` for Sudoku-X: the diagonals too."""
    groups, names = sudoku_groups()
    extra, extra_names = diagonal_groups()
    check_givens(parse_grid(text), groups + extra, names + extra_names)
