"""``constrained finetune TASK`` (``--mode full``): build a denoiser from the ``[model]`` section
(or continue from ``--init``), train all its weights on the task's endless example stream with
the diffusion loss, and save the full model. The chain around these steps is skeleton.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from constrained.engine.denoiser import reads_domains
from constrained.engine.model import DenoiserConfig, DenoiserModel
from constrained.engine.noise import NoiseProcess, make_noise
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from constrained.errors import ConfigError
from constrained.task import Task

from .cards import CardText, machine_description
from .data import DiffusionCollator, TaskStream
from .diffusion_trainer import DiffusionTrainer
from .evaluation import held_out_description
from .recipes import Recipe
from .skeleton import Mode, Run, train


def diffusion_trainer(run: Run, args: TrainingArguments, callbacks: list[TrainerCallback]) -> DiffusionTrainer:
    """The Trainer of the full and LoRA modes: the task's example stream, noised by the collator
    (each rank its own seed), under the diffusion loss."""
    tr = run.recipe.train
    return DiffusionTrainer(
        model=run.model, args=args,
        train_dataset=TaskStream(run.task, seed=tr.seed, rank=run.rank),
        data_collator=DiffusionCollator(run.task, run.noise, seed=tr.seed + run.rank,
                                        domains=reads_domains(run.model), context_noise=tr.context_noise),
        noise=run.noise, callbacks=callbacks)


class FullMode(Mode):
    name = "full"

    def prepare(self, run: Run) -> tuple[nn.Module, NoiseProcess]:
        tr = run.recipe.train
        model = build_model(run.task, run.recipe, run.init)
        if run.init and model.config.noise != tr.noise:
            model.config.noise = tr.noise
        return model, make_noise(tr.noise, run.task.vocab.mask_id)

    def trainer(self, run: Run, args: TrainingArguments, callbacks: list[TrainerCallback]) -> Trainer:
        return diffusion_trainer(run, args, callbacks)

    def card(self, run: Run) -> CardText:
        task, recipe, init = run.task, run.recipe, run.init
        m, tr = recipe.model, recipe.train
        n_params = sum(p.numel() for p in run.model.parameters())
        start = f"`{init}`" if init else "scratch"
        if m.arch == "psm-block":
            unused = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "dropout",
                      "max_position_embeddings", "domain_input")
            what = (f"A block-diffusion denoiser ({n_params / 1e6:.2f} M parameters, the Llama architecture of "
                    f"its starting model) for the `{task.name}` task of `constrained`: it reads the context as a "
                    "prefix-suffix-middle prompt, causally, and denoises the canvas after it bidirectionally "
                    "(`constrained.engine.infill.PSMDenoiser`); trained from "
                    + (f"`{init}`" if init else f"the weights of the AR model `{m.init_from_ar}`")
                    + f" with {tr.noise} noise.")
        elif m.arch == "graph":  # GraphDenoiser's own sizes; it always reads domains
            unused = ("intermediate_size", "dropout", "max_position_embeddings", "domain_input", "init_from_ar")
            what = (f"A graph denoiser ({n_params / 1e6:.2f} M parameters; `constrained.engine.graph.GraphDenoiser`)"
                    f" for the `{task.name}` task of `constrained`: attention masked by the graph's adjacency plus "
                    f"{m.num_global} global positions over the nodes, and a colour-symmetric "
                    "value stream (one vector per node and colour, weights shared across colours); the graph "
                    f"never enters as tokens. Trained from {start} with {tr.noise} noise.")
        else:
            unused = ("value_hidden_size", "num_global")
            what = (f"A bidirectional transformer denoiser ({n_params / 1e6:.2f} M parameters) for the "
                    f"`{task.name}` task of `constrained`, trained from {start} with {tr.noise} noise.")
        settings = [f"model.{k}={v}" for k, v in m.items() if k not in unused] + \
                   [f"train.{k}={v}" for k, v in tr.items()]
        data = task.data_card or (f"generated on the fly by `{type(task).__name__}.training_example` "
                                  "(see tasks/); nothing downloaded")
        return CardText(
            title=f"{task.name} denoiser", intro=[what],
            trained=[f"command: `constrained finetune {task.name}" + (f" --init {init}" if init else "")
                     + f" --out {run.out}` (recipe `finetune/recipes/{task.name}.toml`)",
                     f"data: {data}",
                     f"steps: {tr.max_steps}, batch {tr.batch_size}, lr {tr.learning_rate}, {tr.lr_scheduler} schedule",
                     f"wall time: {run.wall / 60:.1f} min on {machine_description()}",
                     f"full settings: {', '.join(settings)}"],
            scores=["| setting | solve rate | mean passes |", "|---|---|---|",
                    *(f"| {name.replace('_', ' ')} | {run.scores[f'{name}_solve_rate']:.1%} | "
                      f"{run.scores[f'{name}_mean_passes']:.1f} |"
                      for name in ("model_only", "full") if f"{name}_solve_rate" in run.scores)],
            held_out=held_out_description(recipe), size=recipe.eval.size, tags=[task.name])


def finetune(task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
             overrides: list[str] | None = None, init: str | None = None, resume: bool = True,
             progress: bool = True) -> dict[str, Any]:
    """Full training (from scratch, or continuing from ``init``); see ``skeleton.train``."""
    return train(FullMode(), task_name, out, recipe_path, overrides, init, resume, progress)


def build_model(task: Task, recipe: Recipe, init: str | None = None) -> torch.nn.Module:
    """The denoiser ``recipe.model`` describes for ``task`` (or the one saved at ``init``, which
    must fit the task). Raises ConfigError for sizes that do not fit or a non-denoiser ``init``."""
    if init:
        from constrained.engine.graph import GraphDenoiser
        from constrained.engine.infill import PSMDenoiser

        from constrained.loading import check_compatible, load_denoiser

        model, _ = load_denoiser(task, init)
        if not isinstance(model, (DenoiserModel, PSMDenoiser, GraphDenoiser)):
            raise ConfigError(f"--init {init}: not a denoiser saved by `constrained finetune` (a "
                              f"{type(model).__name__}); to fine-tune a hub model use --mode lora")
        check_compatible(model.config, task, init)
        return model.train()
    m, noise = recipe.model, recipe.train.noise
    if m.arch == "psm-block":
        from constrained.engine.infill import psm_denoiser_from_ar

        return psm_denoiser_from_ar(_resolve(m.init_from_ar), task, task.layout.length, noise=noise)
    if m.hidden_size % m.num_attention_heads:
        raise ConfigError(f"model.hidden_size {m.hidden_size} is not divisible by "
                          f"model.num_attention_heads {m.num_attention_heads}")
    if m.arch == "graph":
        from constrained.engine.graph import GraphDenoiser, GraphDenoiserConfig

        return GraphDenoiser(GraphDenoiserConfig(
            vocab_size=len(task.vocab), value_offset=getattr(task, "value_offset", 2),
            num_values=len(task.vocab.content), hidden_size=m.hidden_size, value_hidden_size=m.value_hidden_size,
            num_hidden_layers=m.num_hidden_layers, num_attention_heads=m.num_attention_heads,
            num_global=m.num_global, noise=noise, task=task.name, vocab_tokens=list(task.vocab.tokens),
            canvas_length=task.layout.length))
    return DenoiserModel(DenoiserConfig(
        vocab_size=len(task.vocab), hidden_size=m.hidden_size, num_hidden_layers=m.num_hidden_layers,
        num_attention_heads=m.num_attention_heads, intermediate_size=m.intermediate_size,
        max_position_embeddings=m.max_position_embeddings, dropout=m.dropout, domain_input=m.domain_input,
        coord_sizes=dict(task.layout.coord_sizes), noise=noise, task=task.name,
        vocab_tokens=list(task.vocab.tokens), canvas_length=task.layout.length))


def _resolve(path: str) -> str:
    """A relative model path from the current directory, else from the project root
    (recipes name shipped models as ``constrained/models/NAME``)."""
    here = Path(path)
    if here.exists() or here.is_absolute():
        return str(here)
    root = Path(__file__).resolve().parent.parent / path
    return str(root) if root.exists() else str(here)
