"""Loading denoisers: the shipped default models, local checkpoints and hub checkpoints,
dispatched on the checkpoint's config (:func:`checkpoint_kind`).

Kinds accepted (``ACCEPTED``):

- ``constrained``: the project's own models (``DenoiserModel``, ``PSMDenoiser``) and LoRA
  adapters of any kind (loaded onto their base);
- ``diffusion_gemma``: ``DiffusionGemmaForBlockDiffusion`` -> :class:`GemmaDenoiser`, uniform noise;
- ``masked-lm``: any transformers masked LM (BERT, ModernBERT, ESM-2, ...) -> ``HFMaskedLMDenoiser``;
- ``llada`` / ``dream``: bidirectional diffusion LMs -> :class:`DiffusionLMDenoiser` (Dream's logits
  shifted by one), mask noise. A config with ``model_type`` ``llada`` / ``Dream`` (or architectures
  ``LLaDAModelLM`` / ``DreamModel``) ships its own code and loads only with
  ``trust_remote_code=True``; a transformers causal LM whose config holds
  ``"constrained_kind": "llada" | "dream"`` (see ``engine/difflm.py``) loads with transformers'
  own class, no remote code.

The task's vocabulary maps onto the checkpoint's tokenizer by token string
(:func:`token_map_from_tokenizer`); a task token the tokenizer lacks is a ``ModelMismatch``.
Weights load from safetensors only (``constrained/checkpoint.py``): pickle files
(``pytorch_model.bin``) are refused by name.
``trust_remote_code`` is off unless the caller passes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from constrained.engine.denoiser import HFMaskedLMDenoiser
from constrained.engine.model import DenoiserConfig, DenoiserModel
from constrained.engine.noise import NoiseProcess, make_noise

from .checkpoint import load_pretrained, read_config
from .errors import ConfigError, ModelMismatch
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


#: every kind of checkpoint load_denoiser opens (named in the error for any other)
ACCEPTED = ("constrained", "diffusion_gemma", "masked-lm", "llada", "dream")
_REMOTE = {"llada": ("llada", "LLaDAModelLM"), "dream": ("dream", "DreamModel")}  # model_type, architecture


def checkpoint_kind(config: dict[str, Any]) -> tuple[str, bool]:
    """(kind, needs remote code) of a checkpoint from its raw ``config.json`` dict.

    Raises ModelMismatch naming the accepted kinds for any other checkpoint."""
    from constrained.engine.difflm import KIND_KEY, KINDS

    model_type = str(config.get("model_type") or "")
    archs = [str(a) for a in config.get("architectures") or []]
    if model_type in (DenoiserConfig.model_type, "constrained-psm-denoiser", "constrained-graph-denoiser"):
        return "constrained", False
    if model_type == "diffusion_gemma" or "DiffusionGemmaForBlockDiffusion" in archs:
        return "diffusion_gemma", False
    marked = config.get(KIND_KEY)
    if marked is not None:
        if marked not in KINDS:
            raise ModelMismatch(f"config.json has {KIND_KEY}={marked!r}; use one of {KINDS}")
        return str(marked), False
    for kind, (mt, arch) in _REMOTE.items():
        if model_type.lower() == mt or any(a.startswith(arch) for a in archs):
            return kind, True
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES or any(a.endswith("ForMaskedLM") for a in archs):
        return "masked-lm", False
    what = model_type or (archs[0] if archs else "no model_type")
    raise ModelMismatch(f"checkpoint of type {what!r} is none of the kinds this loader accepts: "
                        f"{', '.join(ACCEPTED)} (a causal LM becomes a diffusion LM only with "
                        f'"{KIND_KEY}": "llada" or "dream" in its config)')


def token_map_from_tokenizer(vocab: Vocab, tokenizer, mask_id: int | None = None,
                             pad_id: int | None = None) -> torch.Tensor:
    """[V_task] long: the checkpoint's id of each task token, found by token string.

    [PAD] / [MASK] go to ``pad_id`` / ``mask_id`` (default: the tokenizer's pad / mask token).
    A content token must be one token of the tokenizer (its string in the vocabulary, or text
    that encodes to exactly one id: digits, amino-acid letters, code tokens); context-only
    specials it lacks (``vocab.extra``) map to its unknown token (else its end-of-sequence token).
    Raises ModelMismatch naming the first task token the tokenizer lacks."""
    ids = []
    unk = tokenizer.unk_token_id
    for tok in vocab.tokens:
        if tok == PAD:
            i = tokenizer.pad_token_id if pad_id is None else pad_id
        elif tok == MASK:
            i = tokenizer.mask_token_id if mask_id is None else mask_id
        else:
            i = _single_id(tokenizer, tok)
            if i is None:
                fallback = unk if unk is not None else tokenizer.eos_token_id
                if tok in vocab.extra and fallback is not None:
                    i = fallback  # a context-only special (a label) the model has no token for
                else:
                    raise ModelMismatch(f"task token {tok!r} is not in the model's tokenizer "
                                        f"({type(tokenizer).__name__} of {len(tokenizer)} tokens)")
        if i is None:
            raise ModelMismatch(f"the model's tokenizer has no token for {tok}")
        ids.append(int(i))
    return torch.tensor(ids)


def _single_id(tokenizer, tok: str) -> int | None:
    i = tokenizer.convert_tokens_to_ids(tok)
    if i is not None and i != tokenizer.unk_token_id:
        return int(i)
    enc = tokenizer.encode(tok, add_special_tokens=False)
    if len(enc) == 1 and enc[0] != tokenizer.unk_token_id:
        return int(enc[0])
    return None


def load_denoiser(task: Task, model: str | Path | nn.Module = "default", *, noise: str | None = None,
                  trust_remote_code: bool = False, **load_kwargs: Any) -> tuple[nn.Module, NoiseProcess]:
    """(denoiser, noise process) for ``task``.

    model: ``"default"`` (the shipped model), a local directory written by ``save_pretrained``
    (a LoRA adapter directory is loaded onto its base), a hub id, or a module. Directories and hub
    ids are dispatched on their config (see the module docstring for the kinds).
    trust_remote_code: allow a checkpoint's own modelling code (LLaDA, Dream); off by default.
    load_kwargs: passed to ``from_pretrained`` of hub-style checkpoints (``dtype=torch.bfloat16``,
    ``device_map="cuda"``, ...).
    Raises ModelMismatch for a checkpoint of another kind, task or vocabulary, or with pickle
    weights; ConfigError for remote code not allowed.
    """
    mask_id = task.vocab.mask_id
    if isinstance(model, nn.Module):
        cfg = getattr(model, "config", None)
        default = getattr(cfg, "noise", None) or getattr(model, "default_noise", None) or "mask"
        return model, make_noise(noise or default, mask_id)
    path = default_model_path(task) if model == "default" else Path(model)
    if path.is_dir():
        if (path / "adapter_config.json").exists():
            from constrained.adapters import load_adapter  # noqa: PLC0415 (peft only when needed)

            m = load_adapter(path, task, trust_remote_code=trust_remote_code)
            return m, make_noise(noise or getattr(m.config, "noise", None) or "mask", mask_id)
        raw = read_config(path)  # a missing or broken config.json is a ModelMismatch naming it
    elif isinstance(model, Path) or str(model).startswith((".", "/", "~")) or str(model).count("/") > 1 \
            or path.exists():
        raise ModelMismatch(f"model path {model} does not exist or is not a directory")
    else:
        from transformers import PretrainedConfig

        try:
            raw, _ = PretrainedConfig.get_config_dict(str(model))
        except (OSError, ValueError) as e:
            raise ModelMismatch(f"could not read the config of model {str(model)!r}: {e}") from None
    kind, remote = checkpoint_kind(raw)
    if remote and not trust_remote_code:
        raise ConfigError(f"model {str(model)!r} is a {kind} checkpoint that runs its own modelling code; "
                          "pass trust_remote_code=True (CLI: --trust-remote-code) if you trust it")
    if kind == "constrained":
        if raw.get("model_type") == DenoiserConfig.model_type:
            cls = DenoiserModel
        elif raw.get("model_type") == "constrained-graph-denoiser":  # reads the adjacency (graph colouring)
            from constrained.engine.graph import GraphDenoiser as cls  # noqa: PLC0415, N813
        else:  # a block-diffusion LM reading a PSM prompt
            from constrained.engine.infill import PSMDenoiser as cls  # noqa: PLC0415, N813
        m = load_pretrained(cls, path)  # safetensors only; a file that does not fit is ModelMismatch
        check_compatible(m.config, task, str(path))
        return m.eval(), make_noise(noise or m.config.noise, mask_id)
    name = str(path) if path.is_dir() else str(model)
    if kind == "diffusion_gemma":
        return _load_gemma(task, name, raw, noise, load_kwargs)
    tok = _tokenizer(name, trust_remote_code)
    if kind == "masked-lm":
        from transformers import AutoModelForMaskedLM

        base = _from_pretrained(AutoModelForMaskedLM, name, trust_remote_code, load_kwargs)
        wrapped = HFMaskedLMDenoiser(base, token_map_from_tokenizer(task.vocab, tok))
        return wrapped.eval(), make_noise(noise or "mask", mask_id)
    return _load_diffusion_lm(task, name, raw, kind, remote, tok, noise, load_kwargs)


def _from_pretrained(auto_cls, name: str, trust_remote_code: bool, load_kwargs: dict[str, Any]) -> nn.Module:
    """A local folder through ``checkpoint.load_pretrained`` (safetensors only, pickle files refused by
    name, missing or mis-shaped weights an error); a hub id through ``from_pretrained`` with
    ``use_safetensors=True``."""
    if Path(name).is_dir():
        return load_pretrained(auto_cls, name, trust_remote_code=trust_remote_code, **load_kwargs)
    from safetensors import SafetensorError

    try:
        return auto_cls.from_pretrained(name, trust_remote_code=trust_remote_code, use_safetensors=True,
                                        **load_kwargs)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise ModelMismatch(f"could not load model {name!r} (safetensors weights only): {e}") from None


def _tokenizer(name: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as e:
        raise ModelMismatch(f"could not load the tokenizer of {name!r} (the task's tokens are mapped onto "
                            f"it): {e}") from None


def _load_gemma(task: Task, name: str, raw: dict[str, Any], noise: str | None,
                load_kwargs: dict[str, Any]) -> tuple[nn.Module, NoiseProcess]:
    from constrained.engine.gemma import GemmaDenoiser

    canvas = int(raw.get("canvas_length") or 0)
    if canvas and task.layout.length > canvas:
        raise ModelMismatch(f"task {task.name!r} needs a canvas of {task.layout.length} tokens; the "
                            f"DiffusionGemma checkpoint {name!r} denoises canvases of {canvas}")
    text = raw.get("text_config") or {}
    tok = _tokenizer(name, False)
    pad = tok.pad_token_id if tok.pad_token_id is not None else text.get("pad_token_id")
    # uniform-state model: no mask token; the task's [MASK] (never shown to it) maps to [PAD]
    token_map = token_map_from_tokenizer(task.vocab, tok, mask_id=pad, pad_id=pad)
    from transformers import DiffusionGemmaForBlockDiffusion

    base = _from_pretrained(DiffusionGemmaForBlockDiffusion, name, False, load_kwargs)
    return GemmaDenoiser(base.eval(), token_map=token_map), make_noise(noise or "uniform", task.vocab.mask_id)


def _load_diffusion_lm(task: Task, name: str, raw: dict[str, Any], kind: str, remote: bool, tok,
                       noise: str | None, load_kwargs: dict[str, Any]) -> tuple[nn.Module, NoiseProcess]:
    from constrained.engine.difflm import DiffusionLMDenoiser

    def first(*vals):
        return next((int(v) for v in vals if v is not None), None)

    mask = first(raw.get("mask_token_id"), tok.mask_token_id)
    if mask is None:
        raise ModelMismatch(f"{kind} checkpoint {name!r} names no mask token (config mask_token_id or the "
                            "tokenizer's mask token): a masked diffusion LM needs one")
    pad = first(tok.pad_token_id, raw.get("pad_token_id"), tok.eos_token_id, raw.get("eos_token_id"))
    bos = first(tok.bos_token_id, raw.get("bos_token_id"))
    token_map = token_map_from_tokenizer(task.vocab, tok, mask_id=mask, pad_id=pad)
    if remote:  # the checkpoint's own class (auto_map): LLaDAModelLM / DreamModel
        from transformers import AutoModel

        base = _from_pretrained(AutoModel, name, True, load_kwargs)
        attention = "2d" if kind == "llada" else "4d"
    else:
        from transformers import AutoModelForCausalLM

        base = _from_pretrained(AutoModelForCausalLM, name, False, load_kwargs)
        attention = "4d"
    den = DiffusionLMDenoiser(base.eval(), token_map, kind, bos_id=bos, attention=attention)
    return den.eval(), make_noise(noise or "mask", task.vocab.mask_id)
