"""Code-infill denoisers compared on the benchmark's held-out holes: each model under its own
decoding settings and under the task's current defaults, with the model-quality figures
(held-out NLL bound, edit similarity, distinct fills) next to the parse rate.

    python benchmarks/code_models.py --model "encoder, from scratch=runs/code-encoder" \\
        --model "PSM block model from code-ar (shipped)=default"

A model given as ``NAME=PATH[@JSON]`` is decoded with the task's defaults updated by JSON
(e.g. the settings it shipped with). Writes benchmarks/results/code-models.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from code import Scorer, hole_nll, run_diffusion  # noqa: E402

from common import command, machine, write_section  # noqa: E402

from constrained import load_task, make_solver  # noqa: E402

HEADER = ("| denoiser | holes | decoding | held-out NLL | parse rate | exact match | edit similarity | "
          "distinct fills | mean hole chars | passes per hole | holes/s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def parse_model(text: str) -> tuple[str, str, dict]:
    if "=" not in text:
        raise SystemExit(f"--model {text!r}: write NAME=PATH[@JSON]")
    name, rest = text.split("=", 1)
    path, _, opts = rest.partition("@")
    try:
        options = json.loads(opts) if opts else {}
    except json.JSONDecodeError as e:
        raise SystemExit(f"--model {text!r}: the settings after @ are not JSON: {e}") from None
    return name.strip(), path.strip(), options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=PATH[@JSON settings]")
    ap.add_argument("--n-line", type=int, default=500)
    ap.add_argument("--n-multi", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    models = [parse_model(m) for m in args.model]
    task = load_task("code-infill")
    sets = {f"single-line ({args.n_line})": task.generate(args.n_line, seed=args.seed, kind="line"),
            f"multi-line ({args.n_multi})": task.generate(args.n_multi, seed=args.seed + 1, kind="multiline")}
    scorer = Scorer()
    rows = []
    t0 = time.perf_counter()
    for name, path, own in models:
        den = make_solver(task, path).model
        n_params = sum(p.numel() for p in den.parameters())
        settings = [("model only", {"model_only": True, **own})]
        settings.append(("its settings" if own else "task defaults", own))
        if own:
            settings.append(("task defaults", {}))
        for kind, holes in sets.items():
            nll = hole_nll(task, den, holes)
            for label, opts in settings:
                m = run_diffusion(task, path, holes, args.batch_size, scorer, **opts)
                rows.append(f"| {name} ({n_params / 1e6:.2f} M) | {kind} | {label} | {nll:.2f} | {m['parse']:.1%} | "
                            f"{m['exact']:.1%} | {m['edit_sim']:.1%} | {m['distinct']:.1%} | {m['chars']:.1f} | "
                            f"{m['passes_mean']:.1f} | {m['holes_per_s']:.2f} |")
                print(rows[-1], flush=True)
    settings_text = "; ".join(f"*{n}*: `{json.dumps(o)}`" for n, _, o in models if o) or "none"
    write_section("code-models", f"""
## Code infilling: the denoisers compared

The held-out holes of the *Code infilling* section (seeds {args.seed} / {args.seed + 1}), filled by
each denoiser. *Held-out NLL*: the MDLM bound in nats per hole token (the end counted as one),
whatever the search; *edit similarity* and *distinct fills* as in that section. *Task defaults*:
the task's current solver defaults `{dict(task.solver_defaults)}`; settings a model shipped with:
{settings_text}.

{HEADER}
{chr(10).join(rows)}

Command: `{command()}` ({(time.perf_counter() - t0) / 60:.1f} min).
Machine: {machine()}; shared with other jobs while it ran, so rates are lower bounds.
""")


if __name__ == "__main__":
    main()
