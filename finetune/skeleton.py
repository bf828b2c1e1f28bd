"""The one training loop of ``constrained finetune``, shared by the full, LoRA and reward modes:

    recipe -> task -> resume -> model (the mode's) -> held-out set -> train -> score -> save -> card

:func:`train` walks that chain once, top to bottom (the model comes before the held-out set so
that a bad base or option fails before any problem is generated). A mode (:class:`Mode`; ``full.py``,
``lora.py``, ``reward.py``) supplies only its own steps: the model to train and its checks, its
``transformers.Trainer``, what it saves, and its card's text. Everything else is here or the
Trainer's own: checkpoints and resume (the last ``OUT/checkpoints/checkpoint-N``), the training
wall time summed over interrupted and resumed runs (:class:`WallClock`, every mode), the
held-out scores before and after, the training log and the loss curve. DDP / FSDP / DeepSpeed
under ``torchrun`` or ``accelerate launch`` work as for any Trainer; rank 0 writes the files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from constrained.engine.noise import NoiseProcess
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from constrained.registry import load_task
from constrained.task import Task

from .cards import CardText, plot_loss, write_card
from .evaluation import ValidatorEval, evaluate, final_scores, held_out_set
from .recipes import Recipe, load_recipe


@dataclass
class Run:
    """One training run as the chain fills it in: the inputs first, then the model, the
    trainer, the wall time and the scores. ``result`` is what the command prints."""

    task: Task
    recipe: Recipe
    out: Path
    overrides: list[str]
    init: str | None
    last: Path | None  # the checkpoint resumed from
    rank: int
    held_out: list[Any] = field(default_factory=list)
    model: nn.Module | None = None
    noise: NoiseProcess | None = None
    trainer: Trainer | None = None
    before: dict[str, float] = field(default_factory=dict)  # the starting model's held-out scores
    scores: dict[str, float] = field(default_factory=dict)  # the trained model's
    wall: float = 0.0  # training seconds, over every interrupted and resumed run
    result: dict[str, Any] = field(default_factory=dict)  # what the command prints; a mode may add to it


class Mode:
    """The steps of the chain that differ between modes. ``name`` picks the recipe file
    (``TASK.MODE.toml``); ``before_key`` names the starting model's scores in the result (None:
    the mode trains from scratch and has none)."""

    name = "full"
    out_suffix = ""  # default OUT: runs/TASK + suffix
    before_key: str | None = None

    def prepare(self, run: Run) -> tuple[nn.Module, NoiseProcess]:
        """The model to train and its noise process; every check that can fail runs here,
        before training. ``run.last`` is the checkpoint the Trainer will resume from."""
        raise NotImplementedError

    def trainer(self, run: Run, args: TrainingArguments, callbacks: list[TrainerCallback]) -> Trainer:
        raise NotImplementedError

    def save(self, run: Run) -> None:
        """Write the trained weights to ``run.out`` (rank 0 only); add to ``run.result``."""
        run.model.save_pretrained(run.out, safe_serialization=True)

    def plot(self, history: list[dict[str, Any]], path: Path) -> None:
        plot_loss(history, path)

    def card(self, run: Run) -> CardText:
        raise NotImplementedError


def train(mode: Mode, task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
          overrides: list[str] | None = None, init: str | None = None, resume: bool = True,
          progress: bool = True) -> dict[str, Any]:
    """Run ``mode`` on ``task_name``: train, score on the held-out set, save to ``out`` (default
    ``runs/TASK`` + the mode's suffix) with a log, a loss curve and a model card. A rerun into
    the same ``out`` resumes from its last checkpoint unless ``resume`` is false. Returns the
    result the command prints: ``scores``, ``wall_seconds``, ``out``, ``world_size``, ``steps``
    and the mode's own entries. Raises ConfigError / ModelMismatch before training."""
    # recipe, task, resume
    recipe = load_recipe(task_name, recipe_path, overrides, mode=mode.name)
    task = load_task(task_name, **recipe.task)
    out = Path(out or f"runs/{task_name}{mode.out_suffix}")
    last = last_checkpoint(out) if resume else None
    run = Run(task, recipe, out, list(overrides or []), init, last, int(os.environ.get("RANK", 0)))
    # the mode's model (its checks fail here, before any problem is generated), the held-out set
    torch.manual_seed(recipe.train.seed)
    run.model, run.noise = mode.prepare(run)
    run.held_out = held_out = held_out_set(task, recipe)
    ev = recipe.eval
    # train (the starting model scored first, when the mode has one and this is not a resume)
    run.trainer = trainer = mode.trainer(run, training_arguments(recipe, out, progress),
                                         [ValidatorEval(task, run.noise, held_out, ev.steps, ev.options)])
    if mode.before_key and held_out and run.rank == 0 and not last:
        run.before = evaluate(task, run.model, run.noise, held_out, **ev.options)
        print("[before] " + ", ".join(f"{k}={v:.3f}" for k, v in run.before.items()), flush=True)
    if last and run.rank == 0:
        print(f"resuming from {last}", flush=True)
    clock = WallClock(WallClock.resumed_from(last))
    trainer.add_callback(clock)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    run.wall = clock.total
    # score
    if held_out:
        run.scores = final_scores(trainer, lambda: evaluate(task, run.model, run.noise, held_out, **ev.options))
    run.result = {"scores": run.scores, **({mode.before_key: run.before} if mode.before_key else {}),
                  "wall_seconds": run.wall, "out": str(out), "world_size": trainer.args.world_size,
                  "steps": trainer.state.global_step, **run.result}  # + what the mode's prepare added
    # save, log, card (rank 0)
    if trainer.is_world_process_zero():
        mode.save(run)
        history = trainer.state.log_history
        (out / "training_log.json").write_text(json.dumps(history, indent=1))
        mode.plot(history, out / "loss.png")
        write_card(out, mode.card(run))
    return run.result


def last_checkpoint(out: Path) -> Path | None:
    """The newest ``OUT/checkpoints/checkpoint-N`` (transformers' ``get_last_checkpoint``), or None."""
    folder = Path(out) / "checkpoints"
    found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return Path(found) if found else None


def training_arguments(recipe: Recipe, out: Path, progress: bool = True) -> TrainingArguments:
    """TrainingArguments from the ``[train]`` section; checkpoints go to OUT/checkpoints."""
    tr = recipe.train
    return TrainingArguments(
        output_dir=str(Path(out) / "checkpoints"),
        max_steps=tr.max_steps,
        per_device_train_batch_size=tr.batch_size,
        learning_rate=tr.learning_rate,
        warmup_steps=tr.warmup_steps,
        weight_decay=tr.weight_decay,
        lr_scheduler_type=tr.lr_scheduler,
        max_grad_norm=tr.max_grad_norm,
        logging_steps=tr.logging_steps,
        save_steps=tr.save_steps,
        save_total_limit=tr.save_total_limit,
        seed=tr.seed,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
    )


class WallClock(TrainerCallback):
    """Training wall time summed over interrupted and resumed runs: each checkpoint records
    the total so far (``wall_seconds.json``, seconds), and a resumed run starts from it."""

    FILE = "wall_seconds.json"

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.t0 = before, time.time()

    @property
    def total(self) -> float:
        return self.before + time.time() - self.t0

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / self.FILE).write_text(json.dumps({"seconds": round(self.total, 1)}))

    @classmethod
    def resumed_from(cls, checkpoint: Path | None) -> float:
        f = checkpoint / cls.FILE if checkpoint else None
        return float(json.loads(f.read_text())["seconds"]) if f and f.exists() else 0.0
