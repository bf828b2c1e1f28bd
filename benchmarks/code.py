"""Code-infill benchmark: holes cut from held-out modules of the corpus (whole modules the
model never saw; tasks/code_corpus.py), filled by the shipped code denoiser, model only and
with validator re-noising (syntax errors localised to hole tokens, tabu, restarts).

    python benchmarks/code.py                      # 500 single-line + 200 multi-line holes
    python benchmarks/code.py --n-line 50 --n-multi 20

Writes benchmarks/results/code.md (then run benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command, machine, percentile, write_section  # noqa: E402

from constrained import load_task, make_solver, solve_with  # noqa: E402

SETTINGS = {
    "model only": {"model_only": True},
    "+ validator re-noising (default)": {},
}


def run(task, model: str, holes, batch_size: int, **options) -> dict[str, float]:
    probs = [p for p, _ in holes]
    solver = make_solver(task, model, **options)
    t0 = time.perf_counter()
    res = solve_with(solver, probs, batch_size=batch_size)
    wall = time.perf_counter() - t0
    passes = [r.passes for r in res]
    n_tokens = sum(sum(1 for t in r.tokens if t != 0) for r in res)
    canvas_tokens = sum(len(r.tokens) for r in res)
    exact = [r.solution.hole == truth for r, (_, truth) in zip(res, holes)]
    exact_strip = [r.solution.hole.strip() == truth.strip() for r, (_, truth) in zip(res, holes)]
    return {
        "parse": sum(r.valid for r in res) / len(res),
        "exact": sum(exact) / len(res),
        "exact_strip": sum(exact_strip) / len(res),
        "passes_mean": statistics.mean(passes),
        "passes_median": statistics.median(passes),
        "passes_p95": percentile(passes, 95),
        "restarts": sum(r.restarts for r in res) / len(res),
        "holes_per_s": len(res) / wall,
        "tokens_per_s": n_tokens / wall,
        "canvas_tokens_per_s": canvas_tokens * statistics.mean(passes) / wall,
        "overhead": solver.stats.overhead_share,
        "wall": wall,
    }


HEADER = ("| holes | setting | parse rate | exact match | exact (strip) | passes mean / median / p95 | "
          "restarts per hole | hole tokens/s | holes/s | share outside the forward |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def row(kind: str, name: str, m: dict[str, float]) -> str:
    return (f"| {kind} | {name} | {m['parse']:.1%} | {m['exact']:.1%} | {m['exact_strip']:.1%} | "
            f"{m['passes_mean']:.1f} / {m['passes_median']:.0f} / {m['passes_p95']:.0f} | "
            f"{m['restarts']:.2f} | "
            f"{m['tokens_per_s']:.0f} | {m['holes_per_s']:.2f} | {m['overhead']:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-line", type=int, default=500)
    ap.add_argument("--n-multi", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--model", default="default")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()

    task = load_task("code-infill")
    t0 = time.perf_counter()
    sets = {
        f"single-line ({args.n_line})": task.generate(args.n_line, seed=args.seed, kind="line"),
        f"multi-line, 2-3 lines ({args.n_multi})": task.generate(args.n_multi, seed=args.seed + 1,
                                                                 kind="multiline"),
    }
    gen_s = time.perf_counter() - t0
    n_modules = len({p.name for holes in sets.values() for p, _ in holes})
    rows, raw = [], {}
    for kind, holes in sets.items():
        for name, opts in SETTINGS.items():
            m = run(task, args.model, holes, args.batch_size, **opts)
            raw[f"{kind} / {name}"] = m
            rows.append(row(kind, name, m))
            print(rows[-1], flush=True)
    (RESULTS / "code.json").write_text(json.dumps(raw, indent=1))
    text = f"""
## Code infilling (Python)

Holes cut from **held-out modules** (whole files of the standard library and installed packages
that the model never trained on; {n_modules} modules, split by the SHA-1 of the module path,
`tasks/code_corpus.py`), filled by the shipped denoiser `constrained/models/code` (hole budget
{task.hole_tokens} tokens, context {task.prefix_tokens} tokens before + {task.suffix_tokens} after).
A single-line hole is one line's code from its first non-blank character to its end; a multi-line hole
spans 2-3 lines. Holes needing more than the hole budget are skipped when drawing (so multi-line holes
are the shorter ones). Seeds {args.seed} / {args.seed + 1}.

- *parse rate*: returned files that compile (`compile(..., "exec")`); with re-noising, a file is only
  reported valid when it compiles, so this is the verified rate;
- *exact match*: the hole's text equals the original exactly (*strip*: ignoring surrounding whitespace);
- *hole tokens/s*: non-`[PAD]` tokens of the returned holes per second of wall time (batch {args.batch_size});
- the module's own behaviour (pass rate of its tests) is not measured: held-out modules come without
  runnable tests here.

{HEADER}
{chr(10).join(rows)}

Command: `{command()}` (holes drawn in {gen_s:.0f} s).
Machine: {machine()}; shared with other jobs while it ran, so rates are lower bounds.
"""
    print(write_section("code", text))


if __name__ == "__main__":
    main()
