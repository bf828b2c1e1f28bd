"""LoRA adapters on the loading side: find an adapter's base, check that the adapter was trained
on those very weights, apply it (peft) and merge it, so solving with an adapter costs the same as
with a full model. Training adapters is ``constrained.finetune.lora``'s; this module never
imports ``finetune``.

An adapter folder holds peft's ``adapter_config.json`` + ``adapter_model.safetensors``, a
``constrained_adapter.json`` (:data:`ADAPTER_META`) naming its base, the base's weights
fingerprint (:func:`fingerprint`), the task's vocabulary and the noise process, and a model card.
``constrained.loading.load_denoiser`` calls :func:`load_adapter` for a folder with an
``adapter_config.json``; the base is loaded through ``load_denoiser`` again, so any kind it
opens can carry an adapter.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from safetensors import SafetensorError
from torch import nn

from .checkpoint import require_safetensors
from .errors import ModelMismatch
from .loading import MODELS_DIR, default_model_path, load_denoiser
from .task import Task

ADAPTER_META = "constrained_adapter.json"


def model_type(model: nn.Module) -> str:
    """``config.model_type`` of a model, else its class name."""
    cfg = getattr(model, "config", None)
    return str(getattr(cfg, "model_type", "") or type(model).__name__)


def fingerprint(model: nn.Module) -> str:
    """A cheap identity of a model's weights: names, shapes, dtypes and a strided sample of
    every tensor (so it stays fast on multi-GB checkpoints and identical across machines).
    LoRA weights are left out: a base and the same base under a fresh adapter match."""
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


# ---------------------------------------------------------------------------------------------
# bases
# ---------------------------------------------------------------------------------------------
def resolve_base(task: Task, base: str | Path) -> Path | str:
    """``default`` (the task's shipped model), ``task:NAME`` (task NAME's shipped model),
    ``shipped:NAME`` (a folder of ``constrained/models/``), a local directory, or a hub id
    (returned as a string). Raises ModelMismatch for a path that does not exist."""
    from .registry import load_task  # noqa: PLC0415 (the registry imports task modules on use)

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
    if isinstance(path, Path):
        try:
            return "shipped:" + str(path.resolve().relative_to(MODELS_DIR.resolve()))
        except ValueError:
            return str(path.resolve())
    return path


def load_base(task: Task, base: str | Path, trust_remote_code: bool = False) -> tuple[nn.Module, str, str]:
    """(base denoiser, its reference, its noise name). The base must fit the task's vocabulary
    and layout (checked by ``load_denoiser``); an adapter is refused as a base (ModelMismatch)."""
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
    """The adapter's ``constrained_adapter.json`` ({} when absent)."""
    f = Path(path) / ADAPTER_META
    return json.loads(f.read_text()) if f.exists() else {}


def check_adapter_base(adapter: str | Path, base_fp: str, base_ref: str) -> None:
    """An adapter trained on other weights is refused (ModelMismatch), naming both."""
    meta = read_meta(adapter)
    if meta.get("base_fingerprint") and meta["base_fingerprint"] != base_fp:
        raise ModelMismatch(
            f"adapter at {adapter} was trained on base {meta.get('base', '?')} (weights fingerprint "
            f"{meta['base_fingerprint']}); the base given, {base_ref}, has fingerprint {base_fp}: "
            "it is an adapter for another base")


def apply_adapter(base: nn.Module, adapter: str | Path, *, trainable: bool = False,
                  check: bool = True) -> PeftModel:
    """Put the adapter at ``adapter`` on ``base`` (any nn.Module the adapter was trained on).
    Raises ModelMismatch for a folder without an adapter, pickle weights, another base's
    adapter (``check``), or weights that do not fit."""
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
