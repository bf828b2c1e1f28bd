"""Fine-tuning benchmark: what LoRA and validator-reward training buy.

1. Sudoku-X (Sudoku + both diagonals): the shipped Sudoku model as base vs base + the shipped
   LoRA adapter (constrained/models/sudoku-x), verified solve rate model-only and with the full
   solver (re-noising, domains, tabu, restarts), on held-out Sudoku-X puzzles.
2. Adapter size vs the base's.
3. Training wall time: the LoRA run vs a full fine-tune of the same base on the same data,
   each to the LoRA's final held-out model-only solve rate (from the runs' evaluation logs).
4. Reward mode: model-only solve rate before vs after validator-reward fine-tuning on
   held-out Sudoku puzzles of the hardest grade (expert: minimal puzzles).

    python benchmarks/finetune.py --full-run runs/sudoku-x-full --reward-run runs/sudoku-reward
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

from common import DATA, ROOT, command, machine, write_section  # noqa: E402

from constrained import load_task, make_solver, solve_with  # noqa: E402

MODELS = ROOT / "constrained" / "models"


def puzzles(task_name: str, n: int, grade: str, seed: int) -> list[str]:
    path = DATA / f"{task_name}-{grade}-{n}-seed{seed}.txt"
    if not path.exists():
        bigger = sorted(DATA.glob(f"{task_name}-{grade}-*-seed{seed}.txt"))
        for b in bigger:
            if int(b.stem.split("-")[-2]) >= n:
                return [line.split(",")[0] for line in b.read_text().split()][:n]
        pairs = load_task(task_name).generate(n, seed=seed, grade=grade, progress=True)
        DATA.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(f"{p},{s}" for p, s in pairs) + "\n")
    return [line.split(",")[0] for line in path.read_text().split()][:n]


def solve_rate(task: str, model: str | Path, probs: list[str], **options) -> dict[str, float]:
    solver = make_solver(task, str(model), **options)
    t0 = time.perf_counter()
    res = solve_with(solver, probs, batch_size=256)
    wall = time.perf_counter() - t0
    return {"solved": sum(r.valid for r in res) / len(res), "passes": sum(r.passes for r in res) / len(res),
            "per_s": len(res) / wall}


def eval_curve(run: Path) -> list[dict[str, float]]:
    log = json.loads((run / "training_log.json").read_text())
    return [h for h in log if "eval_model_only_solve_rate" in h]


def time_to(curve: list[dict[str, float]], rate: float) -> tuple[float | None, int | None]:
    for h in curve:
        if h["eval_model_only_solve_rate"] >= rate - 1e-9:
            return h.get("elapsed_seconds"), int(h["step"])
    return None, None


def params(path: Path) -> int:
    from safetensors.torch import load_file

    return sum(t.numel() for f in path.glob("*.safetensors") for t in load_file(str(f)).values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="held-out Sudoku-X puzzles")
    ap.add_argument("--grade", default="hard")
    ap.add_argument("--base", default=str(MODELS / "sudoku"))
    ap.add_argument("--adapter", default=str(MODELS / "sudoku-x"))
    ap.add_argument("--full-run", default=None, help="folder of a full fine-tune of the base on sudoku-x")
    ap.add_argument("--reward-run", default=None, help="folder of a reward-mode run on sudoku")
    ap.add_argument("--reward-base", default=str(MODELS / "sudoku"))
    ap.add_argument("--reward-n", type=int, default=200, help="held-out expert Sudoku puzzles")
    a = ap.parse_args()
    base, adapter = Path(a.base), Path(a.adapter)
    out: list[str] = ["## Fine-tuning: LoRA and validator reward", "", f"Command: `{command()}`", "",
                      f"Machine: {machine()}", ""]

    # 1. base vs base + LoRA on Sudoku-X
    probs = puzzles("sudoku-x", a.n, a.grade, seed=777)
    cache = ROOT / "runs" / "finetune-bench-cache.json"  # the Sudoku-X solves, reused while nothing changed
    key = f"{base}:{adapter}:{a.n}:{a.grade}:{(adapter / 'adapter_model.safetensors').stat().st_mtime}"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    rows = {}
    for label, model in (("Sudoku base", base), ("Sudoku base + Sudoku-X LoRA", adapter)):
        for setting, opts in (("model only", {"model_only": True}), ("full solver (re-noising)", {})):
            if key in cached and f"{label}|{setting}" in cached[key]:
                rows[(label, setting)] = cached[key][f"{label}|{setting}"]
            else:
                rows[(label, setting)] = solve_rate("sudoku-x", model, probs, **opts)
            print(label, setting, rows[(label, setting)], flush=True)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({key: {f"{k[0]}|{k[1]}": v for k, v in rows.items()}}))
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
            f"(target 100%: {'met' if full >= 1.0 else 'NOT met'}).", ""]

    # 2. sizes
    ab = (adapter / "adapter_model.safetensors").stat().st_size
    bb = sum(f.stat().st_size for f in base.glob("*.safetensors"))
    pa, pb = params(adapter), params(base)
    out += ["### Adapter size", "", "| | parameters | bytes on disk |", "|---|---|---|",
            f"| base (`constrained/models/sudoku`) | {pb:,} | {bb / 1e6:.2f} MB |",
            f"| LoRA adapter (`constrained/models/sudoku-x`) | {pa:,} | {ab / 1e3:.0f} kB |",
            "", f"Adapter / base: **{ab / bb:.1%}** of the bytes, {pa / pb:.1%} of the parameters "
            f"(target ≤ 5%: {'met' if ab / bb <= 0.05 else 'NOT met'}).", ""]

    # 3. training wall time, LoRA vs full fine-tune
    lora_curve = eval_curve(adapter)
    meta = json.loads((adapter / "constrained_adapter.json").read_text())
    if lora_curve:
        n_eval = meta.get("eval_size", "the")
        target = lora_curve[-1]["eval_model_only_solve_rate"]
        lt, ls = time_to(lora_curve, target)
        out += ["### Training wall time: LoRA vs full fine-tune of the same base", "",
                "Both start from the shipped Sudoku model, train on the same Sudoku-X stream and evaluate "
                f"the same {n_eval} held-out hard Sudoku-X puzzles (model only) during training; the time "
                "is the run's wall time when that evaluation first reached the LoRA run's final rate "
                f"({target:.1%}), counting the evaluations before it. LoRA: rank {meta['lora']['rank']}, "
                f"targets {', '.join(meta['lora']['target_modules'])}.", "",
                "| run | trainable parameters | steps to the rate | wall time to the rate | final rate |",
                "|---|---|---|---|---|",
                f"| LoRA | {pa:,} | {ls} | {lt / 60:.1f} min | {target:.1%} |"]
        if a.full_run:
            fc = eval_curve(Path(a.full_run))
            ft, fs = time_to(fc, target)
            final = fc[-1]["eval_model_only_solve_rate"] if fc else float("nan")
            if ft is not None:
                reached = f"{fs} | {ft / 60:.1f} min"
            else:
                reached = (f"not reached in {fc[-1]['step'] if fc else 0} steps | "
                           f"> {fc[-1]['elapsed_seconds'] / 60 if fc else 0:.1f} min")
            out.append(f"| full fine-tune | {pb:,} | {reached} | {final:.1%} |")
        out.append("")

    # 4. reward mode on the hardest grade
    if a.reward_run:
        path = DATA / "sudoku-expert-1000-seed12345.txt"
        rp = [line.split(",")[0] for line in path.read_text().split()][: a.reward_n]
        before = solve_rate("sudoku", a.reward_base, rp, model_only=True)
        after = solve_rate("sudoku", a.reward_run, rp, model_only=True)
        print("reward", before, after, flush=True)
        card = json.loads((Path(a.reward_run) / "training_log.json").read_text())
        rollout = [h for h in card if "rollout_reward" in h]
        out += [f"### Reward mode: model-only solve rate on the hardest grade ({a.reward_n} held-out expert "
                "Sudoku puzzles, benchmarks/data/sudoku-expert-1000-seed12345.txt)", "",
                "| model | verified solve rate (model only) | mean passes |", "|---|---|---|",
                f"| shipped Sudoku model (before) | {before['solved']:.1%} | {before['passes']:.1f} |",
                f"| after `--mode reward` | {after['solved']:.1%} | {after['passes']:.1f} |", "",
                f"Measured change: **{(after['solved'] - before['solved']) * 100:+.1f} points**.", ""]
        if rollout:
            out.append(f"Mean rollout reward went from {rollout[0]['rollout_reward']:.3f} (first log) "
                       f"to {rollout[-1]['rollout_reward']:.3f} (last), rollouts solved from "
                       f"{rollout[0]['rollout_solved']:.1%} to {rollout[-1]['rollout_solved']:.1%}.")
        out.append("")
    print(write_section("finetune", "\n".join(out)))


if __name__ == "__main__":
    main()
