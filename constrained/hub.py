"""Loading and saving denoisers: the shipped default models, local checkpoints, and hub
checkpoints of any masked LM. Safetensors only; ``trust_remote_code`` off unless asked."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from constrained.engine.denoiser import HFMaskedLMDenoiser
from constrained.engine.model import DenoiserConfig, DenoiserModel
from constrained.engine.noise import NoiseProcess, make_noise

from .checkpoint import load_pretrained, read_config
from .errors import ModelMismatch
from .task import Task
from .vocab import MASK, PAD, Vocab

MODELS_DIR = Path(__file__).resolve().parent / "models"


def default_model_path(task: Task) -> Path:
    if not task.default_model:
        raise ModelMismatch(f"task {task.name!r} ships no default model; pass model=PATH "
                            f"(train one with `constrained finetune {task.name}`)")
    path = MODELS_DIR / task.default_model
    if not any((path / f).exists() for f in ("config.json", "adapter_config.json")):  # model or adapter
        raise ModelMismatch(f"the default model for {task.name!r} is missing at {path}; "
                            f"train it with `constrained finetune {task.name} --out {path}`")
    return path


def check_compatible(config: DenoiserConfig, task: Task, where: str) -> None:
    """A checkpoint of another task's vocabulary or layout is refused with a clear error."""
    if config.vocab_tokens is not None and list(config.vocab_tokens) != list(task.vocab.tokens):
        raise ModelMismatch(
            f"model at {where} was trained for vocabulary {config.vocab_tokens} (task {config.task!r}); "
            f"task {task.name!r} uses {list(task.vocab.tokens)}")
    missing = set(config.coord_sizes) - set(task.layout.coords)
    if missing:
        raise ModelMismatch(f"model at {where} embeds coordinates {sorted(missing)} "
                            f"that task {task.name!r} does not lay out")
    for name, size in config.coord_sizes.items():
        if task.layout.coord_sizes[name] > size:
            raise ModelMismatch(f"coordinate {name!r} of task {task.name!r} has {task.layout.coord_sizes[name]} "
                                f"values; the model at {where} embeds {size}")


def token_map_from_tokenizer(vocab: Vocab, tokenizer) -> torch.Tensor:
    """Map a task vocabulary onto a hub tokenizer's ids ([PAD]/[MASK] to its pad/mask tokens).

    Content tokens must exist in the tokenizer (single letters for protein LMs such as ESM-2);
    context-only specials it lacks (``vocab.extra``) map to its unknown token."""
    ids = []
    for tok in vocab.tokens:
        if tok == PAD:
            i = tokenizer.pad_token_id
        elif tok == MASK:
            i = tokenizer.mask_token_id
        else:
            i = tokenizer.convert_tokens_to_ids(tok)
            if i is None or i == tokenizer.unk_token_id:
                if tok in vocab.extra and tokenizer.unk_token_id is not None:
                    i = tokenizer.unk_token_id  # a context-only special (a label) the model has no token for
                else:
                    raise ModelMismatch(f"task token {tok!r} is not in the model's tokenizer")
        if i is None:
            raise ModelMismatch(f"the model's tokenizer has no token for {tok}")
        ids.append(int(i))
    return torch.tensor(ids)


def load_denoiser(task: Task, model: str | Path | nn.Module = "default", *, noise: str | None = None,
                  trust_remote_code: bool = False) -> tuple[nn.Module, NoiseProcess]:
    """(denoiser, noise process) for ``task``.

    model: ``"default"`` (the shipped model), a local directory written by ``save_pretrained``
    (a LoRA adapter directory is loaded onto its base), a hub id of any masked LM, or a module.
    """
    mask_id = task.vocab.mask_id
    if isinstance(model, nn.Module):
        cfg = getattr(model, "config", None)
        return model, make_noise(noise or getattr(cfg, "noise", "mask"), mask_id)
    path = default_model_path(task) if model == "default" else Path(model)
    if path.is_dir():
        if (path / "adapter_config.json").exists():
            from constrained.finetune.lora import load_adapter  # noqa: PLC0415 (peft only when needed)

            m = load_adapter(path, task)
            return m, make_noise(noise or m.config.noise, mask_id)
        model_type = read_config(path).get("model_type")
        cls = None
        if model_type == DenoiserConfig.model_type:
            cls = DenoiserModel
        elif model_type == "constrained-graph-denoiser":  # reads the adjacency (graph colouring)
            from constrained.engine.graph import GraphDenoiser as cls  # noqa: PLC0415, N813
        elif model_type == "constrained-psm-denoiser":  # a block-diffusion LM reading a PSM prompt
            from constrained.engine.infill import PSMDenoiser as cls  # noqa: PLC0415, N813
        if cls is not None:
            m = load_pretrained(cls, path)  # safetensors only; a file that does not fit is ModelMismatch
            check_compatible(m.config, task, str(path))
            return m.eval(), make_noise(noise or m.config.noise, mask_id)
    elif isinstance(model, Path) or str(model).startswith((".", "/", "~")) or str(model).count("/") > 1 \
            or path.exists():
        raise ModelMismatch(f"model path {model} does not exist or is not a directory")
    # any transformers masked LM, local or hub
    from safetensors import SafetensorError
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        base = AutoModelForMaskedLM.from_pretrained(str(path), trust_remote_code=trust_remote_code,
                                                    use_safetensors=True)
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise ModelMismatch(f"could not load model {str(model)!r} as a masked LM: {e}") from None
    wrapped = HFMaskedLMDenoiser(base, token_map_from_tokenizer(task.vocab, tok))
    return wrapped.eval(), make_noise(noise or "mask", mask_id)
