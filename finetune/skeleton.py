"""Pieces the LoRA and reward modes share: Trainer arguments from a recipe, the machine's description."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments


def training_arguments(recipe: dict[str, Any], out: Path, progress: bool = True) -> TrainingArguments:
    """TrainingArguments from the ``[train]`` section; checkpoints go to OUT/checkpoints."""
    tr = recipe["train"]
    return TrainingArguments(
        output_dir=str(Path(out) / "checkpoints"),
        max_steps=tr["max_steps"],
        per_device_train_batch_size=tr["batch_size"],
        learning_rate=tr["learning_rate"],
        warmup_steps=tr["warmup_steps"],
        weight_decay=tr["weight_decay"],
        lr_scheduler_type=tr["lr_scheduler"],
        max_grad_norm=tr["max_grad_norm"],
        logging_steps=tr["logging_steps"],
        save_steps=tr["save_steps"],
        save_total_limit=tr["save_total_limit"],
        seed=tr["seed"],
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
    )


def machine_description() -> str:
    return (f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
            f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}, "
            f"torch {torch.__version__}")


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
