"""LoRA fine-tuning with peft: adapt a base denoiser to a task by training low-rank updates
of its attention and feed-forward projections, and save only the adapter.

An adapter folder holds peft's ``adapter_config.json`` + ``adapter_model.safetensors``, a
``constrained_adapter.json`` naming its base (and a fingerprint of the base's weights, so an
adapter is never put on weights it was not trained for), and a model card. ``load_adapter``
(used by ``constrained.hub.load_denoiser``) loads the base, checks the fingerprint, applies
the adapter and merges it, so solving with an adapter costs the same as with a full model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import SafetensorError
from torch import nn

from constrained.checkpoint import require_safetensors
from constrained.errors import ConfigError, ModelMismatch
from constrained.task import Task

ADAPTER_META = "constrained_adapter.json"

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


@dataclass
class LoraSettings:
    """The ``[lora]`` recipe section, resolved."""

    rank: int = 8
    alpha: float = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=list)  # empty: per architecture
    modules_to_save: list[str] = field(default_factory=list)

    @classmethod
    def from_recipe(cls, section: dict[str, Any]) -> LoraSettings:
        from .recipes import name_list

        return cls(rank=int(section["rank"]), alpha=float(section["alpha"]),
                   dropout=float(section["dropout"]), target_modules=name_list(section["target_modules"]),
                   modules_to_save=name_list(section["modules_to_save"]))


def model_type(model: nn.Module) -> str:
    cfg = getattr(model, "config", None)
    return str(getattr(cfg, "model_type", "") or type(model).__name__)


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


def fingerprint(model: nn.Module) -> str:
    """A cheap identity of a model's weights: names, shapes, dtypes and a strided sample of
    every tensor (so it stays fast on multi-GB checkpoints and identical across machines)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if "lora_" in name:
            continue
        t = t.detach()
        flat = t.reshape(-1)
        step = max(1, flat.numel() // 1024)
        sample = flat[::step][:1024].to("cpu", torch.float32).contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(sample.numpy().tobytes())
    return h.hexdigest()[:32]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


# ---------------------------------------------------------------------------------------------
# bases
# ---------------------------------------------------------------------------------------------
def resolve_base(task: Task, base: str | Path) -> Path | str:
    """``default`` (the task's shipped model), ``task:NAME`` (task NAME's shipped model), a
    local directory, or a hub id (returned as a string)."""
    from constrained.loading import MODELS_DIR, default_model_path
    from constrained.registry import load_task

    base = str(base)
    if base == "default":
        return default_model_path(task)
    if base.startswith("task:"):
        return default_model_path(load_task(base[5:]))
    if base.startswith("shipped:"):
        return MODELS_DIR / base[8:]
    p = Path(base)
    if p.exists():
        return p.resolve()
    if p.suffix or base.startswith((".", "/")) or base.count("/") > 1:
        raise ModelMismatch(f"base model {base} does not exist")
    return base  # a hub id


def base_reference(path: Path | str) -> str:
    """How an adapter names its base: ``shipped:NAME`` for a model shipped in the package (so the
    reference survives installation elsewhere), else the path or hub id as given."""
    from constrained.loading import MODELS_DIR

    if isinstance(path, Path):
        try:
            return "shipped:" + str(path.resolve().relative_to(MODELS_DIR.resolve()))
        except ValueError:
            return str(path.resolve())
    return path


def load_base(task: Task, base: str | Path, trust_remote_code: bool = False) -> tuple[nn.Module, str, str]:
    """(base denoiser in train-ready form, its reference, its noise name). The base must fit the
    task's vocabulary and layout (checked by hub.load_denoiser); an adapter is refused as a base."""
    from constrained.loading import load_denoiser

    path = resolve_base(task, base)
    if isinstance(path, Path) and (path / "adapter_config.json").exists():
        meta = read_meta(path)
        raise ModelMismatch(f"base {path} is a LoRA adapter (for base {meta.get('base', '?')}), not a full "
                            "model; pass its base, or a model merged with `--merge`")
    model, noise = load_denoiser(task, path, trust_remote_code=trust_remote_code)
    return model, base_reference(path), noise.name


# ---------------------------------------------------------------------------------------------
# adapters on disk
# ---------------------------------------------------------------------------------------------
def read_meta(path: str | Path) -> dict[str, Any]:
    f = Path(path) / ADAPTER_META
    return json.loads(f.read_text()) if f.exists() else {}


def write_meta(path: Path, task: Task, base_ref: str, base_fp: str, noise: str, settings: LoraSettings,
               targets: list[str], extra: dict[str, Any] | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    meta = {"task": task.name, "base": base_ref, "base_fingerprint": base_fp, "noise": noise,
            "vocab_tokens": list(task.vocab.tokens), "lora": {**asdict(settings), "target_modules": targets},
            **(extra or {})}
    (path / ADAPTER_META).write_text(json.dumps(meta, indent=1) + "\n")


def check_adapter_base(adapter: str | Path, base_fp: str, base_ref: str) -> None:
    """An adapter trained on other weights is refused, naming both."""
    meta = read_meta(adapter)
    if meta.get("base_fingerprint") and meta["base_fingerprint"] != base_fp:
        raise ModelMismatch(
            f"adapter at {adapter} was trained on base {meta.get('base', '?')} (weights fingerprint "
            f"{meta['base_fingerprint']}); the base given, {base_ref}, has fingerprint {base_fp}: "
            "it is an adapter for another base")


def apply_adapter(base: nn.Module, adapter: str | Path, *, trainable: bool = False,
                  check: bool = True) -> PeftModel:
    """Put the adapter at ``adapter`` on ``base`` (any nn.Module the adapter was trained on)."""
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").exists():
        raise ModelMismatch(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    weights = require_safetensors(adapter, "adapter_model")  # never peft's torch.load of adapter_model.bin
    if check:
        check_adapter_base(adapter, fingerprint(base), type(base).__name__)
    try:
        return PeftModel.from_pretrained(base, str(adapter), is_trainable=trainable, use_safetensors=True)
    except (KeyError, RuntimeError, ValueError, OSError, SafetensorError) as e:
        raise ModelMismatch(f"{weights}: the adapter does not fit this {model_type(base)} base or cannot "
                            f"be read: {str(e).strip().splitlines()[0][:300] if str(e).strip() else e!r}") from None


def load_adapter(path: str | Path, task: Task, base: str | Path | None = None,
                 trust_remote_code: bool = False) -> nn.Module:
    """The base named by the adapter (or ``base``) with the adapter applied and merged, in eval mode.

    Raises ModelMismatch when the adapter was made for another task's vocabulary or for
    other base weights.
    """
    path = Path(path)
    meta = read_meta(path)
    if meta.get("vocab_tokens") and list(meta["vocab_tokens"]) != list(task.vocab.tokens):
        raise ModelMismatch(f"adapter at {path} was trained for task {meta.get('task')!r} with vocabulary "
                            f"{meta['vocab_tokens']}; task {task.name!r} uses {list(task.vocab.tokens)}")
    ref = base or meta.get("base")
    if ref is None:
        cfg = json.loads((path / "adapter_config.json").read_text())
        ref = cfg.get("base_model_name_or_path")
    if not ref:
        raise ModelMismatch(f"adapter at {path} does not name its base; pass base=")
    model, ref_str, noise = load_base(task, ref, trust_remote_code=trust_remote_code)
    check_adapter_base(path, fingerprint(model), ref_str)
    merged = apply_adapter(model, path, check=False).merge_and_unload()
    cfg = getattr(merged, "config", None)
    if cfg is not None and not hasattr(cfg, "noise"):
        cfg.noise = meta.get("noise", noise)  # hub bases carry no noise name; the adapter records it
    return merged.eval()


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
        import shutil

        for f in base_dir.iterdir():
            if f.is_file() and (f.name.startswith(("tokenizer", "special_tokens_map", "vocab", "merges"))
                                or f.name == "added_tokens.json"):
                shutil.copy2(f, out / f.name)
    return out


def folder_bytes(path: Path, pattern: str = "*.safetensors") -> int:
    return sum(f.stat().st_size for f in Path(path).glob(pattern))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def finetune_lora(task_name: str, out: str | Path | None = None, recipe_path: str | None = None,
                  overrides: list[str] | None = None, base: str | None = None, init: str | None = None,
                  merge: bool = False, resume: bool = True, progress: bool = True,
                  trust_remote_code: bool = False) -> dict[str, Any]:
    """Train a LoRA adapter for ``task_name`` on ``base``; save only the adapter (and, with
    ``merge``, a merged full model in OUT/merged). ``init``: continue from an existing adapter.
    ``trust_remote_code``: allow a base that ships its own code (LLaDA, Dream). Every check
    (recipe keys, base vocabulary, adapter/base fit) runs before training."""
    from constrained.engine.denoiser import reads_domains
    from constrained.engine.noise import make_noise

    from constrained.registry import load_task

    from .data import DiffusionCollator, TaskStream
    from .recipes import load_recipe
    from .run import ValidatorEval, _last_checkpoint, evaluate, plot_loss
    from .trainer import DiffusionTrainer
    from .training import final_scores, training_arguments

    recipe = load_recipe(task_name, recipe_path, overrides, mode="lora")
    task = load_task(task_name, **recipe["task"])
    tr, ev = recipe["train"], recipe["eval"]
    settings = LoraSettings.from_recipe(recipe["lora"])
    out = Path(out or f"runs/{task_name}-lora")
    torch.manual_seed(tr["seed"])

    base_model, base_ref, base_noise = load_base(task, base or recipe["lora"]["base"], trust_remote_code)
    base_fp = fingerprint(base_model)
    if init:
        check_adapter_base(init, base_fp, base_ref)
    ck = out / "checkpoints"
    last = _last_checkpoint(ck) if resume else None
    if last is not None:
        check_adapter_base(out, base_fp, base_ref)  # resuming an adapter of another base: refuse
    if init:
        targets = read_meta(init).get("lora", {}).get("target_modules") or []
        model = apply_adapter(base_model, init, trainable=True, check=False)
    else:
        targets = resolve_targets(base_model, settings)
        model = apply_lora(base_model, settings)
    noise = make_noise(base_noise, task.vocab.mask_id)
    if base_noise != tr["noise"] and any(o.startswith("train.noise=") for o in overrides or []):
        raise ConfigError(f"train.noise={tr['noise']} differs from the base's {base_noise} noise; "
                          "a LoRA adapter keeps its base's noise process")
    rank = int(os.environ.get("RANK", 0))
    if rank == 0:
        write_meta(out, task, base_ref, base_fp, noise.name, settings, targets)
    eval_kw = {k: v for k, v in ev.items() if k not in ("steps", "size", "options")}
    held_out = [p for p, _ in task.generate(ev["size"], seed=10_000 + tr["seed"], **eval_kw)] \
        if ev["size"] else []
    trainable, total = count_parameters(model)
    if rank == 0:
        print(f"LoRA on {base_ref}: targets {targets}, rank {settings.rank}; "
              f"{trainable:,} trainable of {total:,} parameters", flush=True)

    args = training_arguments(recipe, out, progress)
    trainer = DiffusionTrainer(
        model=model, args=args,
        train_dataset=TaskStream(task, seed=tr["seed"], rank=rank),
        data_collator=DiffusionCollator(task, noise, seed=tr["seed"] + rank, domains=reads_domains(model),
                                        context_noise=tr["context_noise"]),
        noise=noise,
        callbacks=[ValidatorEval(task, noise, held_out, ev["steps"], ev["options"])],
    )
    if last is not None and rank == 0:
        print(f"resuming from {last}", flush=True)
    before = evaluate(task, model, noise, held_out, **ev["options"]) \
        if held_out and rank == 0 and not last else {}
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    wall = time.time() - t0
    scores = final_scores(trainer, lambda: evaluate(task, model, noise, held_out, **ev["options"])) \
        if held_out else {}
    result: dict[str, Any] = {"scores": scores, "scores_base": before, "wall_seconds": wall, "out": str(out),
                              "trainable_parameters": trainable, "base_parameters": total - trainable,
                              "world_size": trainer.args.world_size, "steps": trainer.state.global_step}
    if trainer.is_world_process_zero():
        model.save_pretrained(out, safe_serialization=True)
        write_meta(out, task, base_ref, base_fp, noise.name, settings, targets,
                   {"eval_size": len(held_out), "steps": trainer.state.global_step})
        history = trainer.state.log_history
        (out / "training_log.json").write_text(json.dumps(history, indent=1))
        plot_loss(history, out / "loss.png")
        result["adapter_bytes"] = folder_bytes(out, "adapter_model.safetensors")
        base_dir = resolve_base(task, base_ref)
        result["base_bytes"] = folder_bytes(base_dir) if isinstance(base_dir, Path) else None
        write_adapter_card(out, task, recipe, base_ref, targets, settings, result, scores, before, wall,
                           overrides or [])
        if merge:
            merged_dir = save_merged(model, out / "merged", resolve_base(task, base_ref))
            result["merged"] = str(merged_dir)
    return result


def write_adapter_card(out: Path, task: Task, recipe: dict[str, Any], base_ref: str, targets: list[str],
                       settings: LoraSettings, result: dict[str, Any], scores: dict[str, float],
                       before: dict[str, float], wall: float, overrides: list[str] | None = None) -> None:
    from .training import machine_description, scores_table

    tr, ev = recipe["train"], recipe["eval"]
    eval_kw = {k: v for k, v in ev.items() if k not in ("steps", "size", "options")}
    size = result.get("adapter_bytes") or 0
    n_train, n_base = result["trainable_parameters"], result["base_parameters"]
    where = ", ".join(f"{k}={v}" for k, v in eval_kw.items()) or "default generator"
    base_bytes = result.get("base_bytes")
    lines = [
        f"# {task.name} LoRA adapter",
        "",
        f"A LoRA adapter (peft) for the `{task.name}` task of `constrained`, on the base `{base_ref}`. "
        f"It trains {n_train:,} parameters ({n_train / max(n_base, 1):.1%} "
        f"of the base's {n_base:,}); the base stays frozen.",
        "",
        f"Load it like any model: `constrained solve {task.name} PUZZLE --model {out}` "
        "(the base is loaded, its weights fingerprint checked, and the adapter merged).",
        "",
        "## How it was trained",
        "",
        f"- command: `constrained finetune {task.name} --mode lora --out {out}"
        + "".join(f" --set {o}" for o in overrides or []) + "` "
        f"(recipe `finetune/recipes/{task.name}.lora.toml` if present, else `{task.name}.toml`)",
        f"- LoRA: rank {settings.rank}, alpha {settings.alpha:g}, dropout {settings.dropout:g}, "
        f"targets {', '.join(targets)}" + (f", also trained: {', '.join(settings.modules_to_save)}"
                                          if settings.modules_to_save else ""),
        f"- data: generated on the fly by `{type(task).__name__}.training_example`; nothing downloaded",
        f"- steps: {tr['max_steps']}, batch {tr['batch_size']}, lr {tr['learning_rate']}, "
        f"{tr['lr_scheduler']} schedule",
        f"- wall time: {wall / 60:.1f} min on {machine_description()}",
        f"- adapter size: {size / 1e3:.0f} kB"
        + (f" ({size / base_bytes:.1%} of the base's {base_bytes / 1e6:.2f} MB)" if base_bytes else ""),
        "",
        "## Scores",
        "",
        f"Verified solve rate on {ev['size']} held-out generated problems "
        f"({where}; seed {10_000 + tr['seed']}):",
        "",
        *scores_table([("base", before), ("base + adapter", scores)]),
    ]
    lines += ["", "Larger evaluations are in BENCHMARKS.md.", ""]
    (out / "README.md").write_text("\n".join(lines))
