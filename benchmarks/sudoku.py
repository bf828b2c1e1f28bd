"""Sudoku benchmark: verified solve rate, passes and throughput of the shipped model on
held-out puzzles of the hardest grade, with each mechanism of the local search switched on in
turn, the complete search (the default since the certified search) beside them, and masked vs
uniform noise on the same puzzles.

    python benchmarks/sudoku.py                       # 1,000 expert puzzles, shipped model
    python benchmarks/sudoku.py --n 100 --quick       # a smaller run
    python benchmarks/sudoku.py --compare-noise MASK_DIR UNIFORM_DIR

Writes benchmarks/results/sudoku.md (then run benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cached_pairs, command, machine, percentile, write_section  # noqa: E402

from constrained import make_solver, solve_with  # noqa: E402

SETTINGS = {
    # without domains the model commits by its own confidence (p >= 0.9); the task's default threshold
    # 1.0 commits forced cells plus one guess a pass, which needs the domains to find forced cells
    "model only": {"model_only": True, "threshold": 0.9},
    "+ domain masks": {"model_only": True, "domains": True},
    "+ validator re-noising (tabu, restarts)": {"domains": False, "threshold": 0.9},
    "+ both (the local search)": {"search": "local"},
    "+ both, 256-pass budget": {"search": "local", "max_passes": 256},
    "complete search (the default; benchmarks/search.py)": {"search": "complete"},
}


def run(model: str, probs: list[str], batch_size: int, **options) -> dict[str, float]:
    solver = make_solver("sudoku", model, **options)
    t0 = time.perf_counter()
    res = solve_with(solver, probs, batch_size=batch_size)
    wall = time.perf_counter() - t0
    passes = [r.passes for r in res]
    return {
        "solved": sum(r.valid for r in res) / len(res),
        "median": statistics.median(passes),
        "p95": percentile(passes, 95),
        "per_s": len(res) / wall,
        "overhead": solver.stats.overhead_share,
    }


def row(name: str, m: dict[str, float]) -> str:
    return (f"| {name} | {m['solved']:.1%} | {m['median']:.0f} | {m['p95']:.0f} | {m['per_s']:.1f} | "
            f"{m['overhead']:.1%} |")


HEADER = ("| setting | verified solve rate | passes median | passes p95 | puzzles/s | share of time outside "
          "the model forward |\n|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--grade", default="expert")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-passes", type=int, default=64)
    ap.add_argument("--compare-noise", nargs=2, metavar=("MASK_DIR", "UNIFORM_DIR"), default=None,
                    help="two models trained alike but for the noise process")
    ap.add_argument("--quick", action="store_true", help="only model-only and the default setting")
    a = ap.parse_args()

    pairs = cached_pairs("sudoku", a.n, a.grade, a.seed)
    probs = [p for p, _ in pairs]
    clues = [81 - p.count(".") for p in probs]
    lines = [
        "## Sudoku",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Puzzles: {len(probs)} held-out generated puzzles of grade `{a.grade}` (unique solution, no clue "
        f"removable; {min(clues)}–{max(clues)} clues, median {statistics.median(clues):.0f}; seed {a.seed}, "
        f"file `benchmarks/data/`). Model: `{a.model}`. Batch {a.batch_size}, at most {a.max_passes} passes, "
        "threshold sampler: the task's default commits the forced cells plus the most confident guess each "
        "pass (threshold 1.0); rows without domain masks commit p >= 0.9 (at least one per pass). The shipped "
        "model reads "
        "each empty cell's candidates (the task's domains: singles propagated to a fixpoint) as input, so *model only* "
        "means no logit masks, no re-noising, no tabu, no restarts: "
        "the bare model's passes over its own input features.",
        "",
        HEADER,
    ]
    settings = {k: v for k, v in SETTINGS.items() if not a.quick or k in ("model only", "+ both (the local search)")}
    for name, opts in settings.items():
        m = run(a.model, probs, a.batch_size, **{"max_passes": a.max_passes, **opts})
        print(row(name, m), flush=True)
        lines.append(row(name, m))
    out = write_section("sudoku", "\n".join(lines))
    print(f"wrote {out}")
    if a.compare_noise:  # its own section, so a run without the two extra models keeps it
        lines = ["## Sudoku: masked vs uniform noise", "", f"Command: `{command()}`  ", f"Machine: {machine()}  ",
                 f"Puzzles: the {len(probs)} of the Sudoku section (grade `{a.grade}`, seed {a.seed}), at most "
                 f"{a.max_passes} passes.", "",
                 f"Two small models trained alike (hidden 64, 3 layers, 800 steps of batch 32, no domain input), "
                 f"differing only in `train.noise`, on the same puzzles: `constrained finetune sudoku --out "
                 f"runs/sudoku-noise-NOISE --noise NOISE --steps 800 --batch-size 32 --set model.hidden_size=64 "
                 f"--set model.num_hidden_layers=3 --set model.intermediate_size=128 --set model.domain_input=false "
                 f"--set eval.size=0` (`{a.compare_noise[0]}`, `{a.compare_noise[1]}`).", "", HEADER]
        for label, path in zip(("mask", "uniform"), a.compare_noise):
            for name in ("model only", "+ both (the local search)"):
                m = run(path, probs, a.batch_size, **{"max_passes": a.max_passes, **SETTINGS[name]})
                print(row(f"{label}: {name}", m), flush=True)
                lines.append(row(f"{label} noise, {name}", m))
        print(f"wrote {write_section('sudoku-noise', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
