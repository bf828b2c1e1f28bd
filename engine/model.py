"""The project's own small denoiser: a bidirectional transformer encoder built from a
transformers ``BertConfig``, with embeddings for layout coordinates and a context
segment. It is a ``PreTrainedModel``, so ``save_pretrained`` / ``from_pretrained``
(safetensors), ``transformers.Trainer`` and peft LoRA all work on it unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    BertConfig,
    BertModel,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import MaskedLMOutput


class DenoiserConfig(PretrainedConfig):
    model_type = "constrained-denoiser"

    def __init__(
        self,
        vocab_size: int = 16,
        hidden_size: int = 128,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int = 512,
        max_position_embeddings: int = 512,
        dropout: float = 0.0,
        coord_sizes: dict[str, int] | None = None,
        noise: str = "mask",
        task: str | None = None,
        vocab_tokens: list[str] | None = None,
        canvas_length: int | None = None,
        domain_input: bool = False,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.dropout = dropout
        self.coord_sizes = dict(coord_sizes or {})
        self.noise = noise
        self.task = task
        self.vocab_tokens = list(vocab_tokens) if vocab_tokens is not None else None
        self.canvas_length = canvas_length
        self.domain_input = domain_input
        super().__init__(**kwargs)

    def backbone_config(self) -> BertConfig:
        return BertConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.dropout,
            type_vocab_size=2,  # 0: canvas, 1: context
            pad_token_id=0,
        )


class DenoiserModel(PreTrainedModel):
    """tokens [B, L] (+ coords [B, L] each, + context [B, C], + domains [B, L, V]) -> logits [B, L, V].

    The canvas comes first in the sequence and the context after it, so canvas
    positions keep their absolute position embeddings whatever the context length.
    With ``config.domain_input`` the model also reads each empty position's candidate
    set (the task's constraint propagation, a multi-hot over the vocabulary), so it
    learns to choose among candidates rather than rediscover the rules.
    """

    config_class = DenoiserConfig
    base_model_prefix = "denoiser"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__(config)
        self.backbone = BertModel(config.backbone_config(), add_pooling_layer=False)
        self.coord_embeddings = nn.ModuleDict(
            {name: nn.Embedding(size, config.hidden_size) for name, size in config.coord_sizes.items()}
        )
        self.domain_proj = nn.Linear(config.vocab_size, config.hidden_size, bias=False) if config.domain_input else None
        self.head = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.GELU(),
            nn.LayerNorm(config.hidden_size),
            nn.Linear(config.hidden_size, config.vocab_size),
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.embeddings.word_embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        coords: dict[str, torch.Tensor] | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        domains: torch.Tensor | None = None,
        context_logits: bool = False,
        **_: Any,
    ) -> MaskedLMOutput:
        """``context_logits``: logits for the context positions too ([B, L + C, V]), for training
        with a noised context (``train.context_noise``)."""
        B, L = input_ids.shape
        if L > self.config.max_position_embeddings:
            raise ValueError(
                f"canvas of length {L} exceeds the model's {self.config.max_position_embeddings} positions"
            )
        emb = self.backbone.embeddings.word_embeddings(input_ids)
        for name, table in self.coord_embeddings.items():
            if coords is None or name not in coords:
                raise ValueError(f"model expects coordinate {name!r}; the canvas layout does not provide it")
            c = coords[name]
            emb = emb + table(c if c.dim() == 2 else c.unsqueeze(0).expand(B, -1))
        if self.domain_proj is not None:
            if domains is None:
                raise ValueError("this model reads candidate domains (config.domain_input); pass domains [B, L, V]")
            emb = emb + self.domain_proj(domains.to(emb.dtype))
        types = torch.zeros(B, L, dtype=torch.long, device=input_ids.device)
        attn = None
        if context is not None and context.shape[1] > 0:
            total = L + context.shape[1]
            if total > self.config.max_position_embeddings:
                raise ValueError(
                    f"canvas ({L}) plus context ({context.shape[1]}) tokens exceed the model's "
                    f"{self.config.max_position_embeddings} positions"
                )
            emb = torch.cat([emb, self.backbone.embeddings.word_embeddings(context)], dim=1)
            types = torch.cat([types, torch.ones_like(context)], dim=1)
            if context_mask is None:
                context_mask = torch.ones_like(context, dtype=torch.bool)
            attn = torch.cat([torch.ones(B, L, dtype=torch.long, device=input_ids.device),
                              context_mask.long()], dim=1)
        out = self.backbone(inputs_embeds=emb, token_type_ids=types, attention_mask=attn)
        hidden = out.last_hidden_state if context_logits else out.last_hidden_state[:, :L]
        logits = self.head(hidden)
        return MaskedLMOutput(logits=logits)


AutoConfig.register(DenoiserConfig.model_type, DenoiserConfig)
AutoModelForMaskedLM.register(DenoiserConfig, DenoiserModel)
