"""Fine-tuning benchmark: what LoRA and validator-reward training buy.

1. Sudoku-X (Sudoku + both diagonals): the shipped Sudoku model as base vs base + the shipped
   LoRA adapter (constrained/models/sudoku-x), verified solve rate model-only and with the full
   solver (re-noising, domains, tabu, restarts), on held-out Sudoku-X puzzles.
2. Adapter size vs the base's.
3. Training cost: the LoRA run vs other fine-tunes of the same base on the same data (e.g. a full
   fine-tune, `--run "full fine-tune=runs/sudoku-x-full"`): trainable parameters, steps, wall
   time, and their held-out solve rates from table 1.
4. Reward mode: model-only solve rate before vs after validator-reward fine-tuning on
   held-out Sudoku puzzles of the hardest grade (expert: minimal puzzles).

    python benchmarks/finetune.py --run "full fine-tune=runs/sudoku-x-full" --reward-run runs/sudoku-reward
    python benchmarks/finetune.py --n 100 --reward-n 100    # a smaller run

Writes benchmarks/results/finetune.md (then run benchmarks/collect.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cached_pairs, command, machine, write_section  # noqa: E402

from constrained import make_solver, solve_with  # noqa: E402

MODELS = ROOT / "constrained" / "models"


def solve_rate(task: str, model: str | Path, probs: list[str], **options) -> dict[str, float]:
    solver = make_solver(task, str(model), **options)
    t0 = time.perf_counter()
    res = solve_with(solver, probs, batch_size=256)
    wall = time.perf_counter() - t0
    return {"solved": sum(r.valid for r in res) / len(res), "passes": sum(r.passes for r in res) / len(res),
            "per_s": len(res) / wall}


def weights_stamp(folder: Path) -> str:
    """Folder + size and mtime of its weights: a cache key that changes when the weights do."""
    files = sorted(folder.glob("*.safetensors"))
    return f"{folder}:" + ",".join(f"{f.stat().st_size}@{f.stat().st_mtime:.0f}" for f in files)


def train_time(run: Path) -> tuple[int, float]:
    """(steps, training wall seconds) of a run, from its training_log.json (Trainer's train_runtime)."""
    log = json.loads((run / "training_log.json").read_text())
    last = [h for h in log if "train_runtime" in h]
    steps = max((int(h.get("step", 0)) for h in log), default=0)
    return steps, float(last[-1]["train_runtime"]) if last else float("nan")


def params(path: Path) -> int:
    from safetensors.torch import load_file

    return sum(t.numel() for f in path.glob("*.safetensors") for t in load_file(str(f)).values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="held-out Sudoku-X puzzles")
    ap.add_argument("--grade", default="hard")
    ap.add_argument("--base", default=str(MODELS / "sudoku"))
    ap.add_argument("--adapter", default=str(MODELS / "sudoku-x"))
    ap.add_argument("--run", action="append", default=[], metavar="LABEL=DIR",
                    help="another Sudoku-X fine-tune of the base to compare (a full model or an adapter folder)")
    ap.add_argument("--reward-run", action="append", default=[], metavar="[LABEL=]DIR",
                    help="a reward-mode run on sudoku (repeatable)")
    ap.add_argument("--reward-base", default=str(MODELS / "sudoku"))
    ap.add_argument("--reward-n", type=int, default=200, help="held-out expert Sudoku puzzles")
    a = ap.parse_args()
    base, adapter = Path(a.base), Path(a.adapter)
    out: list[str] = ["## Fine-tuning: LoRA and validator reward", "", f"Command: `{command()}`", "",
                      f"Machine: {machine()}", ""]

    # 1. base vs base + LoRA on Sudoku-X
    probs = [p for p, _ in cached_pairs("sudoku-x", a.n, a.grade, seed=777)]
    cache = ROOT / "runs" / "finetune-bench-cache.json"  # solves per (weights, puzzles, setting), reused
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    rows = {}
    runs = [(lab, Path(d)) for lab, d in (r.split("=", 1) for r in a.run)]
    models = [("Sudoku base", base), ("Sudoku base + Sudoku-X LoRA", adapter), *runs]
    for label, model in models:
        for setting, opts in (("model only", {"model_only": True}), ("full solver (re-noising)", {})):
            key = f"{weights_stamp(model)}|{a.n}|{a.grade}|{setting}"
            if key not in cached:
                cached[key] = solve_rate("sudoku-x", model, probs, **opts)
                cache.parent.mkdir(exist_ok=True)
                cache.write_text(json.dumps(cached, indent=1))
            rows[(label, setting)] = cached[key]
            print(label, setting, rows[(label, setting)], flush=True)
    note = [] if a.n >= 500 else [
        f"{a.n} puzzles, not the 500 the fine-tuning issue asks for: the run shared a 2-core CPU with "
        "other trainings, and the full solver runs up to 64 passes per unsolved puzzle.", ""]
    out += [f"### Sudoku-X: base vs base + LoRA ({a.n} held-out {a.grade} Sudoku-X puzzles, seed 777)", "",
            *note,
            "| model | setting | verified solve rate | mean passes | puzzles/s |", "|---|---|---|---|---|"]
    for (label, setting), r in rows.items():
        out.append(f"| {label} | {setting} | {r['solved']:.1%} | {r['passes']:.1f} | {r['per_s']:.1f} |")
    lora_label = "Sudoku base + Sudoku-X LoRA"
    lift = rows[(lora_label, "model only")]["solved"] - rows[("Sudoku base", "model only")]["solved"]
    full = rows[(lora_label, "full solver (re-noising)")]["solved"]
    out += ["", f"Model-only lift from the adapter: **{lift * 100:+.1f} points** (target ≥ +30: "
            f"{'met' if lift >= 0.30 else 'NOT met'}); base + LoRA with re-noising: **{full:.1%}** "
            f"(target 100%: {'met' if full >= 1.0 else 'NOT met'}).", "",
            "Why the lift is small: the shipped base reads each empty cell's candidate set as input "
            "(`domain_input`), and Sudoku-X's candidate sets already exclude the digits placed on a cell's "
            "diagonals, so the base starts out knowing much of what an adapter would teach; its remaining "
            "failures are search failures shared with plain Sudoku, which more training on the same stream "
            "(LoRA or full) did not fix.", ""]

    # 2. sizes
    ab = (adapter / "adapter_model.safetensors").stat().st_size
    bb = sum(f.stat().st_size for f in base.glob("*.safetensors"))
    pa, pb = params(adapter), params(base)
    out += ["### Adapter size", "", "| | parameters | bytes on disk |", "|---|---|---|",
            f"| base (`constrained/models/sudoku`) | {pb:,} | {bb / 1e6:.2f} MB |",
            f"| LoRA adapter (`constrained/models/sudoku-x`) | {pa:,} | {ab / 1e3:.0f} kB |",
            "", f"Adapter / base: **{ab / bb:.1%}** of the bytes, {pa / pb:.1%} of the parameters "
            f"(target ≤ 5%: {'met' if ab / bb <= 0.05 else 'NOT met'}).", ""]

    # 3. training cost of each fine-tune of the base, with its held-out rate from table 1
    if runs:
        out += ["### Training cost: LoRA vs full fine-tune of the same base", "",
                "Every run starts from the shipped Sudoku model and trains on the same Sudoku-X stream "
                "(`SudokuX.training_example`, seed 0, batch 64). Wall time and seconds per step are the "
                "runs' own (Trainer's `train_runtime`, which includes the in-training evaluations; the machine's "
                "load differed between runs, so compare "
                "seconds per step within one session only); the rates are table 1's, on the same held-out "
                "puzzles.", "",
                "| run | trainable parameters | steps | wall time | s / step | model-only rate | with re-noising |",
                "|---|---|---|---|---|---|---|"]
        base_rate = rows[("Sudoku base", "model only")]["solved"]
        for label, model in [("Sudoku base + Sudoku-X LoRA", adapter), *runs]:
            steps, wall = train_time(model)
            trainable = params(model) if (model / "adapter_model.safetensors").exists() else pb
            out.append(f"| {label} | {trainable:,} | {steps} | {wall / 60:.1f} min | {wall / max(steps, 1):.2f} | "
                       f"{rows[(label, 'model only')]['solved']:.1%} | "
                       f"{rows[(label, 'full solver (re-noising)')]['solved']:.1%} |")
        best = max(rows[(lab, "model only")]["solved"] for lab, _ in [("Sudoku base + Sudoku-X LoRA", adapter), *runs])
        out += ["", f"The base alone: {base_rate:.1%} model only. "
                + ("No fine-tune beats the base's model-only rate, so there is no 'time to the same solve rate' "
                   "to compare: each reaches it at step 0." if best <= base_rate else
                   f"Best fine-tuned model-only rate: {best:.1%}."), ""]

    # 4. reward mode on the hardest grade
    if a.reward_run:
        rp = [p for p, _ in cached_pairs("sudoku", a.reward_n, "expert", 12345)]
        before = solve_rate("sudoku", a.reward_base, rp, model_only=True)
        out += [f"### Reward mode: model-only solve rate on the hardest grade ({a.reward_n} held-out expert "
                "Sudoku puzzles, benchmarks/data/sudoku-expert-1000-seed12345.txt)", "",
                "| model | verified solve rate (model only) | change | mean passes | rollout reward, first → last log "
                "| rollouts solved, first → last log |", "|---|---|---|---|---|---|",
                f"| shipped Sudoku model (before) | {before['solved']:.1%} | | {before['passes']:.1f} | | |"]
        for spec in a.reward_run:
            label, run = spec.split("=", 1) if "=" in spec else ("after `--mode reward`", spec)
            after = solve_rate("sudoku", run, rp, model_only=True)
            print("reward", label, before, after, flush=True)
            log = json.loads((Path(run) / "training_log.json").read_text())
            ro = [h for h in log if "rollout_reward" in h]
            trend = (f"{ro[0]['rollout_reward']:.3f} → {ro[-1]['rollout_reward']:.3f} | "
                     f"{ro[0]['rollout_solved']:.1%} → {ro[-1]['rollout_solved']:.1%}") if ro else " | "
            out.append(f"| {label} | {after['solved']:.1%} | **{(after['solved'] - before['solved']) * 100:+.1f} "
                       f"points** | {after['passes']:.1f} | {trend} |")
        out.append("")
    print(write_section("finetune", "\n".join(out)))


if __name__ == "__main__":
    main()
