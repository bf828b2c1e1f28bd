"""The Python API in one page: solve a puzzle, solve a batch, and compare with the bare model.

    python examples/quickstart.py                  # the shipped Sudoku model
    python examples/quickstart.py --model DIR --n 4
"""

from __future__ import annotations

import argparse

from constrained import load_task, make_solver, solve, solve_with

PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped), or a model folder")
    ap.add_argument("--n", type=int, default=20, help="puzzles in the batch")
    ap.add_argument("--max-passes", type=int, default=64, help="model passes per puzzle at most")
    a = ap.parse_args(argv)

    # 1. one problem: the task by name, the problem in its native form
    res = solve("sudoku", PUZZLE, model=a.model, max_passes=a.max_passes)
    task = load_task("sudoku")
    print(task.format_solution(res.solution))
    print(f"valid={res.valid} passes={res.passes} restarts={res.restarts}")
    for message in res.messages[:5]:  # the validator's words when it did not pass
        print("  -", message)

    # 2. many problems with one loaded model; the generator knows each puzzle's unique solution
    pairs = task.generate(a.n, seed=1, grade="hard")
    puzzles = [p for p, _ in pairs]
    solver = make_solver(task, a.model, max_passes=a.max_passes)  # keyword options set the SolverConfig
    results = solve_with(solver, puzzles, batch_size=64)
    solved = sum(r.valid for r in results)
    agree = sum(r.valid and r.solution == s for r, (_, s) in zip(results, pairs))
    print(f"batch: {solved}/{len(results)} validated, {agree} equal the generator's solution, "
          f"mean passes {sum(r.passes for r in results) / len(results):.1f}")

    # 3. the bare model: no domain masks, no validator re-noising, no tabu, no restarts
    bare = solve_with(make_solver(task, a.model, model_only=True, max_passes=a.max_passes), puzzles)
    print(f"bare model: {sum(r.valid for r in bare)}/{len(bare)} validated")


if __name__ == "__main__":
    main()
