"""Sudoku end to end: generated puzzles of each grade (unique solutions, from the exact
solver), solved and checked against the generator's solution, plus a puzzle read from a file.

    python examples/sudoku.py
    python examples/sudoku.py --model DIR --n 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from constrained import load_task, make_solver, solve_with

GRID = """
5 3 . | . 7 . | . . .
6 . . | 1 9 5 | . . .
. 9 8 | . . . | . 6 .
------+-------+------
8 . . | . 6 . | . . 3
4 . . | 8 . 3 | . . 1
7 . . | . 2 . | . . 6
------+-------+------
. 6 . | . . . | 2 8 .
. . . | 4 1 9 | . . 5
. . . | . 8 . | . 7 9
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped), or a model folder")
    ap.add_argument("--n", type=int, default=10, help="puzzles per grade")
    ap.add_argument("--max-passes", type=int, default=64, help="model passes per puzzle at most")
    a = ap.parse_args(argv)

    task = load_task("sudoku")
    solver = make_solver(task, a.model, max_passes=a.max_passes)
    for grade in ("easy", "hard", "expert"):
        pairs = task.generate(a.n, seed=11, grade=grade)
        results = solve_with(solver, [p for p, _ in pairs])
        right = sum(r.valid and r.solution == s for r, (_, s) in zip(results, pairs))
        clues = sum(81 - p.count(".") for p, _ in pairs) / len(pairs)
        print(f"{grade:6s} ({clues:.0f} clues): {right}/{len(pairs)} solved, "
              f"mean passes {sum(r.passes for r in results) / len(results):.1f}")

    with tempfile.TemporaryDirectory() as tmp:  # the 9-line form with box separators reads too
        path = Path(tmp) / "puzzle.txt"
        path.write_text(GRID)
        (res,) = solve_with(solver, task.read_problems(path))
    print(task.format_solution(res.solution))
    print("valid" if res.valid else f"not solved: {res.messages[:3]}")


if __name__ == "__main__":
    main()
