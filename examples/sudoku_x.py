"""Sudoku-X: Sudoku whose two main diagonals must also hold 1-9 once each. The task is
Sudoku with two more constraint groups; its shipped model is a LoRA adapter on the Sudoku
model (see examples/finetune_lora.py).

    python examples/sudoku_x.py
    python examples/sudoku_x.py --model DIR --n 2
"""

from __future__ import annotations

import argparse

from constrained import load_task, make_solver, solve_with


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped), or a model (or adapter) folder")
    ap.add_argument("--n", type=int, default=10)
    a = ap.parse_args(argv)

    task = load_task("sudoku-x")
    pairs = task.generate(a.n, seed=5, grade="hard")
    results = solve_with(make_solver(task, a.model), [p for p, _ in pairs])
    right = sum(r.valid and r.solution == s for r, (_, s) in zip(results, pairs))
    print(f"Sudoku-X: {right}/{len(pairs)} solved")
    best = max(results, key=lambda r: (r.valid, -r.passes))
    print(task.format_solution(best.solution))
    diagonals = [best.solution[i * 10] for i in range(9)], [best.solution[i * 8 + 8] for i in range(9)]
    print("diagonals:", " ".join("".join(d) for d in diagonals), "(valid)" if best.valid else "(not solved)")


if __name__ == "__main__":
    main()
