"""LoRA fine-tuning with peft (``constrained finetune TASK --mode lora``): adapt a base denoiser
to a task by training low-rank updates of its attention and feed-forward projections, and save
only the adapter. The chain around these steps is skeleton.py's.

An adapter folder holds peft's ``adapter_config.json`` + ``adapter_model.safetensors``, a
``constrained_adapter.json`` naming its base (and a fingerprint of the base's weights, so an
adapter is never put on weights it was not trained for), and a model card. Loading an adapter
(``load_adapter``, used by ``constrained.loading.load_denoiser``) is ``constrained/adapters.py``'s.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from constrained.engine.noise import NoiseProcess, make_noise
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from constrained.adapters import (
    ADAPTER_META,
    apply_adapter,
    check_adapter_base,
    fingerprint,
    load_adapter,
    load_base,
    model_type,
    read_meta,
    resolve_base,
)
from constrained.errors import ConfigError
from constrained.task import Task

from .cards import CardText, machine_description
from .evaluation import held_out_description, scores_table
from .full import diffusion_trainer
from .recipes import LoraSettings
from .skeleton import Mode, Run, train

__all__ = ["ADAPTER_META", "ARCH_TARGETS", "LoraSettings", "apply_adapter", "apply_lora", "default_target_modules",
           "finetune_lora", "fingerprint", "load_adapter", "resolve_targets", "save_merged", "write_meta"]

#: LoRA targets per ``config.model_type``: names of the nn.Linear layers (matched as suffixes)
ARCH_TARGETS: dict[str, list[str]] = {
    # the project's DenoiserModel: a BertModel inside (attention query/key/value, attention
    # output, intermediate and output projections are all named so)
    "constrained-denoiser": ["query", "key", "value", "dense"],
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "esm": ["query", "key", "value", "dense"],
    "modernbert": ["Wqkv", "Wo", "Wi"],
    # attention projections of the encoder and decoder stacks; the MoE experts are packed
    # parameters, not nn.Linear, and stay frozen
    "diffusion_gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def default_target_modules(model: nn.Module) -> list[str]:
    """LoRA targets for ``model`` by architecture; each must name at least one nn.Linear."""
    kind = model_type(model)
    names = _linear_names(model)
    wanted = ARCH_TARGETS.get(kind)
    if wanted is None:  # unknown architecture: the usual attention names, if present
        for guess in (["q_proj", "k_proj", "v_proj", "o_proj"], ["query", "key", "value", "dense"]):
            if all(any(n.split(".")[-1] == g for n in names) for g in guess[:3]):
                wanted = guess
                break
    if wanted is None:
        ends = sorted({n.split(".")[-1] for n in names})[:12]
        raise ConfigError(f"no default LoRA targets for architecture {kind!r}; set lora.target_modules "
                          f"to some of its linear layers, e.g. {ends}")
    present = [w for w in wanted if any(n.split(".")[-1] == w for n in names)]
    if not present:
        raise ConfigError(f"architecture {kind!r}: none of the default LoRA targets {wanted} is a linear "
                          "layer of this model; set lora.target_modules")
    return present


def resolve_targets(model: nn.Module, settings: LoraSettings) -> list[str]:
    """The target names (suffixes) for ``model``: the recipe's, or the architecture's defaults."""
    targets = settings.target_modules or default_target_modules(model)
    names = _linear_names(model)
    for t in targets:
        if not any(n == t or n.endswith("." + t) for n in names):
            ends = sorted({n.split(".")[-1] for n in names})[:12]
            raise ConfigError(f"lora.target_modules: {t!r} names no linear layer of this {model_type(model)} "
                              f"model; its linear layers end in {ends}")
    return targets


def apply_lora(model: nn.Module, settings: LoraSettings) -> PeftModel:
    """Wrap ``model`` (any denoiser) with fresh LoRA layers; only they (and modules_to_save) train.

    Targets are resolved to the full names of the nn.Linear layers they end in, so a module of
    the same name that is not a plain linear layer (DiffusionGemma's vision tower wraps its
    projections) is left alone.
    """
    targets = resolve_targets(model, settings)
    full = [n for n in _linear_names(model) if any(n == t or n.endswith("." + t) for t in targets)]
    cfg = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                     target_modules=full, modules_to_save=settings.modules_to_save or None, bias="none")
    return get_peft_model(model, cfg)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def write_meta(path: Path, task: Task, base_ref: str, base_fp: str, noise: str, settings: LoraSettings,
               targets: list[str], extra: dict[str, Any] | None = None) -> None:
    """OUT/constrained_adapter.json: the base, its fingerprint, the task's vocabulary, the noise
    and the LoRA settings (``base`` is recorded once, at the top)."""
    path.mkdir(parents=True, exist_ok=True)
    lora = {k: v for k, v in asdict(settings).items() if k != "base"}
    meta = {"task": task.name, "base": base_ref, "base_fingerprint": base_fp, "noise": noise,
            "vocab_tokens": list(task.vocab.tokens), "lora": {**lora, "target_modules": targets},
            **(extra or {})}
    (path / ADAPTER_META).write_text(json.dumps(meta, indent=1) + "\n")


def save_merged(model: PeftModel, out: Path, base_dir: Path | str | None = None) -> Path:
    """Merge the adapter into a copy-free base and save the full model with ``save_pretrained``.
    A hub-style base's tokenizer files (in ``base_dir``) are copied along, so the merged folder
    loads by path like its base."""
    merged = model.merge_and_unload()
    inner = merged.model if hasattr(merged, "token_map") else merged  # a hub-model adapter -> its LM
    if not hasattr(inner, "save_pretrained"):
        raise ConfigError(f"cannot save a merged {type(merged).__name__}: it has no save_pretrained")
    out.mkdir(parents=True, exist_ok=True)
    inner.save_pretrained(out, safe_serialization=True)
    if hasattr(merged, "token_map") and isinstance(base_dir, Path):
        for f in base_dir.iterdir():
            if f.is_file() and (f.name.startswith(("tokenizer", "special_tokens_map", "vocab", "merges"))
                                or f.name == "added_tokens.json"):
                shutil.copy2(f, out / f.name)
    return out


def folder_bytes(path: Path, pattern: str = "*.safetensors") -> int:
    return sum(f.stat().st_size for f in Path(path).glob(pattern))


# ---------------------------------------------------------------------------------------------
# the mode
# ---------------------------------------------------------------------------------------------
class LoraMode(Mode):
    """Train a LoRA adapter on ``base`` (``--base``, else ``lora.base``); ``init``: continue from an
    existing adapter; ``merge``: also write the merged full model to OUT/merged;
    ``trust_remote_code``: allow a base that ships its own code (LLaDA, Dream)."""

    name, out_suffix, before_key = "lora", "-lora", "scores_base"

    def __init__(self, base: str | None = None, merge: bool = False, trust_remote_code: bool = False) -> None:
        self.base, self.merge, self.trust_remote_code = base, merge, trust_remote_code

    def prepare(self, run: Run) -> tuple[nn.Module, NoiseProcess]:
        task, settings, tr = run.task, run.recipe.lora, run.recipe.train
        base_model, self.base_ref, base_noise = load_base(task, self.base or settings.base, self.trust_remote_code)
        self.base_fp = fingerprint(base_model)
        if run.init:
            check_adapter_base(run.init, self.base_fp, self.base_ref)
        if run.last is not None:
            check_adapter_base(run.out, self.base_fp, self.base_ref)  # resuming an adapter of another base: refuse
        if run.init:
            self.targets = read_meta(run.init).get("lora", {}).get("target_modules") or []
            model = apply_adapter(base_model, run.init, trainable=True, check=False)
        else:
            self.targets = resolve_targets(base_model, settings)
            model = apply_lora(base_model, settings)
        if base_noise != tr.noise and any(o.startswith("train.noise=") for o in run.overrides):
            raise ConfigError(f"train.noise={tr.noise} differs from the base's {base_noise} noise; "
                              "a LoRA adapter keeps its base's noise process")
        trainable, total = count_parameters(model)
        run.result.update(trainable_parameters=trainable, base_parameters=total - trainable)
        if run.rank == 0:
            write_meta(run.out, task, self.base_ref, self.base_fp, base_noise, settings, self.targets)
            print(f"LoRA on {self.base_ref}: targets {self.targets}, rank {settings.rank}; "
                  f"{trainable:,} trainable of {total:,} parameters", flush=True)
        return model, make_noise(base_noise, task.vocab.mask_id)

    def trainer(self, run: Run, args: TrainingArguments, callbacks: list[TrainerCallback]) -> Trainer:
        return diffusion_trainer(run, args, callbacks)

    def save(self, run: Run) -> None:
        out, r = run.out, run.result
        run.model.save_pretrained(out, safe_serialization=True)
        write_meta(out, run.task, self.base_ref, self.base_fp, run.noise.name, run.recipe.lora, self.targets,
                   {"eval_size": len(run.held_out), "steps": r["steps"]})
        base_dir = resolve_base(run.task, self.base_ref)
        r.update(adapter_bytes=folder_bytes(out, "adapter_model.safetensors"),
                 base_bytes=folder_bytes(base_dir) if isinstance(base_dir, Path) else None)
        if self.merge:
            r["merged"] = str(save_merged(run.model, out / "merged", base_dir))

    def card(self, run: Run) -> CardText:
        task, s, tr, r = run.task, run.recipe.lora, run.recipe.train, run.result
        size, base_bytes = r.get("adapter_bytes") or 0, r.get("base_bytes")
        n_train, n_base = r["trainable_parameters"], r["base_parameters"]
        return CardText(
            title=f"{task.name} LoRA adapter",
            intro=[f"A LoRA adapter (peft) for the `{task.name}` task of `constrained`, on the base `{self.base_ref}`. "
                   f"It trains {n_train:,} parameters ({n_train / max(n_base, 1):.1%} "
                   f"of the base's {n_base:,}); the base stays frozen.",
                   f"Load it like any model: `constrained solve {task.name} PUZZLE --model {run.out}` "
                   "(the base is loaded, its weights fingerprint checked, and the adapter merged)."],
            trained=[f"command: `constrained finetune {task.name} --mode lora --out {run.out}"
                     + "".join(f" --set {o}" for o in run.overrides) + "` "
                     f"(recipe `finetune/recipes/{task.name}.lora.toml` if present, else `{task.name}.toml`)",
                     f"LoRA: rank {s.rank}, alpha {s.alpha:g}, dropout {s.dropout:g}, targets {', '.join(self.targets)}"
                     + (f", also trained: {', '.join(s.modules_to_save)}" if s.modules_to_save else ""),
                     f"data: generated on the fly by `{type(task).__name__}.training_example`; nothing downloaded",
                     f"steps: {tr.max_steps}, batch {tr.batch_size}, lr {tr.learning_rate}, {tr.lr_scheduler} schedule",
                     f"wall time: {run.wall / 60:.1f} min on {machine_description()}",
                     f"adapter size: {size / 1e3:.0f} kB"
                     + (f" ({size / base_bytes:.1%} of the base's {base_bytes / 1e6:.2f} MB)" if base_bytes else "")],
            scores=scores_table([("base", run.before), ("base + adapter", run.scores)]),
            held_out=held_out_description(run.recipe), size=run.recipe.eval.size, tags=[task.name, "lora"],
            library_name="peft")


def finetune_lora(task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
                  overrides: list[str] | None = None, base: str | None = None, init: str | None = None,
                  merge: bool = False, resume: bool = True, progress: bool = True,
                  trust_remote_code: bool = False) -> dict[str, Any]:
    """Train a LoRA adapter for ``task_name`` on ``base``; save only the adapter (and, with
    ``merge``, a merged full model in OUT/merged). ``init``: continue from an existing adapter.
    Every check (recipe keys, base vocabulary, adapter/base fit) runs before training. The
    result adds ``scores_base``, ``trainable_parameters``, ``base_parameters``,
    ``adapter_bytes``, ``base_bytes`` and ``merged``."""
    return train(LoraMode(base, merge, trust_remote_code), task_name, out, recipe_path, overrides, init,
                 resume, progress)
