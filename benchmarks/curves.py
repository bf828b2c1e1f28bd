"""Sudoku curves, measured and plotted: verified solve rate vs pass budget, tokens committed
per pass vs the sampler's confidence threshold, and throughput vs batch size, for the
shipped model on generated puzzles.

    python benchmarks/curves.py                  # 32 medium puzzles (a few minutes on 2 CPU cores)
    python benchmarks/curves.py --n 8 --grade easy

Writes benchmarks/results/curves.md and benchmarks/figures/sudoku_*.png (then run
benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import command, machine, write_section  # noqa: E402
from plots import (  # noqa: E402
    figure_md,
    solve_rate_curve,
    solve_rate_vs_passes,
    throughput_vs_batch_size,
    tokens_per_pass_vs_threshold,
)

from constrained import load_task, make_solver, solve_with  # noqa: E402

THRESHOLDS = [0.5, 0.7, 0.9, 0.97]
BATCH_SIZES = [1, 4, 16, 64]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--grade", default="medium")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--model", default="default")
    ap.add_argument("--max-passes", type=int, default=64)
    a = ap.parse_args()

    task = load_task("sudoku")
    puzzles = [p for p, _ in task.generate(a.n, seed=a.seed, grade=a.grade)]
    clues = [81 - p.count(".") for p in puzzles]
    lines = [
        "## Sudoku curves",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Puzzles: {len(puzzles)} generated puzzles of grade `{a.grade}` (unique solution; {min(clues)}–"
        f"{max(clues)} clues; seed {a.seed}). Model: `{a.model}`. At most {a.max_passes} passes; threshold "
        "sampler unless stated.",
        "",
    ]

    # 1. solve rate vs passes: each problem's passes at validation, from one run per setting
    runs: dict[str, list[tuple[int, bool]]] = {}
    for label, opts in (("model only", {"model_only": True}), ("every mechanism (default)", {})):
        res = solve_with(make_solver(task, a.model, max_passes=a.max_passes, **opts), puzzles)
        runs[label] = [(r.passes, r.valid) for r in res]
        print(label, sum(r.valid for r in res), flush=True)
    png = solve_rate_vs_passes(runs, a.max_passes, name="sudoku_solve_rate_vs_passes",
                               title=f"Sudoku ({a.grade}): validated within k passes")
    marks = [k for k in (4, 8, 16, 32, 64) if k <= a.max_passes]
    lines += ["### Verified solve rate vs pass budget", "",
              "Share of puzzles validated within k passes (each puzzle's passes at validation, one run per "
              "setting).", "",
              "| setting | " + " | ".join(f"k = {k}" for k in marks) + " |",
              "|---|" + "---|" * len(marks)]
    for label, r in runs.items():
        curve = solve_rate_curve(r, a.max_passes)
        lines.append(f"| {label} | " + " | ".join(f"{curve[k - 1]:.0%}" for k in marks) + " |")
    lines += ["", figure_md(png, "solve rate vs passes"), ""]

    # 2. tokens per pass vs threshold (every mechanism on; counts re-commits after re-noising)
    tpp, rates, passes = [], [], []
    for th in THRESHOLDS:
        solver = make_solver(task, a.model, max_passes=a.max_passes, threshold=th, trace=True)
        res = solve_with(solver, puzzles)
        committed = sum(len(p.newly_committed) for r in res for p in r.trace)
        n_passes = sum(len(r.trace) for r in res)
        tpp.append(committed / n_passes)
        rates.append(sum(r.valid for r in res) / len(res))
        passes.append(n_passes / len(res))
        print(th, tpp[-1], rates[-1], flush=True)
    png = tokens_per_pass_vs_threshold(THRESHOLDS, tpp, rates, name="sudoku_tokens_per_pass",
                                       title=f"Sudoku ({a.grade}): tokens per pass vs threshold")
    lines += ["### Tokens committed per pass vs confidence threshold", "",
              "Every mechanism on; a token committed again after re-noising counts again.", "",
              "| threshold | tokens per pass | mean passes | validated |", "|---|---|---|---|"]
    for th, t, p, r in zip(THRESHOLDS, tpp, passes, rates):
        lines.append(f"| {th} | {t:.2f} | {p:.1f} | {r:.0%} |")
    lines += ["", figure_md(png, "tokens per pass vs threshold"), ""]

    # 3. throughput vs batch size (every mechanism on)
    per_s = []
    solver = make_solver(task, a.model, max_passes=a.max_passes)
    solve_with(solver, puzzles[:2], batch_size=2)  # warm-up
    for bs in BATCH_SIZES:
        t0 = time.perf_counter()
        res = solve_with(solver, puzzles, batch_size=bs)
        per_s.append(len(res) / (time.perf_counter() - t0))
        print(bs, per_s[-1], flush=True)
    png = throughput_vs_batch_size(BATCH_SIZES, per_s, name="sudoku_throughput_vs_batch", unit="puzzles",
                                   title=f"Sudoku ({a.grade}): throughput vs batch size")
    lines += ["### Throughput vs batch size", "",
              "Wall time of `solve_with` over all puzzles, every mechanism on; a batch runs until its last "
              "item finishes.", "",
              "| batch size | puzzles / s |", "|---|---|"]
    lines += [f"| {bs} | {v:.2f} |" for bs, v in zip(BATCH_SIZES, per_s)]
    lines += ["", figure_md(png, "throughput vs batch size")]
    out = write_section("curves", "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
