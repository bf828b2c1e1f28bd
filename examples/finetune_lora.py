"""Teach a model a new rule with LoRA: Sudoku-X (Sudoku plus both main diagonals) as a
low-rank adapter on the Sudoku model, then solve Sudoku-X puzzles with the adapter.

    python examples/finetune_lora.py                       # recipe finetune/recipes/sudoku-x.lora.toml
                                                           # (300 steps: about 10 minutes on 2 CPU cores)
    python examples/finetune_lora.py --steps 30            # a 1-minute taste (the adapter learns little)
    python examples/finetune_lora.py --base DIR --steps 3 --out /tmp/x --n 2
    # the same from the shell: constrained finetune sudoku-x --mode lora --out runs/sudoku-x-lora
"""

from __future__ import annotations

import argparse
import tempfile

from constrained.finetune.lora import finetune_lora

from constrained import load_task, solve_batch


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="task:sudoku", help="'task:sudoku' (the shipped model) or a folder")
    ap.add_argument("--task", default="sudoku-x", help="the task the adapter learns (default sudoku-x)")
    ap.add_argument("--out", default=None, help="adapter folder (default: a new temp folder)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--n", type=int, default=20, help="Sudoku-X puzzles to solve afterwards")
    a = ap.parse_args(argv)
    a.out = a.out or tempfile.mkdtemp(prefix="constrained-lora-")

    overrides = ["lora.rank=4"]  # any recipe entry: section.key=value
    if a.steps is not None:
        overrides += [f"train.max_steps={a.steps}", "eval.size=0", "train.warmup_steps=0"]
    if a.batch_size is not None:
        overrides.append(f"train.batch_size={a.batch_size}")
    info = finetune_lora(a.task, out=a.out, base=a.base, overrides=overrides, progress=False)
    print(f"adapter written to {info['out']} in {info['wall_seconds']:.0f} s: "
          f"{info['trainable_parameters']:,} trained parameters on a base of {info['base_parameters']:,}")

    task = load_task(a.task)
    pairs = task.generate(a.n, seed=7, grade="hard")
    results = solve_batch(task, [p for p, _ in pairs], model=a.out)  # an adapter folder loads onto its base
    print(f"{a.task} with the adapter: {sum(r.valid for r in results)}/{len(results)} validated")


if __name__ == "__main__":
    main()
