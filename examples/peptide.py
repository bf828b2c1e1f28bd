"""Peptide design: a sequence of 10-14 residues with an RGD motif at position 3, no cysteine,
molecular weight and net charge in windows, no run longer than 2, no N-glycosylation
pattern. The validator checks every property exactly (RDKit); the FASTA header shows them.

    python examples/peptide.py
    python examples/peptide.py --model DIR --n 2
"""

from __future__ import annotations

import argparse

from constrained import load_task, make_solver, solve_with

SPEC = {"length": [10, 14], "motif": {"3": "RGD"}, "exclude": "C",
        "windows": {"mw": [1000, 1800], "charge": [0, 4]}, "max_run": 2, "forbidden": ["N[^P][ST]"],
        "label": "amp"}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped), or a model folder")
    ap.add_argument("--n", type=int, default=4, help="designs to make")
    a = ap.parse_args(argv)

    task = load_task("peptide")
    solver = make_solver(task, a.model, max_passes=64)  # the task's sampler defaults apply
    results = solve_with(solver, [SPEC] * a.n)
    for r in results:
        print(task.format_solution(r.solution))
        problems = task.parse(SPEC).check(r.solution)  # an independent re-check of the design
        print("valid" if r.valid else "not valid: " + "; ".join(problems[:3]))
    print(f"{sum(r.valid for r in results)}/{len(results)} designs meet the spec")


if __name__ == "__main__":
    main()
