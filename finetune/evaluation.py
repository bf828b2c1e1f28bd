"""Scoring during and after training: the held-out set (its seed kept here, once), the
verified solve rates on it, the callback that logs them every N steps, and their table."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from constrained.api import make_config, solve_with
from constrained.solver import Solver
from constrained.task import Task

from .recipes import Recipe

#: the held-out set is generated with seed HELD_OUT_SEED + train.seed, apart from the training
#: stream (seeded by train.seed) and the reward mode's problem pool (POOL_SEED + train.seed)
HELD_OUT_SEED = 10_000
POOL_SEED = 20_000


def held_out_seed(recipe: Recipe) -> int:
    return HELD_OUT_SEED + recipe.train.seed


def pool_seed(recipe: Recipe) -> int:
    return POOL_SEED + recipe.train.seed


def held_out_set(task: Task, recipe: Recipe) -> list[Any]:
    """``eval.size`` problems from the task's generator (with the ``[eval]`` generator options)."""
    ev = recipe.eval
    if not ev.size:
        return []
    return [p for p, _ in task.generate(ev.size, seed=held_out_seed(recipe), **ev.generator)]


def held_out_description(recipe: Recipe) -> str:
    """How a model card names the held-out set: its generator options and seed."""
    where = ", ".join(f"{k}={v}" for k, v in recipe.eval.generator.items()) or "default generator"
    return f"{where}; seed {held_out_seed(recipe)}"


def evaluate(task: Task, model, noise, problems: list, **options: Any) -> dict[str, float]:
    """Verified solve rate and passes on ``problems``: model only and with every mechanism on,
    under the task's own solver defaults (as ``make_solver`` applies them; ``options`` win).
    Keys ``model_only_solve_rate`` / ``model_only_mean_passes`` / ``full_solve_rate`` /
    ``full_mean_passes``; rates in [0, 1]."""
    options = {**task.solver_defaults, **options}
    out: dict[str, float] = {}
    was_training = model.training
    for name, opts in (("model_only", {"model_only": True}), ("full", {})):
        solver = Solver(task, model, noise, make_config(**opts, **options), device=next(model.parameters()).device)
        res = solve_with(solver, problems, batch_size=256)
        out[f"{name}_solve_rate"] = sum(r.valid for r in res) / max(len(res), 1)
        out[f"{name}_mean_passes"] = sum(r.passes for r in res) / max(len(res), 1)
    model.train(was_training)
    return out


class ValidatorEval(TrainerCallback):
    """Every ``every`` steps, solve a held-out set and log the verified solve rates."""

    def __init__(self, task: Task, noise, problems: list, every: int, options: dict[str, Any]) -> None:
        self.task, self.noise, self.problems, self.every, self.options = task, noise, problems, every, options
        self.t0 = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        self.t0 = time.time()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every and state.global_step % self.every == 0 and model is not None and self.problems:
            elapsed = time.time() - self.t0  # wall time of this run before the evaluation
            scores = evaluate(self.task, model, self.noise, self.problems, **self.options)
            state.log_history.append({"step": state.global_step, "elapsed_seconds": round(elapsed, 1),
                                      **{f"eval_{k}": v for k, v in scores.items()}})
            if state.is_world_process_zero:
                print(f"[eval step {state.global_step}] " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items()),
                      flush=True)


def final_scores(trainer, evaluate_fn) -> dict[str, float]:
    """The evaluation logged at the last step if there is one (not solving the set twice), else a new one."""
    step = trainer.state.global_step
    for h in reversed(trainer.state.log_history):
        if h.get("step") == step and "eval_model_only_solve_rate" in h:
            return {k[5:]: v for k, v in h.items() if k.startswith("eval_")}
    return evaluate_fn()


def scores_table(labelled: list[tuple[str, dict[str, float]]]) -> list[str]:
    """Markdown rows of verified solve rates for model cards: one row per (model label, setting)."""
    lines = ["| model | setting | solve rate | mean passes |", "|---|---|---|---|"]
    for label, sc in labelled:
        for name in ("model_only", "full"):
            if f"{name}_solve_rate" in sc:
                lines.append(f"| {label} | {name.replace('_', ' ')} | {sc[f'{name}_solve_rate']:.1%} | "
                             f"{sc[f'{name}_mean_passes']:.1f} |")
    return lines
