"""Sudoku: 81 cells, digits 1-9, rows / columns / boxes all-different.

Parses 81-character strings ('0' or '.' for blanks) and 9-line grids, generates
puzzles with a unique solution at graded difficulty with an exact solver, and
validates exactly with per-cell conflicts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from constrained.canvas import Canvas
from constrained.constraints import AllDifferent, value_onehot
from constrained.errors import InvalidProblem
from constrained.layout import Layout
from constrained.report import Check, Report
from constrained.task import Task
from constrained.vocab import Vocab

from .sudoku_grid import (  # noqa: F401 (re-exported: the grid functions' historical home)
    BLANKS,
    BOX,
    COL,
    DIGITS,
    FULL,
    GRADES,
    ROW,
    cell_name,
    check_givens,
    count_solutions,
    diagonal_groups,
    format_grid,
    make_puzzle,
    parse_grid,
    random_solution,
    read_puzzles,
    solve_exact,
    sudoku_groups,
)


# ---------------------------------------------------------------------------------------
# the task
# ---------------------------------------------------------------------------------------
class Sudoku(Task):
    """Classic 9x9 Sudoku: rows, columns and boxes all different.

    Subclasses add groups (Sudoku-X adds the two diagonals). The task takes no options.

    Input:
        an 81-character string read row by row, '.' or '0' for a blank; or a file: one
        81-character puzzle per line ('#' starts a comment line), or one 9-line grid
    Example:
        constrained solve sudoku 53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79
    """

    name = "sudoku"
    item_name = "puzzle"
    default_model = "sudoku"
    #: a torch-free check of a puzzle typed on the command line (before torch loads)
    input_check = "constrained.tasks.sudoku_grid:check_puzzle"
    #: with singles propagated to a fixpoint a dead end shows at once, so each pass commits the
    #: forced cells plus the single most confident guess (threshold 1.0: a search that guesses one
    #: cell at a time backtracks precisely), an item that stops improving restarts sooner (4 passes)
    #: and samples its new path hotter (T = 2). Chosen on development puzzles (expert, seeds 4242
    #: and 4343: 153-156 -> 169 of 200 each at 64 passes), never the benchmark's. With
    #: ``model_only=True`` (no forced cells) pass ``threshold=0.9``, or the model commits about one
    #: cell per pass.
    #: (the last three apply to ``search="local"``.) The complete search, the default, gets 512 passes
    #: (every development puzzle of both public collections needed far fewer) and asks the model on
    #: every 8th pass of an item: as few passes as asking it every pass, at the model-free search's
    #: speed (development puzzles of top1465; BENCHMARKS.md)
    solver_defaults: dict[str, Any] = {"threshold": 1.0, "patience": 4, "restart_temperature": 2.0,
                                       "max_passes": 512, "model_every": 8}
    complete_search = True
    domains_fixpoint = True  # singles are placed virtually during propagation
    #: rounds of locked-candidate and Hall-set eliminations in ``domains`` (0: singles only)
    locked_rounds = 4

    def __init__(self) -> None:
        groups, names = sudoku_groups()
        self.extra_groups, extra_names = self._extra_groups()
        groups += self.extra_groups
        names += extra_names
        idx = torch.arange(81)
        self.vocab = Vocab.build(DIGITS)
        self.layout = Layout(
            length=81,
            coords={"row": idx // 9, "col": idx % 9, "box": torch.tensor(BOX)},
            coord_sizes={"row": 9, "col": 9, "box": 9},
            groups=groups,
            group_names=names,
        )
        self._first = self.vocab.id("1")
        of_cell = [[k for k, g in enumerate(groups) if i in g] for i in range(81)]
        width = max(map(len, of_cell))  # each cell's groups, padded with the index of no group
        self._cell_groups = torch.tensor([ks + [len(groups)] * (width - len(ks)) for ks in of_cell])
        self._seed_grids: list[list[int]] | None = None

    def _extra_groups(self) -> tuple[list[list[int]], list[str]]:
        return [], []

    # --- problems ------------------------------------------------------------------
    def parse(self, problem: Any) -> list[int]:
        if isinstance(problem, (list, tuple)) and len(problem) == 81 and all(isinstance(v, int) for v in problem):
            cells = list(problem)
            if any(not 0 <= v <= 9 for v in cells):
                raise InvalidProblem("cell values must be 0 (blank) or 1-9")
        else:
            cells = parse_grid(problem)
        check_givens(cells, self.layout.groups, self.layout.group_names)
        return cells

    def encode_parsed(self, rows: list[list[int]]) -> Canvas:
        cells = torch.tensor(rows, dtype=torch.long).view(-1, 81)
        fixed = cells > 0
        tokens = torch.where(fixed, cells + self._first - 1, torch.full_like(cells, self.vocab.mask_id))
        return Canvas(tokens=tokens, fixed=fixed, layout=self.layout, vocab=self.vocab,
                      meta=[None] * len(rows))

    def decode(self, canvas: Canvas, tokens: torch.Tensor) -> list[str]:
        v = tokens - self._first + 1
        v = torch.where((v >= 1) & (v <= 9), v, torch.zeros_like(v))
        return ["".join("." if d == 0 else str(d) for d in row) for row in v.tolist()]

    def format_solution(self, solution: str) -> str:
        return format_grid(solution)

    def read_problems(self, path: Path) -> list[str]:
        return read_puzzles(path)

    # --- constraints ---------------------------------------------------------------
    def _onehot(self, tokens: torch.Tensor) -> torch.Tensor:
        return value_onehot(tokens, self._first, 9)

    def _alldiff(self, device: torch.device) -> AllDifferent:
        """Every row, column and box (and diagonal) holds each digit once."""
        return AllDifferent(self.layout.membership.to(device), exact=True, rounds=self.locked_rounds)

    def validate(self, canvas: Canvas, tokens: torch.Tensor, messages: bool = False) -> Report:
        oh = self._onehot(tokens)  # [B, 81, 9]
        m = self.layout.membership.to(tokens.device)
        viol = self._alldiff(tokens.device).violations(oh)
        filled = oh.sum(-1) > 0
        ok = filled.all(-1) & ~viol.any(-1)
        msgs: list[list[str]] = []
        checks: list[list[Check]] = []
        if messages:
            counts = torch.einsum("gl,bln->bgn", m, oh)
            groups = "rows/columns/boxes" + ("/diagonals" if self.extra_groups else "") + " all different"
            for b in range(tokens.shape[0]):
                out = []
                for g, d in (counts[b] > 1.5).nonzero().tolist():
                    cells = [cell_name(i) for i in self.layout.groups[g] if oh[b, i, d] > 0]
                    out.append(f"digit {d + 1} repeats in {self.layout.group_names[g]} ({', '.join(cells)})")
                n_empty = int((~filled[b]).sum())
                repeats = len(out)
                if n_empty:
                    out.append(f"{n_empty} cells empty")
                msgs.append(out)
                checks.append([Check("complete", not n_empty, f"({n_empty} cells empty)" if n_empty else ""),
                               Check(groups, not repeats, f"({repeats} repeats)" if repeats else "")])
        return Report(ok=ok, violations=viol, messages=msgs, checks=checks)

    def domains(self, canvas: Canvas, tokens: torch.Tensor, within: torch.Tensor | None = None) -> torch.Tensor:
        """Singles propagated to a fixpoint, then locked candidates and Hall sets (``locked_rounds``
        rounds): a contradiction shows as an empty domain at once."""
        digits = None if within is None else within[..., self._first : self._first + 9]
        cand = self._alldiff(tokens.device).candidates(self._onehot(tokens), within=digits)  # [B, 81, 9]
        B = tokens.shape[0]
        out = torch.zeros(B, 81, len(self.vocab), dtype=torch.bool, device=tokens.device)
        out[..., self._first : self._first + 9] = cand
        return out

    def choice_counts(self, canvas: Canvas, allowed: torch.Tensor) -> torch.Tensor:
        """Each row, column and box holds every digit once, so a digit with k places left in a
        group is a choice of k, like a cell with k candidates (the exact-cover view of Sudoku,
        Knuth 2000, "Dancing Links")."""
        digits = allowed[..., self._first : self._first + 9].float()  # [B, 81, 9]
        m = self.layout.membership.to(allowed.device)  # [G, 81]
        places = torch.einsum("gl,bln->bgn", m, digits)  # [B, G, 9] places left per group and digit
        places = places.masked_fill(places == 0, 99)  # placed already (or impossible: propagation says)
        places = torch.nn.functional.pad(places, (0, 0, 0, 1), value=99)  # group G: none (padding)
        per_cell = places[:, self._cell_groups.to(allowed.device)].amin(2)  # [B, 81, 9]
        cells = digits.sum(-1, keepdim=True)  # [B, 81, 1]
        counts = torch.full(allowed.shape, 1 << 20, dtype=torch.long, device=allowed.device)
        counts[..., self._first : self._first + 9] = torch.minimum(per_cell, cells.expand_as(per_cell)).long()
        return counts.masked_fill(~allowed, 1 << 20)

    def explain_empty(self, canvas: Canvas, tokens: torch.Tensor, positions: list[int]) -> str:
        """E.g. ``r5c1 has no candidate (row 5 holds 1,2,3,4,5,7; column 1 holds 3,6,8,9)``: a cell
        whose groups hold all nine digits, named with the digits each group holds; where none does,
        the cell that propagation (singles, locked candidates, Hall sets) left without one."""
        digits = (tokens[0] - self._first + 1).tolist()

        def held(i: int) -> tuple[set[int], list[str]]:
            seen, words = set(), []
            for g, name in zip(self.layout.groups, self.layout.group_names):
                if i in g:
                    ds = sorted({digits[j] for j in g if 1 <= digits[j] <= 9})
                    seen.update(ds)
                    if ds:
                        words.append(f"{name} holds {','.join(map(str, ds))}")
            return seen, words

        for i in positions:
            seen, words = held(i)
            if len(seen) == 9:
                return f"{cell_name(i)} has no candidate ({'; '.join(words)})"
        i = positions[0]
        return f"propagation leaves {cell_name(i)} without a candidate ({'; '.join(held(i)[1])})"

    # --- data ----------------------------------------------------------------------
    def _seed_pool(self, rng: np.random.Generator, size: int = 512) -> list[list[int]]:
        if self._seed_grids is None:
            r = random.Random(int(rng.integers(1 << 31)))
            self._seed_grids = [random_solution(r, self.extra_groups or None) for _ in range(size)]
        return self._seed_grids

    def random_grid(self, rng: np.random.Generator) -> np.ndarray:
        """A random solution grid [81]: a seed grid from the exact solver under a random
        validity-preserving symmetry (digit relabelling, row/column shuffles inside bands and
        stacks, band and stack shuffles, transpose)."""
        pool = self._seed_pool(rng)
        g = np.array(pool[int(rng.integers(len(pool)))]).reshape(9, 9)
        g = rng.permutation(9)[g - 1] + 1
        if self.extra_groups:  # diagonal groups: only symmetries that keep both diagonals
            if rng.random() < 0.5:
                g = g.T
            if rng.random() < 0.5:
                g = g[::-1, ::-1]
            return g.reshape(81)
        rows = np.concatenate([b * 3 + rng.permutation(3) for b in rng.permutation(3)])
        cols = np.concatenate([s * 3 + rng.permutation(3) for s in rng.permutation(3)])
        g = g[rows][:, cols]
        if rng.random() < 0.5:
            g = g.T
        return g.reshape(81)

    def training_example(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        grid = self.random_grid(rng)
        n_givens = int(rng.integers(17, 46))
        fixed = np.zeros(81, dtype=bool)
        fixed[rng.choice(81, n_givens, replace=False)] = True
        tokens = torch.from_numpy(grid + self._first - 1).long()
        return {"tokens": tokens, "fixed": torch.from_numpy(fixed)}

    def generate(self, n: int, seed: int = 0, grade: str = "hard", clues: int | None = None,
                 progress: bool = False) -> list[tuple[str, str]]:
        rng = random.Random(seed)
        it = range(n)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"generating {grade} puzzles", unit="puzzle")
        out = []
        for _ in it:
            p, s = make_puzzle(rng, grade, clues, self.extra_groups or None)
            out.append(("".join(str(v) if v else "." for v in p), "".join(map(str, s))))
        return out


class SudokuX(Sudoku):
    """Sudoku-X: Sudoku plus both main diagonals all different.

    The shipped model is a LoRA adapter on the Sudoku model.

    Input:
        as sudoku: an 81-character string ('.' or '0' for a blank), or a file of them
    Example:
        constrained solve sudoku-x ..259.1..34...1......4.62..71..4..255....78.46....2.71...1...3893......2.682.....
    """

    name = "sudoku-x"
    default_model = "sudoku-x"
    input_check = "constrained.tasks.sudoku_grid:check_x_puzzle"

    def _extra_groups(self) -> tuple[list[list[int]], list[str]]:
        return diagonal_groups()
