"""LLaDA- and Dream-style diffusion language models as canvas denoisers.

Both are decoder-only transformers run with **full, non-causal attention** over
``[prompt ; canvas]``, trained as masked diffusion models (a ``[MASK]`` token stands for an
empty position):

- **LLaDA-style** (``kind="llada"``; LLaDA, MMaDA): the logits at a canvas position predict
  the token *at* that position;
- **Dream-style** (``kind="dream"``; Dream, DiffuCoder, Dream-Coder): adapted from an
  autoregressive model, so the logits at position j predict the token at j + 1; the logits of
  canvas position j are read from position j - 1 (the prompt's last token predicts the
  canvas's first). Every row starts with ``[BOS]``, so a canvas with no context has a prompt.

:class:`DiffusionLMDenoiser` maps a task's vocabulary onto the model's ids with ``token_map``
(as :class:`~constrained.engine.denoiser.HFMaskedLMDenoiser` does), lays the context out
*before* the canvas, padded on the left (so a row of a padded batch sees exactly the tokens
and relative positions it would see alone), and returns logits over the task's vocabulary.

Real checkpoints ship their own modelling code (``trust_remote_code``); the loader
(:func:`constrained.loading.load_denoiser`) opens them only when the user passes it. Any
transformers causal-LM class (Llama, Qwen2, ...) whose config carries the marker
``constrained_kind: "llada" | "dream"`` is run the same way without remote code: that is how
the tests build their stand-ins (:func:`standin_config`), and how a user can adapt an
autoregressive model (Dream's recipe) and save it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from constrained.errors import ModelMismatch

from .blockmodel import left_align, padded_positions

#: the config key that marks a transformers LM as a diffusion LM of one of these kinds
KIND_KEY = "constrained_kind"
KINDS = ("llada", "dream")


class DiffusionLMDenoiser(nn.Module):
    """Wrap a bidirectional LM (LLaDA- or Dream-style) as a denoiser of a task's vocabulary.

    model: a transformers model returning ``.logits`` [B, S, V_model]; token_map [V_task] long:
    the model's id of each task token; kind: ``"llada"`` or ``"dream"`` (logits shifted by one);
    bos_id: the model's id put before a canvas that has no context (needed by ``dream``);
    attention: how the padding/non-causal mask is passed: ``"4d"`` (a [B, 1, S, S] bool mask and
    per-row ``position_ids``: transformers' own classes and Dream's code) or ``"2d"`` (a [B, S]
    padding mask only, given only when a row is padded: LLaDA's code, which is non-causal itself).
    """

    def __init__(self, model: nn.Module, token_map: torch.Tensor, kind: str, bos_id: int | None = None,
                 attention: str = "4d") -> None:
        super().__init__()
        if kind not in KINDS:
            raise ModelMismatch(f"unknown diffusion LM kind {kind!r}: use one of {KINDS}")
        if attention not in ("4d", "2d"):
            raise ValueError(f"attention must be '4d' or '2d', got {attention!r}")
        self.model = model
        n_model = model.get_input_embeddings().weight.shape[0]
        token_map = torch.as_tensor(token_map, dtype=torch.long)
        if int(token_map.max()) >= n_model or int(token_map.min()) < 0:
            raise ModelMismatch(f"token_map has ids outside the model's vocabulary of {n_model}")
        self.register_buffer("token_map", token_map, persistent=False)
        self.kind = kind
        self.shift = kind == "dream"
        if self.shift and bos_id is None:
            raise ModelMismatch("a Dream-style model needs a [BOS] id to predict a canvas that has no prompt")
        self.bos_id = bos_id
        self.attention = attention

    #: the noise process these models are trained with
    default_noise = "mask"

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids: torch.Tensor, coords: dict[str, torch.Tensor] | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
                **_: Any) -> torch.Tensor:
        """tokens [B, L] (task ids), context [B, C] (task ids; ``context_mask`` True at real tokens,
        padding anywhere) -> logits [B, L, V_task]."""
        B, L = input_ids.shape
        dev = input_ids.device
        parts, valid = [], []
        if self.bos_id is not None:  # every row starts with [BOS], as the model's own prompts do
            parts.append(torch.full((B, 1), self.bos_id, dtype=torch.long, device=dev))
            valid.append(torch.ones(B, 1, dtype=torch.bool, device=dev))
        if context is not None and context.shape[1] > 0:
            cm = torch.ones_like(context, dtype=torch.bool) if context_mask is None else context_mask.bool()
            parts.append(self.token_map[context])
            valid.append(cm)
        P = sum(p.shape[1] for p in parts)
        prompt = torch.cat(parts, 1) if parts else input_ids.new_zeros(B, 0)
        pmask = torch.cat(valid, 1) if valid else torch.ones(B, 0, dtype=torch.bool, device=dev)
        if P and not bool(pmask.all()):  # padding to the left: the canvas follows the last real token
            prompt, pmask = left_align(prompt, pmask)
        ids = torch.cat([prompt, self.token_map[input_ids]], 1)  # [B, P + L]
        keep = torch.cat([pmask, torch.ones(B, L, dtype=torch.bool, device=dev)], 1)
        if self.attention == "4d":
            pos = padded_positions(keep, P + L)
            mask = keep[:, None, None, :].expand(B, 1, P + L, P + L)  # every query sees every real key
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos)
        else:
            out = self.model(input_ids=ids, attention_mask=None if bool(keep.all()) else keep.long())
        logits = out.logits if hasattr(out, "logits") else out[0]
        logits = logits[:, P - 1 : P - 1 + L] if self.shift else logits[:, P : P + L]
        return logits.index_select(-1, self.token_map)  # [B, L, V_task]


def standin_config(kind: str, arch: str = "llama", **sizes: Any):
    """A transformers config (``llama`` or ``qwen2``) marked as a diffusion LM of ``kind``: a
    LLaDA or Dream stand-in built from transformers' own classes. ``sizes`` override the tiny
    defaults (vocab_size, hidden_size, layers, heads, ...)."""
    if kind not in KINDS:
        raise ModelMismatch(f"unknown diffusion LM kind {kind!r}: use one of {KINDS}")
    from transformers import LlamaConfig, Qwen2Config

    classes = {"llama": LlamaConfig, "qwen2": Qwen2Config}
    if arch not in classes:
        raise ValueError(f"stand-in architecture must be one of {sorted(classes)}, got {arch!r}")
    kw: dict[str, Any] = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                              tie_word_embeddings=False, attn_implementation="sdpa")
    kw.update(sizes)
    cfg = classes[arch](**kw)
    setattr(cfg, KIND_KEY, kind)
    cfg.architectures = [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[arch]]
    return cfg
