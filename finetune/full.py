"""``constrained finetune TASK``: build or load a denoiser, train it on the task's stream,
evaluate it with the task's validator, and save it with a model card."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from constrained.engine.denoiser import reads_domains
from constrained.engine.model import DenoiserConfig, DenoiserModel
from constrained.engine.noise import make_noise
from transformers import TrainerCallback

from constrained.api import make_config, solve_with
from constrained.errors import ConfigError
from constrained.registry import load_task
from constrained.solver import Solver
from constrained.task import Task

from .data import DiffusionCollator, TaskStream
from .recipes import load_recipe
from .trainer import DiffusionTrainer
from .training import machine_description, training_arguments


def evaluate(task: Task, model, noise, problems: list, **options: Any) -> dict[str, float]:
    """Verified solve rate and passes on ``problems``: model only and with every mechanism on,
    under the task's own solver defaults (as ``make_solver`` applies them; ``options`` win)."""
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


class WallClock(TrainerCallback):
    """Training wall time summed over interrupted and resumed runs: each checkpoint records
    the total so far (``wall_seconds.json``), and a resumed run starts from it."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.t0 = before, time.time()

    @property
    def total(self) -> float:
        return self.before + time.time() - self.t0

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / "wall_seconds.json").write_text(json.dumps({"seconds": round(self.total, 1)}))

    @staticmethod
    def resumed_from(checkpoint: Path | None) -> float:
        f = checkpoint / "wall_seconds.json" if checkpoint else None
        return float(json.loads(f.read_text())["seconds"]) if f and f.exists() else 0.0


def build_model(task: Task, recipe: dict[str, Any], init: str | None = None) -> torch.nn.Module:
    if init:
        from constrained.engine.infill import PSMDenoiser

        from constrained.hub import check_compatible, load_denoiser

        model, _ = load_denoiser(task, init)
        from constrained.engine.graph import GraphDenoiser

        if not isinstance(model, (DenoiserModel, PSMDenoiser, GraphDenoiser)):
            raise ConfigError(f"--init {init}: not a denoiser saved by `constrained finetune` (a "
                              f"{type(model).__name__}); to fine-tune a hub model use --mode lora")
        check_compatible(model.config, task, init)
        return model.train()
    m = recipe["model"]
    if m["arch"] == "psm-block":
        from constrained.engine.infill import psm_denoiser_from_ar

        return psm_denoiser_from_ar(_resolve(m["init_from_ar"]), task, task.layout.length,
                                    noise=recipe["train"]["noise"])
    if m["arch"] == "graph":
        from constrained.engine.graph import GraphDenoiser, GraphDenoiserConfig

        first = getattr(task, "value_offset", 2)
        gcfg = GraphDenoiserConfig(
            vocab_size=len(task.vocab), value_offset=first, num_values=len(task.vocab.content),
            hidden_size=m["hidden_size"], value_hidden_size=m["value_hidden_size"],
            num_hidden_layers=m["num_hidden_layers"], num_attention_heads=m["num_attention_heads"],
            num_global=m["num_global"], noise=recipe["train"]["noise"], task=task.name,
            vocab_tokens=list(task.vocab.tokens), canvas_length=task.layout.length)
        if gcfg.hidden_size % gcfg.num_attention_heads:
            raise ConfigError(f"model.hidden_size {gcfg.hidden_size} is not divisible by "
                              f"model.num_attention_heads {gcfg.num_attention_heads}")
        return GraphDenoiser(gcfg)
    config = DenoiserConfig(
        vocab_size=len(task.vocab),
        hidden_size=m["hidden_size"],
        num_hidden_layers=m["num_hidden_layers"],
        num_attention_heads=m["num_attention_heads"],
        intermediate_size=m["intermediate_size"],
        max_position_embeddings=m["max_position_embeddings"],
        dropout=m["dropout"],
        domain_input=m["domain_input"],
        coord_sizes=dict(task.layout.coord_sizes),
        noise=recipe["train"]["noise"],
        task=task.name,
        vocab_tokens=list(task.vocab.tokens),
        canvas_length=task.layout.length,
    )
    if config.hidden_size % config.num_attention_heads:
        raise ConfigError(f"model.hidden_size {config.hidden_size} is not divisible by "
                          f"model.num_attention_heads {config.num_attention_heads}")
    return DenoiserModel(config)


def _resolve(path: str) -> str:
    """A relative model path from the current directory, else from the project root
    (recipes name shipped models as ``constrained/models/NAME``)."""
    here = Path(path)
    if here.exists() or here.is_absolute():
        return str(here)
    root = Path(__file__).resolve().parent.parent / path
    return str(root) if root.exists() else str(here)


def finetune(task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
             overrides: list[str] | None = None, init: str | None = None, resume: bool = True,
             progress: bool = True) -> dict[str, Any]:
    """Full training (from scratch, or continuing from ``init``). Returns the final scores."""
    recipe = load_recipe(task_name, recipe_path, overrides)
    task = load_task(task_name, **recipe["task"])
    tr = recipe["train"]
    out = Path(out or f"runs/{task_name}")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tr["seed"])
    model = build_model(task, recipe, init)
    noise = make_noise(tr["noise"], task.vocab.mask_id)
    if init and model.config.noise != tr["noise"]:
        model.config.noise = tr["noise"]
    ev = recipe["eval"]
    eval_kw = {k: v for k, v in ev.items() if k not in ("steps", "size", "options")}
    held_out = [p for p, _ in task.generate(ev["size"], seed=10_000 + tr["seed"], **eval_kw)] if ev["size"] else []
    rank = int(os.environ.get("RANK", 0))
    args = training_arguments(recipe, out, progress)
    trainer = DiffusionTrainer(
        model=model,
        args=args,
        train_dataset=TaskStream(task, seed=tr["seed"], rank=rank),
        data_collator=DiffusionCollator(task, noise, seed=tr["seed"] + rank, domains=reads_domains(model),
                                        context_noise=tr["context_noise"]),
        noise=noise,
        callbacks=[ValidatorEval(task, noise, held_out, ev["steps"], ev["options"])],
    )
    last = _last_checkpoint(out / "checkpoints") if resume else None
    if last and rank == 0:
        print(f"resuming from {last}", flush=True)
    clock = WallClock(WallClock.resumed_from(last))
    trainer.add_callback(clock)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    wall = clock.total
    scores = evaluate(task, model, noise, held_out, **ev["options"]) if held_out else {}
    if trainer.is_world_process_zero():
        model.save_pretrained(out, safe_serialization=True)
        history = trainer.state.log_history
        (out / "training_log.json").write_text(json.dumps(history, indent=1))
        plot_loss(history, out / "loss.png")
        write_card(out, task, recipe, model, scores, wall, init, held_out_desc=eval_kw)
    return {"scores": scores, "wall_seconds": wall, "out": str(out)}


def _last_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    cks = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return max(cks, key=lambda p: int(p.name.split("-")[-1])) if cks else None


def plot_loss(history: list[dict[str, Any]], path: Path) -> None:
    pts = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    if not pts:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*pts))
    ax.set_xlabel("step")
    ax.set_ylabel("diffusion loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_card(out: Path, task: Task, recipe: dict[str, Any], model, scores: dict[str, float], wall: float,
               init: str | None, held_out_desc: dict[str, Any]) -> None:
    n_params = sum(p.numel() for p in model.parameters())
    psm = recipe["model"]["arch"] == "psm-block"
    unused = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "dropout",
              "max_position_embeddings", "domain_input") if psm else ()
    if recipe["model"]["arch"] == "graph":  # GraphDenoiser's own sizes; it always reads domains
        unused = ("intermediate_size", "dropout", "max_position_embeddings", "domain_input", "init_from_ar")
    elif not psm:
        unused = ("value_hidden_size", "num_global")
    overrides = [f"{s}.{k}={v}" for s in ("model", "train") for k, v in recipe[s].items()
                 if not (s == "model" and k in unused)]
    if psm:
        what = (f"A block-diffusion denoiser ({n_params / 1e6:.2f} M parameters, the Llama architecture of its "
                f"starting model) for the `{task.name}` task of `constrained`: it reads the context as a "
                "prefix-suffix-middle prompt, causally, and denoises the canvas after it bidirectionally "
                "(`constrained.engine.infill.PSMDenoiser`); trained from "
                + (f"`{init}`" if init else f"the weights of the AR model `{recipe['model']['init_from_ar']}`")
                + f" with {recipe['train']['noise']} noise.")
    elif recipe["model"]["arch"] == "graph":
        what = (f"A graph denoiser ({n_params / 1e6:.2f} M parameters; `constrained.engine.graph.GraphDenoiser`) "
                f"for the `{task.name}` task of `constrained`: attention masked by the graph's adjacency plus "
                f"{recipe['model']['num_global']} global positions over the nodes, and a colour-symmetric "
                "value stream (one vector per node and colour, weights shared across colours); the graph "
                "never enters as tokens. Trained from " + (f"`{init}`" if init else "scratch")
                + f" with {recipe['train']['noise']} noise.")
    else:
        what = (f"A bidirectional transformer denoiser ({n_params / 1e6:.2f} M parameters) for the `{task.name}` "
                "task of `constrained`, trained from "
                + (f"`{init}`" if init else "scratch") + f" with {recipe['train']['noise']} noise.")
    lines = [
        f"# {task.name} denoiser",
        "",
        what,
        "",
        "## How it was trained",
        "",
        f"- command: `constrained finetune {task.name}" + (f" --init {init}" if init else "")
        + f" --out {out}` (recipe `finetune/recipes/{task.name}.toml`)",
        "- data: " + (getattr(task, "data_card", None) or f"generated on the fly by `{type(task).__name__}"
                      ".training_example` (see tasks/); nothing downloaded"),
        f"- steps: {recipe['train']['max_steps']}, batch {recipe['train']['batch_size']}, "
        f"lr {recipe['train']['learning_rate']}, {recipe['train']['lr_scheduler']} schedule",
        f"- wall time: {wall / 60:.1f} min on {machine_description()}",
        f"- full settings: {', '.join(overrides)}",
        "",
        "## Scores",
        "",
        f"Verified solve rate on {recipe['eval']['size']} held-out generated problems "
        f"({', '.join(f'{k}={v}' for k, v in held_out_desc.items()) or 'default generator'}; seed "
        f"{10_000 + recipe['train']['seed']}), measured at the end of training:",
        "",
        "| setting | solve rate | mean passes |",
        "|---|---|---|",
    ]
    for name in ("model_only", "full"):
        if f"{name}_solve_rate" in scores:
            lines.append(f"| {name.replace('_', ' ')} | {scores[f'{name}_solve_rate']:.1%} | "
                         f"{scores[f'{name}_mean_passes']:.1f} |")
    lines += ["", "Larger evaluations are in BENCHMARKS.md.", ""]
    (out / "README.md").write_text("\n".join(lines))
