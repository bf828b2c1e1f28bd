"""Canvas: a batch of token sequences with fixed positions, allowed values and context."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .layout import Layout
from .vocab import Vocab


@dataclass
class Canvas:
    """A batch of problems laid out as tokens.

    tokens        [B, L] long   givens in place; other positions hold anything (the solver noises them)
    fixed         [B, L] bool   givens, prompt, prefix/suffix, padding: never noised, never scored
    allowed       [B, L, V] bool or None   per-position allowed values (static hard constraints, applied as logit masks)
    context       [B, C] long or None      conditioning tokens (a graph's edge list, code around a hole)
    context_mask  [B, C] bool or None      True for real context tokens, False for padding
    peers         [B, L, L] bool or None   per-item constraint neighbours, where items differ
                                           (a graph's adjacency); else the layout's groups say
    meta          per-item native problems (what a validator needs beyond the tokens)
    """

    tokens: torch.Tensor
    fixed: torch.Tensor
    layout: Layout
    vocab: Vocab
    allowed: torch.Tensor | None = None
    context: torch.Tensor | None = None
    context_mask: torch.Tensor | None = None
    peers: torch.Tensor | None = None
    meta: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tokens.dim() != 2:
            raise ValueError(f"canvas tokens must be [B, L], got shape {tuple(self.tokens.shape)}")
        B, L = self.tokens.shape
        if L != self.layout.length:
            raise ValueError(f"canvas length {L} does not match layout length {self.layout.length}")
        if self.fixed.shape != (B, L):
            raise ValueError(f"fixed mask has shape {tuple(self.fixed.shape)}, expected {(B, L)}")
        self.tokens = self.tokens.long()
        self.fixed = self.fixed.bool()
        if self.allowed is not None and self.allowed.shape != (B, L, len(self.vocab)):
            raise ValueError(
                f"allowed mask has shape {tuple(self.allowed.shape)}, expected {(B, L, len(self.vocab))}"
            )
        if self.context is not None:
            if self.context.dim() != 2 or self.context.shape[0] != B:
                raise ValueError(f"context must be [B, C] with B={B}, got {tuple(self.context.shape)}")
            if self.context_mask is None:
                self.context_mask = torch.ones_like(self.context, dtype=torch.bool)
        if self.peers is not None and self.peers.shape != (B, L, L):
            raise ValueError(f"peers has shape {tuple(self.peers.shape)}, expected {(B, L, L)}")
        if self.meta and len(self.meta) != B:
            raise ValueError(f"meta has {len(self.meta)} items for a batch of {B}")

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    @property
    def length(self) -> int:
        return self.tokens.shape[1]

    def allowed_values(self) -> torch.Tensor:
        """[B, L, V] bool: what each position may hold (content tokens unless ``allowed`` says)."""
        if self.allowed is not None:
            return self.allowed
        B, L = self.tokens.shape
        return self.vocab.content_mask().to(self.tokens.device).expand(B, L, -1)

    def item_peers(self) -> torch.Tensor:
        """[B, L, L] or [L, L] bool: positions bound to each position by some constraint."""
        return self.peers if self.peers is not None else self.layout.peers.to(self.tokens.device)

    def select(self, idx: torch.Tensor | list[int]) -> Canvas:
        """The sub-batch at ``idx``."""
        idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.tokens.device)
        ids = idx_t.tolist()
        return replace(
            self,
            tokens=self.tokens[idx_t],
            fixed=self.fixed[idx_t],
            allowed=None if self.allowed is None else self.allowed[idx_t],
            context=None if self.context is None else self.context[idx_t],
            context_mask=None if self.context_mask is None else self.context_mask[idx_t],
            peers=None if self.peers is None else self.peers[idx_t],
            meta=[self.meta[i] for i in ids] if self.meta else [],
        )

    def with_tokens(self, tokens: torch.Tensor) -> Canvas:
        return replace(self, tokens=tokens)

    def to(self, device: torch.device | str) -> Canvas:
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return replace(
            self,
            tokens=self.tokens.to(device),
            fixed=self.fixed.to(device),
            allowed=mv(self.allowed),
            context=mv(self.context),
            context_mask=mv(self.context_mask),
            peers=mv(self.peers),
        )
