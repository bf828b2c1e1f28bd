"""Denoiser adapters: anything that maps a noisy canvas to logits [B, L, V].

The project's own :class:`DenoiserModel` takes canvas, coordinates and context
directly. :class:`HFMaskedLMDenoiser` wraps any transformers masked LM (BERT,
ModernBERT, ESM-2, ...) and maps a task's vocabulary onto the model's.
"""

from __future__ import annotations

import torch
from torch import nn

from constrained.canvas import Canvas


class HFMaskedLMDenoiser(nn.Module):
    """Wrap an ``AutoModelForMaskedLM`` as a denoiser of a task's vocabulary.

    token_map [V_task] long: the model's token id for each task token (identity by
    default). Logits come back over the task's vocabulary. Optional coordinate
    embeddings (zero-initialised, so the base model's behaviour is unchanged until
    trained) are added to the input embeddings.
    """

    def __init__(self, model: nn.Module, token_map: torch.Tensor | None = None,
                 coord_sizes: dict[str, int] | None = None) -> None:
        super().__init__()
        self.model = model
        emb = model.get_input_embeddings()
        hidden = emb.weight.shape[1]
        n_model = emb.weight.shape[0]
        if token_map is None:
            token_map = torch.arange(n_model)
        token_map = torch.as_tensor(token_map, dtype=torch.long)
        if int(token_map.max()) >= n_model or int(token_map.min()) < 0:
            raise ValueError(f"token_map has ids outside the model's vocabulary of {n_model}")
        self.register_buffer("token_map", token_map, persistent=False)
        self.coord_embeddings = nn.ModuleDict()
        for name, size in (coord_sizes or {}).items():
            e = nn.Embedding(size, hidden)
            nn.init.zeros_(e.weight)
            self.coord_embeddings[name] = e

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids: torch.Tensor, coords: dict[str, torch.Tensor] | None = None,
                context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None,
                **_) -> torch.Tensor:
        B, L = input_ids.shape
        ids = self.token_map[input_ids]
        emb = self.model.get_input_embeddings()(ids)
        for name, table in self.coord_embeddings.items():
            if coords is None or name not in coords:
                raise ValueError(f"denoiser expects coordinate {name!r}; the canvas layout does not provide it")
            c = coords[name]
            emb = emb + table(c if c.dim() == 2 else c.unsqueeze(0).expand(B, -1))
        attn = torch.ones(B, L, dtype=torch.long, device=input_ids.device)
        if context is not None and context.shape[1] > 0:
            emb = torch.cat([emb, self.model.get_input_embeddings()(self.token_map[context])], dim=1)
            cm = torch.ones_like(context, dtype=torch.bool) if context_mask is None else context_mask
            attn = torch.cat([attn, cm.long()], dim=1)
        logits = self.model(inputs_embeds=emb, attention_mask=attn).logits[:, :L]  # [B, L, V_model]
        return logits.index_select(-1, self.token_map)  # [B, L, V_task]


def reads_domains(model: nn.Module) -> bool:
    """Whether a denoiser takes candidate domains as input (``DenoiserConfig.domain_input``)."""
    return bool(getattr(getattr(model, "config", None), "domain_input", False))


def domain_features(domains: torch.Tensor | None, filled: torch.Tensor) -> torch.Tensor | None:
    """The candidate multi-hot a domain-reading model sees: [B, L, V], zero at filled positions."""
    if domains is None:
        return None
    return domains & ~filled.unsqueeze(-1)


def predict_logits(model: nn.Module, tokens: torch.Tensor, canvas: Canvas,
                   coords: dict[str, torch.Tensor] | None = None,
                   domains: torch.Tensor | None = None) -> torch.Tensor:
    """Run any denoiser on ``tokens`` [B, L] of ``canvas`` -> logits [B, L, V].

    domains [B, L, V] bool: candidate sets, passed only to models that read them; the canvas's
    ``peers`` [B, L, L] (a graph's adjacency) likewise, to models with ``config.graph_input``."""
    if coords is None:
        coords = {k: v.to(tokens.device) for k, v in canvas.layout.coords.items()}
    extra = {"domains": domains} if domains is not None and reads_domains(model) else {}
    if canvas.peers is not None and getattr(getattr(model, "config", None), "graph_input", False):
        extra["peers"] = canvas.peers  # a graph denoiser reads the adjacency (engine/graph.py)
    out = model(input_ids=tokens, coords=coords, context=canvas.context, context_mask=canvas.context_mask, **extra)
    return out.logits if hasattr(out, "logits") else out
